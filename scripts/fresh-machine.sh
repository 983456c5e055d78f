#!/usr/bin/env bash
# fresh-machine.sh - runs the README's test command on a brand-new Debian 12,
# as a new user would: each run starts a new container from a bare debootstrap
# (minbase) image, copies in a fresh clone of this repository's HEAD and runs
# `scripts/test.sh` there as root, which has to install everything itself.
#
# Usage: scripts/fresh-machine.sh [options] [-- COMMAND...]
#   -n N            N runs, one new container each (default 1)
#   --no-ipv6       containers without IPv6 (no ::1); default: with IPv6
#                   loopback. Either is checked before the command runs.
#   --stress        load the container's 2 CPUs with `stress-ng --cpu 2` while
#                   the command runs (from when setup.sh has installed it)
#   -t MINUTES      bound on one run's command (default 40)
#   -o DIR          where each run's logs are copied (default /tmp/fresh-runs)
#   -v              print the command's whole output, not just its steps
#   --rebuild-image remove the cached image first and debootstrap it anew
#   -- COMMAND...   run COMMAND in the repository instead of scripts/test.sh;
#                   VAR=VALUE words first set its environment, e.g.
#                   `-- GV_SKIP_ASAN=1 scripts/test.sh` or `-- scripts/demo.sh`
#
# Only committed work is tested (the clone is of HEAD). The image,
# grapevine-fresh:bookworm, is kept as a cache (docker image rm it to refresh;
# it is made from the mirror in this machine's apt sources, see
# scripts/lib/debian-image.sh). Containers get --cpus 2 and no privileges;
# every one is removed at the end, also on Ctrl-C or a timeout. The host's
# local CA certificates and its PIP_CERT/proxy settings carry over
# (trust_like_host).
#
# Prints per run its wall time, result and failed tests, then a table; exits
# non-zero when any run failed. Logs of run K: DIR/run-K/ (console.log, the
# ctest logs of build/ and build-asan/, pytest's tmp dirs).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly REPO=$PWD
readonly IMAGE=grapevine-fresh:bookworm
readonly LABEL=org.grapevine.fresh=$$
readonly WORKDIR=/root/grapevine

runs=1 ipv6=1 stress=0 timeout_min=40 out=/tmp/fresh-runs verbose=0 rebuild=0
cmd=(scripts/test.sh)

log() { printf '[fresh %s] %s\n' "$(date +%T)" "$*"; }
die() {
    printf '[fresh %s] error: %s\n' "$(date +%T)" "$*" >&2
    exit 2
}
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case $1 in
    -n) runs=${2:?-n needs a number}; shift ;;
    --no-ipv6) ipv6=0 ;;
    --stress) stress=1 ;;
    -t) timeout_min=${2:?-t needs minutes}; shift ;;
    -o) out=${2:?-o needs a directory}; shift ;;
    -v) verbose=1 ;;
    --rebuild-image) rebuild=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; [[ $# -gt 0 ]] || die "nothing after --"; cmd=("$@"); break ;;
    *) die "unknown option '$1' (try --help)" ;;
    esac
    shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive number, not '$runs'"
[[ $timeout_min =~ ^[1-9][0-9]*$ ]] || die "-t wants minutes, not '$timeout_min'"
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed)"
command -v git >/dev/null || die "git is needed to clone the repository"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gv-fresh.XXXXXX")
bg_pids=()

