#!/usr/bin/env bash
# flaky.sh - runs the whole test suite (scripts/test.sh, the README's test
# command) several times in a row and reports every test that failed at least
# once: a test that fails once in five runs is a broken test, not bad luck.
#
# Usage: scripts/flaky.sh [-n RUNS] [--stress] [--stress-runs K] [--logs DIR]
#   -n RUNS        runs in a row on a quiet machine (default 5)
#   --stress-runs K  then K more runs with every core busy: stress-ng --cpu
#                  $(nproc) runs beside the suite for exactly that run
#                  (default 1; 0 skips them)
#   --logs DIR     where each run's output and ctest logs are kept
#                  (default: a new folder under ${TMPDIR:-/tmp})
# Env: passed through to scripts/test.sh (GV_SKIP_ASAN=1, JOBS=...).
# Exit status: 0 when every run passed, 1 otherwise. Every run is bounded
# (GV_FLAKY_RUN_TIMEOUT seconds, default 3600).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly ROOT=$PWD

runs=5
stress_runs=1
logs=
while [[ $# -gt 0 ]]; do
    case $1 in
    -n) runs=$2; shift 2 ;;
    --stress-runs) stress_runs=$2; shift 2 ;;
    --stress) stress_runs=1; shift ;;
    --logs) logs=$2; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) printf 'flaky: unknown option %s (see --help)\n' "$1" >&2; exit 2 ;;
    esac
done
[[ $runs =~ ^[0-9]+$ && $stress_runs =~ ^[0-9]+$ ]] || {
    echo "flaky: -n and --stress-runs take a number" >&2
    exit 2
}
[[ -n $logs ]] || logs=$(mktemp -d "${TMPDIR:-/tmp}/grapevine-flaky.XXXXXX")
mkdir -p "$logs"
readonly RUN_TIMEOUT=${GV_FLAKY_RUN_TIMEOUT:-3600}

log() { printf '[flaky] %s\n' "$*"; }

stress_pid=
stop_stress() {
    if [[ -n $stress_pid ]]; then
        kill "$stress_pid" 2>/dev/null || true
        wait "$stress_pid" 2>/dev/null || true
        stress_pid=
    fi
}
trap stop_stress EXIT

# failures_of DIR: one line per failed test of a run: "TREE: ctest-name" for
# a unit test, "TREE: tests/scenario/FILE.py::CASE" for a failed scenario case
# (pytest's own FAILED lines, which ctest --output-on-failure keeps).
failures_of() {
    local dir=$1 f tree
    for f in "$dir"/ctest-*.log; do
        [[ -f $f ]] || continue
        tree=$(basename "$f" .log)
        tree=${tree#ctest-}
        sed -n '/The following tests FAILED:/,$p' "$f" |
            sed -nE 's/^[[:space:]]+[0-9]+ - ([^ ]+) .*/\1/p' |
            sed "s/^/$tree: /" || true
        grep -oE '^(FAILED|ERROR) tests/scenario/[^ ]+' "$f" | sed -E "s/^(FAILED|ERROR) /$tree: /" || true
    done | sort -u
}

# run_once N LABEL [stress]: one scripts/test.sh run, logs under $logs/N.
declare -a labels=() results=() times=()
run_once() {
    local n=$1 label=$2 stressed=${3:-} dir="$logs/run$1" start rc
    mkdir -p "$dir"
    log "run $n ($label) started $(date +%T); output in $dir/output.log"
    if [[ -n $stressed ]]; then
        command -v stress-ng >/dev/null || {
            log "stress-ng is not installed (scripts/setup.sh installs it)"
            exit 1
        }
        stress-ng --cpu "$(nproc)" --timeout "${RUN_TIMEOUT}s" --quiet &
        stress_pid=$!
    fi
    start=$SECONDS
    set +e
    timeout "$RUN_TIMEOUT" "$ROOT/scripts/test.sh" >"$dir/output.log" 2>&1
    rc=$?
    set -e
    stop_stress
    for t in build build-asan; do
        [[ -f $ROOT/$t/ctest.log ]] && cp "$ROOT/$t/ctest.log" "$dir/ctest-$t.log"
    done
    labels+=("run $n ($label)")
    times+=("$((SECONDS - start))s")
    if [[ $rc -eq 0 ]]; then
        results+=("passed")
    else
        local failed
        failed=$(failures_of "$dir" | tr '\n' ';')
        [[ -n $failed ]] || failed="exit $rc (see $dir/output.log)"
        results+=("FAILED: $failed")
    fi
    log "run $n: ${results[-1]} in ${times[-1]}"
}

total=$((runs + stress_runs))
for ((i = 1; i <= runs; i++)); do
    run_once "$i" quiet
done
for ((i = runs + 1; i <= total; i++)); do
    run_once "$i" "cores busy" stressed
done

printf '\n==== flaky.sh: %d runs of scripts/test.sh (logs in %s)\n' "$total" "$logs"
bad=0
for i in "${!labels[@]}"; do
    printf '  %-22s %-8s %s\n' "${labels[$i]}" "${times[$i]}" "${results[$i]}"
    [[ ${results[$i]} == passed ]] || bad=1
done
if [[ $bad -eq 0 ]]; then
    echo "no test failed in any run"
else
    echo "tests that failed at least once:"
    for ((i = 1; i <= total; i++)); do failures_of "$logs/run$i"; done | sort | uniq -c |
        sed 's/^ */  /'
fi
exit "$bad"
