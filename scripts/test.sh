#!/usr/bin/env bash
# test.sh - sets up the machine, builds grapevine twice (normal in build/,
# ASan+UBSan in build-asan/) and runs every CTest test (unit + scenario) in
# both. Exits non-zero when any step fails; prints a summary either way.
#
# Env: JOBS (default 2) parallel build/test jobs; GV_SKIP_SETUP=1 skips
# scripts/setup.sh; GV_SKIP_ASAN=1 skips the sanitizer build (local use only).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly ROOT=$PWD
readonly JOBS=${JOBS:-2}

steps=()
results=()
failed=0

# Runs one named step, records its result and time; never exits on failure.
step() {
    local name=$1 start rc
    shift
    printf '\n==== %s\n' "$name"
    start=$SECONDS
    set +e
    "$@"
    rc=$?
    set -e
    steps+=("$name")
    if [[ $rc -eq 0 ]]; then
        results+=("ok      $((SECONDS - start))s")
    else
        results+=("FAILED  $((SECONDS - start))s (exit $rc)")
        failed=1
    fi
    return "$rc"
}

skip() {
    steps+=("$1")
    results+=("skipped ($2)")
}

summary() {
    local i
    printf '\n==== summary (%s)\n' "$ROOT"
    for i in "${!steps[@]}"; do
        printf '  %-28s %s\n' "${steps[$i]}" "${results[$i]}"
    done
    if [[ $failed -eq 0 ]]; then
        printf 'ALL STEPS PASSED\n'
    else
        printf 'SOME STEPS FAILED\n'
    fi
    count_tests
}

# shellcheck disable=SC2317 # called through step()
configure_build() {
    local dir=$1
    shift
    cmake -S "$ROOT" -B "$ROOT/$dir" "$@" && cmake --build "$ROOT/$dir" -j "$JOBS"
}

# shellcheck disable=SC2317 # called through step()
run_ctest() {
    local dir=$1
    ctest --test-dir "$ROOT/$dir" --output-on-failure --no-tests=error -j "$JOBS" |
        tee "$ROOT/$dir/ctest.log"
}

# Adds up "N% tests passed, F tests failed out of T" from the ctest runs.
count_tests() {
    local log line f t passed=0 nfailed=0 any=0
    for log in "$ROOT"/build/ctest.log "$ROOT"/build-asan/ctest.log; do
        [[ -f $log ]] || continue
        line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1) || continue
        f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
        t=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
        passed=$((passed + t - f))
        nfailed=$((nfailed + f))
        any=1
    done
    [[ $any -eq 1 ]] && printf 'ctest: %d passed, %d failed\n' "$passed" "$nfailed"
    return 0
}

# One build + its tests; the tests are skipped when the build fails.
build_and_test() {
    local label=$1 dir=$2
    shift 2
    if step "$label: build" configure_build "$dir" "$@"; then
        step "$label: ctest" run_ctest "$dir" || true
    else
        skip "$label: ctest" "build failed"
    fi
}

if [[ ${GV_SKIP_SETUP:-0} == 1 ]]; then
    skip "setup" "GV_SKIP_SETUP=1"
elif ! step "setup" "$ROOT/scripts/setup.sh"; then
    summary
    exit 1
fi

rm -f "$ROOT/build/ctest.log" "$ROOT/build-asan/ctest.log"
build_and_test "normal" build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGV_SANITIZE=OFF

if [[ ${GV_SKIP_ASAN:-0} == 1 ]]; then
    skip "asan+ubsan: build" "GV_SKIP_ASAN=1"
    skip "asan+ubsan: ctest" "GV_SKIP_ASAN=1"
else
    # Sanitizer reports abort the process, so a leak or UB in a grapevine
    # started by a scenario test fails that test (the harness checks exit codes).
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    build_and_test "asan+ubsan" build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGV_SANITIZE=ON
fi

# shellcheck disable=SC2317 # called through step()
build_fuzzers() {
    cmake -S "$ROOT" -B "$ROOT/build-fuzz" -DCMAKE_C_COMPILER=clang -DGV_FUZZ=ON >/dev/null &&
        cmake --build "$ROOT/build-fuzz" -j "$JOBS" --target "$@"
}

# One fuzzer for its time: output in build-fuzz/NAME.log, exit code in NAME.rc.
# shellcheck disable=SC2317 # called through run_fuzzers
fuzz_one() {
    local t=$1 seconds=$2 name dict rc=0
    name=$(basename "$t")
    dict=$ROOT/tests/fuzz/$name.dict
    local args=(-max_total_time="$seconds" -print_final_stats=1)
    [[ -f $dict ]] && args+=(-dict="$dict")
    (cd "$ROOT/build-fuzz" && "$t" "${args[@]}") >"$ROOT/build-fuzz/$name.log" 2>&1 || rc=$?
    echo "$rc" >"$ROOT/build-fuzz/$name.rc"
}

# shellcheck disable=SC2317 # called through step()
run_fuzzers() {
    local t name rc seconds=${GV_FUZZ_SECONDS:-20} failed=0 running=0 dir=$ROOT/build-fuzz
    # JOBS at a time: each fuzzer is one process on one core.
    for t in "$dir"/tests/fuzz/*_fuzz; do
        fuzz_one "$t" "$seconds" &
        running=$((running + 1))
        if ((running >= JOBS)); then
            wait -n || true
            running=$((running - 1))
        fi
    done
    wait
    : >"$dir/fuzz.log"
    for t in "$dir"/tests/fuzz/*_fuzz; do
        name=$(basename "$t")
        cat "$dir/$name.log" >>"$dir/fuzz.log"
        printf 'fuzz: %s for %ss: %s runs\n' "$name" "$seconds" \
            "$(grep 'stat::number_of_executed_units' "$dir/$name.log" | tail -n 1 | sed 's/.*: *//')"
        rc=$(cat "$dir/$name.rc")
        if [[ $rc -ne 0 ]]; then
            grep -E 'ERROR|SUMMARY' "$dir/$name.log" | tail -n 5
            failed=1
        fi
    done
    return "$failed"
}

# libFuzzer targets (tests/fuzz/): built with clang, each run for a bounded
# time (GV_FUZZ_SECONDS, default 20); a crash, leak or timeout fails the step.
if [[ ${GV_SKIP_FUZZ:-0} == 1 ]] || ! command -v clang >/dev/null; then
    skip "fuzz" "GV_SKIP_FUZZ=1 or no clang"
else
    fuzz_targets=(request_fuzz state_fuzz wire_fuzz seal_fuzz store_fuzz jws_fuzz h2_fuzz)
    if step "fuzz: build" build_fuzzers "${fuzz_targets[@]}"; then
        step "fuzz: run" run_fuzzers || true
    else
        skip "fuzz: run" "build failed"
    fi
fi

summary
exit "$failed"