# Removes every container of this invocation, stops helpers, drops the clone.
cleanup() {
    local rc=$? ids pid
    trap - EXIT INT TERM
    for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    ids=$(docker ps -aq --filter "label=$LABEL" 2>/dev/null || true)
    if [[ -n $ids ]]; then
        # shellcheck disable=SC2086 # one id per word
        timeout 120 docker rm -f $ids >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted: removing containers"; exit 130' INT
trap 'exit 143' TERM

# Makes the cached base image if it is missing (or --rebuild-image).
base_image() {
    local start=$SECONDS
    if [[ $rebuild -eq 1 ]]; then
        docker image rm -f "$IMAGE" >/dev/null 2>&1 || true
    fi
    if docker image inspect "$IMAGE" >/dev/null 2>&1; then
        log "image $IMAGE: cached"
        return
    fi
    # shellcheck source=scripts/lib/debian-image.sh
    . "$REPO/scripts/lib/debian-image.sh"
    gv_minbase_image "$IMAGE" || die "cannot create $IMAGE"
    log "image $IMAGE: created in $((SECONDS - start))s"
}

# Clones HEAD into a tarball (top folder grapevine/) that every run copies in.
make_source_tar() {
    local head
    head=$(git -C "$REPO" rev-parse HEAD)
    if [[ -n $(git -C "$REPO" status --porcelain --untracked-files=no) ]]; then
        log "note: uncommitted changes are not tested (the clone is of HEAD)"
    fi
    git clone -q --no-checkout "$REPO" "$tmp/grapevine"
    git -C "$tmp/grapevine" checkout -q --detach "$head"
    tar -C "$tmp" -cf "$tmp/src.tar" grapevine
    log "source: $(git -C "$REPO" log -1 --format='%h %s' "$head" | cut -c1-70)"
}

# Prints "yes" if the container has the IPv6 loopback address ::1, else "no".
has_ipv6_loopback() {
    if timeout 60 docker exec "$1" grep -qE '^0{31}1 [0-9a-f]+ [0-9a-f]+ [0-9a-f]+ [0-9a-f]+ +lo$' /proc/net/if_inet6 2>/dev/null; then
        echo yes
    else
        echo no
    fi
}

# Waits (in the background) until setup.sh has installed stress-ng, then
# loads the container's CPUs for at most the run's time bound.
start_stress() {
    local cid=$1 bound=$2
    (
        for ((i = 0; i < bound; i += 5)); do
            if timeout 30 docker exec "$cid" sh -c 'command -v stress-ng' >/dev/null 2>&1; then
                timeout 30 docker exec -d "$cid" stress-ng --cpu 2 --timeout "${bound}s" --quiet
                printf '[fresh %s]   stress-ng --cpu 2 started\n' "$(date +%T)"
                exit 0
            fi
            sleep 5
        done
    ) &
    bg_pids+=("$!")
}

# Prints the failed tests found in a run's logs, one per line: the CTest
# names of build/ and build-asan/ ("asan:" before those), each followed by
# the pytest ids that failed in it.
failed_tests() {
    local dir=$1 build log
    for build in build build-asan; do
        log=$dir/$build/ctest.log
        [[ -f $log ]] || continue
        awk -v tag="$([[ $build == build-asan ]] && echo 'asan: ')" '
            /^[0-9]+\/[0-9]+ Test +#[0-9]+: / { name = $4 }
            /^FAILED [^ ]+/ { ids[name] = ids[name] "\n    " $2 }
            /The following tests FAILED:/ { on = 1; next }
            on && /^[ \t]+[0-9]+ - / { print tag $3 ids[$3]; next }
            on { on = 0 }
        ' "$log"
    done
}

# A new machine on this network trusts what this one trusts: where the
# network reaches PyPI through a TLS-inspecting proxy, this machine has its
# CA under /usr/local/share/ca-certificates and PIP_CERT & co. pointing at
# the system bundle. The container gets the same CA files (the
# ca-certificates package that setup.sh installs adds them to the bundle)
# and the same settings (exec_env). Nothing is copied where the host has none.
trust_like_host() {
    local cid=$1 crt
    for crt in /usr/local/share/ca-certificates/*.crt; do
        [[ -f $crt ]] || continue
        timeout 60 docker exec "$cid" mkdir -p /usr/local/share/ca-certificates &&
            timeout 60 docker cp "$crt" "$cid:/usr/local/share/ca-certificates/" ||
            die "copying $crt into the container failed"
    done
}
exec_env=()
for v in PIP_CERT REQUESTS_CA_BUNDLE SSL_CERT_FILE PIP_INDEX_URL PIP_EXTRA_INDEX_URL \
    HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
    [[ -n ${!v:-} ]] && exec_env+=(-e "$v=${!v}")
done

# run_one K: one new container, one command; records time and result.
run_one() {
    local k=$1 name=gvfresh-$$-$1 dir=$out/run-$1 cid start rc v6 bound
    bound=$((timeout_min * 60))
    rm -rf "$dir"
    mkdir -p "$dir"
    local sysctl=(--sysctl "net.ipv6.conf.all.disable_ipv6=$((1 - ipv6))"
        --sysctl "net.ipv6.conf.default.disable_ipv6=$((1 - ipv6))")
    # The container ends by itself (sleep, --rm) if this script is killed -9.
    cid=$(timeout 120 docker run -d --rm --init --name "$name" --label "$LABEL" --cpus 2 \
        --hostname fresh "${sysctl[@]}" "$IMAGE" sleep "$((bound + 600))") ||
        die "docker run of $IMAGE failed"
    v6=$(has_ipv6_loopback "$cid")
    if [[ $ipv6 -eq 1 && $v6 != yes ]]; then
        die "run $k: the container has no ::1 although IPv6 was asked for"
    elif [[ $ipv6 -eq 0 && $v6 != no ]]; then
        die "run $k: the container still has ::1 with --no-ipv6"
    fi
    timeout 300 docker cp - "$cid:/root" <"$tmp/src.tar" || die "copying the source into the container failed"
    trust_like_host "$cid"
    log "run $k/$runs: container $name (ipv6 loopback: $v6, stress: $([[ $stress -eq 1 ]] && echo on || echo off)): ${cmd[*]}"
    [[ $stress -eq 1 ]] && start_stress "$cid" "$bound"

    # In the background, so that Ctrl-C reaches the trap at once (bash runs
    # traps only between foreground commands; wait is interruptible).
    local filter=(cat)
    [[ $verbose -eq 1 ]] || filter=(awk '/^==== summary/ { s = 1 }
        s || /^(==== |setup: )/ || /\*\*\*(Failed|Timeout|Exception)/ { print; fflush() }')
    start=$SECONDS
    (
        set +e
        timeout -k 30 "$bound" docker exec "${exec_env[@]}" -w "$WORKDIR" "$cid" env "${cmd[@]}" 2>&1 |
            tee "$dir/console.log" | "${filter[@]}"
        echo "${PIPESTATUS[0]}" >"$dir/.rc"
    ) &
    bg_pids+=("$!")
    wait "$!" || true
    rc=$(cat "$dir/.rc" 2>/dev/null || echo 1)
    rm -f "$dir/.rc"
    local secs=$((SECONDS - start))

    # Logs out before the container goes: ctest's, and pytest's tmp dirs.
    timeout 300 docker exec "$cid" sh -c "cd $WORKDIR && tar -cf - --ignore-failed-read \
        build/ctest.log build/Testing/Temporary build-asan/ctest.log build-asan/Testing/Temporary \
        2>/dev/null" | tar -C "$dir" -xf - 2>/dev/null || true
    timeout 300 docker exec "$cid" sh -c 'tar -cf - --ignore-failed-read -C /tmp pytest-of-root 2>/dev/null' |
        tar -C "$dir" -xf - 2>/dev/null || true
    timeout 120 docker rm -f "$cid" >/dev/null 2>&1 || true

    local result=PASS
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
        result="TIMEOUT(${timeout_min}m)"
    elif [[ $rc -ne 0 ]]; then
        result="FAIL(exit $rc)"
    fi
    failed_tests "$dir" >"$dir/failed-tests.txt"
    printf '%s\t%s\t%s\t%s\t%s\n' "$k" "$v6" "$([[ $stress -eq 1 ]] && echo on || echo off)" \
        "$secs" "$result" >>"$out/results.tsv"
    log "run $k/$runs: $result in $((secs / 60))m$((secs % 60))s (logs: $dir)"
    sed 's/^/    failed: /' "$dir/failed-tests.txt"
    [[ $result == PASS ]]
}

# Prints the table of all runs of this invocation.
table() {
    local k v6 st secs result first
    printf '\n%-4s %-5s %-6s %-8s %-16s %s\n' run ipv6 stress time result "failed tests"
    while IFS=$'\t' read -r k v6 st secs result; do
        first=$(grep -v '^ ' "$out/run-$k/failed-tests.txt" | paste -sd ' ' -) || true
        printf '%-4s %-5s %-6s %-8s %-16s %s\n' "$k" "$v6" "$st" "$((secs / 60))m$((secs % 60))s" "$result" "$first"
    done <"$out/results.tsv"
}

mkdir -p "$out"
: >"$out/results.tsv"
base_image
make_source_tar
failed=0
for ((k = 1; k <= runs; k++)); do
    run_one "$k" || failed=$((failed + 1))
done
table
log "$((runs - failed)) of $runs runs passed"
[[ $failed -eq 0 ]]
