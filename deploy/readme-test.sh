#!/usr/bin/env bash
# readme-test.sh - runs README.md's "Run a cluster with docker compose" as
# written: the code blocks marked `<!-- readme-test: NAME -->`, verbatim and
# in order, in one bash, in a temporary copy of the work tree; once as root
# and once as a throwaway user of the docker group (no sudo). Between the
# blocks it checks, with bounded waits, what the README says they show: the
# cluster comes up (3 alive members on gw3, /hello answered by an echo), the
# secrets stay mode 600 and their owner's, a change on gw1 is served by gw3,
# gw3 cut off the gossip network is seen dead by gw1 and gw2 and still serves
# with the config it has, after the reconnect it has the change made meanwhile,
# and `down -v` leaves nothing. Containers, volumes, networks, the image, the
# user and the copy are removed on every exit.
#
# Run as root (it creates and removes the user). The README's commands use
# compose project `deploy` and the default ports 8081-8083 and 9911-9913: both
# must be free, or it stops before starting anything. The environment moves
# what the README lets move: the mesh subnet (GV_SUBNET, default one of
# 10.212.200-249.0/24 by process id) and the image (grapevine:readme-test).
#
# Env: GV_README_AS ("root user" by default: who runs the steps, in order),
#      GV_README_COMPOSE (a docker-compose executable to use instead of the
#      one on PATH, e.g. compose v2's, run as docker-compose as the README
#      says), GV_README_TIMEOUT (seconds per run, default 1200).
#
# Blocks run with `set -euo pipefail`: any failing README command fails the run.
# The check functions below are sourced by the generated script (the part
# after them is the driver).
set -euo pipefail

readonly RT_BLOCKS="base-image up explore faults partition cut-off heal healed down"

# ---- checks, run in the shell that runs the README blocks -------------------
rt_log() { printf '[readme-test %4ss] %s\n' "$((SECONDS - RT_T0))" "$*"; }
rt_die() {
    rt_log "FAIL: $*"
    exit 1
}

# rt_wait WHAT TIMEOUT CMD...: polls CMD every 0.2 s until it succeeds.
rt_wait() {
    local what=$1 timeout=$2 start now
    shift 2
    start=$(date +%s%3N)
    while ! "$@"; do
        now=$(date +%s%3N)
        ((now - start <= timeout * 1000)) || rt_die "timed out after ${timeout}s waiting for: $what"
        sleep 0.2
    done
    now=$(date +%s%3N)
    rt_log "  $what: after $(((now - start) / 1000)).$(printf '%03d' $(((now - start) % 1000)))s"
}

# rt_get PORT PATH [CURL ARGS...]: GET on 127.0.0.1 with the admin token.
rt_get() {
    local port=$1 path=$2
    shift 2
    curl -sS -m 3 -H "Authorization: Bearer $(cat "$RT_DEPLOY/secrets/admin.token")" "$@" \
        "http://127.0.0.1:$port$path"
}
rt_code() { rt_get "$1" "$2" -o /dev/null -w '%{http_code}' 2>/dev/null || true; }

# rt_members PORT: "name=state ..." as that node sees it ("" if it cannot say).
rt_members() {
    rt_get "$1" /cluster/members 2>/dev/null | python3 -c '
import json, sys
try:
    m = json.load(sys.stdin)
except Exception:
    sys.exit(0)
print(" ".join(sorted("%s=%s" % (x["name"], x["state"]) for x in m)))' || true
}
rt_all_alive() { # rt_all_alive PORT...: gw1..gw3 alive for each
    local p
    for p in "$@"; do [[ $(rt_members "$p") == "gw1=alive gw2=alive gw3=alive" ]] || return 1; done
}
rt_sees() { [[ " $(rt_members "$1") " == *" $2=$3 "* ]]; } # rt_sees PORT NODE STATE

# rt_served_by PORT PATH REGEX: 5 answers in a row from an upstream named REGEX.
rt_served_by() {
    local _
    for _ in 1 2 3 4 5; do
        curl -s -m 2 "http://127.0.0.1:$1$2" | grep -Eq "\"name\": *\"$3\"" || return 1
    done
}

# rt_project_left: what of compose project `deploy` exists (nothing: "").
rt_project_left() {
    local f=label=com.docker.compose.project=deploy
    # shellcheck disable=SC2046 # one line of ids
    echo $(docker ps -aq --filter "$f") $(docker network ls -q --filter "$f") $(docker volume ls -q --filter "$f")
}

# rt_after BLOCK: checks what the README says BLOCK shows, waiting where it
# says "within".
rt_after() {
    local mode
    case $1 in
    base-image)
        docker image inspect debian:bookworm-slim >/dev/null 2>&1 || rt_die "no debian:bookworm-slim"
        ;;
    up)
        rt_wait "gw3 sees 3 alive members" 60 rt_all_alive 9913
        rt_served_by 8081 /hello 'echo[123]' || rt_die "/hello on gw1 is not answered by an echo"
        mode=$(stat -c '%u %a' "$RT_DEPLOY"/secrets/* | sort -u)
        [[ $mode == "$(id -u) 600" ]] || rt_die "secrets/* are '$mode', expected '$(id -u) 600'"
        rt_log "  /hello answered by echo1..echo3; secrets/* still $(id -un)'s, mode 600"
        ;;
    explore)
        rt_served_by 8083 /three echo3 || rt_die "gw3 does not serve /three (PUT on gw1) from echo3"
        rt_log "  gw3 serves /three from echo3"
        ;;
    faults)
        rt_wait "every node sees 3 alive members again" 60 rt_all_alive 9911 9912 9913
        ;;
    partition)
        rt_wait "gw1 and gw2 see gw3 dead" 30 rt_gw3_dead
        ;;
    cut-off)
        rt_served_by 8083 /hello 'echo[123]' || rt_die "gw3 does not serve /hello while cut off"
        [[ $(rt_code 9913 /config/routes/part) == 404 ]] || rt_die "gw3 knows route part while cut off"
        [[ $(rt_code 9911 /config/routes/part) == 200 ]] || rt_die "gw1 does not have route part"
        rt_log "  gw3 still serves /hello, and does not know route part made on gw1"
        ;;
    heal)
        rt_wait "every node sees 3 alive members again" 60 rt_all_alive 9911 9912 9913
        rt_wait "gw3 serves /part from echo3" 20 rt_served_by 8083 /part echo3
        ;;
    healed) ;;
    down)
        [[ -z $(rt_project_left) ]] || rt_die "left after down -v: $(rt_project_left)"
        rt_log "  nothing of project deploy is left"
        ;;
    *) rt_die "no checks for block $1" ;;
    esac
}
rt_gw3_dead() { rt_sees 9911 gw3 dead && rt_sees 9912 gw3 dead; }

[[ ${BASH_SOURCE[0]} != "$0" ]] && return 0

# ---- driver -------------------------------------------------------------------
cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly REPO=$PWD
readonly RUN_USER=gv-readme-test
readonly IMAGE=grapevine:readme-test
readonly PORTS="8081 8082 8083 9911 9912 9913"
readonly RUN_TIMEOUT=${GV_README_TIMEOUT:-1200}
RT_T0=$SECONDS
export GV_SUBNET=${GV_SUBNET:-10.212.$((200 + $$ % 50)).0/24} GV_IMAGE=$IMAGE

die() {
    rt_log "FAIL: $*" >&2
    exit 1
}

# extract_blocks README DIR: writes each marked block to DIR/NAME.sh and
# fails unless the names are exactly $RT_BLOCKS, in that order.
extract_blocks() {
    local names
    names=$(awk -v dir="$2" '
        /^<!-- readme-test: [a-z-]+ -->$/ { name = $3; want = 1; next }
        want && /^```sh$/ { inblock = 1; want = 0; order = order " " name; next }
        want { print "block " name ": the marker must be followed by a ```sh line" > "/dev/stderr"; exit 1 }
        inblock && /^```$/ { inblock = 0; close(dir "/" name ".sh"); next }
        inblock { print > (dir "/" name ".sh") }
        END { print substr(order, 2) }' "$1")
    [[ $names == "$RT_BLOCKS" ]] ||
        die "README.md's marked blocks are '$names', expected '$RT_BLOCKS'"
}

# preflight: nothing of project deploy exists and the README's ports are free.
preflight() {
    local p
    [[ -z $(rt_project_left) ]] ||
        die "compose project 'deploy' exists (a README cluster of yours?): $(rt_project_left)"
    for p in $PORTS; do
        ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || die "port $p is in use: the README needs it"
    done
    ! id "$RUN_USER" >/dev/null 2>&1 ||
        die "user $RUN_USER exists (left by a killed run?): userdel -r $RUN_USER"
}

# write_script COPY BLOCKS_DIR OUT: the README blocks with the checks between.
write_script() {
    local copy=$1 blocks=$2 out=$3 name
    {
        echo '#!/usr/bin/env bash'
        echo '# Generated by deploy/readme-test.sh: README.md blocks, verbatim, and checks.'
        echo 'set -euo pipefail'
        printf 'source %q\n' "$copy/deploy/readme-test.sh"
        # shellcheck disable=SC2016 # $SECONDS is the generated script's
        printf 'RT_T0=$SECONDS RT_DEPLOY=%q\n' "$copy/deploy"
        printf 'cd %q\n' "$copy"
        for name in $RT_BLOCKS; do
            printf 'rt_log "---- README block %s"\n' "$name"
            echo 'set -x'
            cat "$blocks/$name.sh"
            echo '{ set +x; } 2>/dev/null'
            printf 'rt_after %s\n' "$name"
        done
        echo 'rt_log "README steps passed"'
    } >"$out"
}

RUN_DIR=
cleanup_run() { # removes what one run made, whoever ran it
    local f=label=com.docker.compose.project=deploy ids
    mapfile -t ids < <(docker ps -aq --filter "$f")
    [[ ${#ids[@]} -eq 0 ]] || docker rm -f "${ids[@]}" >/dev/null 2>&1 || true
    mapfile -t ids < <(docker network ls -q --filter "$f")
    [[ ${#ids[@]} -eq 0 ]] || docker network rm "${ids[@]}" >/dev/null 2>&1 || true
    mapfile -t ids < <(docker volume ls -q --filter "$f")
    [[ ${#ids[@]} -eq 0 ]] || docker volume rm -f "${ids[@]}" >/dev/null 2>&1 || true
    docker image rm -f "$IMAGE" >/dev/null 2>&1 || true
    # compose v2 tags one image per service: the other five are left untagged.
    docker image prune -f --filter "$f" >/dev/null 2>&1 || true
    docker image prune -f --filter label=org.grapevine.stage=build >/dev/null 2>&1 || true
    if id "$RUN_USER" >/dev/null 2>&1; then
        userdel -f -r "$RUN_USER" >/dev/null 2>&1 || die "cannot remove user $RUN_USER"
    fi
    [[ -z $RUN_DIR ]] || rm -rf "$RUN_DIR"
    RUN_DIR=
}
trap 'rc=$?; trap - EXIT; cleanup_run; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run_as WHO: the README's steps as root or as a new user of the docker group.
run_as() {
    local who=$1 copy log start rc
    preflight
    RUN_DIR=$(mktemp -d /tmp/gv-readme-test.XXXXXX)
    chmod 755 "$RUN_DIR"
    if [[ $who == user ]]; then
        useradd -m -d "$RUN_DIR/home" -G docker -s /bin/bash "$RUN_USER"
        copy=$RUN_DIR/home/grapevine
    else
        copy=$RUN_DIR/grapevine
    fi
    mkdir -p "$copy" "$RUN_DIR/blocks"
    git -C "$REPO" ls-files -z -co --exclude-standard | tar -C "$REPO" --null -T - -c | tar -C "$copy" -x
    extract_blocks "$copy/README.md" "$RUN_DIR/blocks"
    write_script "$copy" "$RUN_DIR/blocks" "$RUN_DIR/readme-run.sh"
    local cmd=(bash "$RUN_DIR/readme-run.sh")
    if [[ -n ${GV_README_COMPOSE:-} ]]; then
        mkdir -p "$RUN_DIR/bin"
        ln -s "$(realpath "$GV_README_COMPOSE")" "$RUN_DIR/bin/docker-compose"
        cmd=(env "PATH=$RUN_DIR/bin:$PATH" "${cmd[@]}")
    fi
    if [[ $who == user ]]; then
        chown -R "$RUN_USER:" "$copy"
        cmd=(runuser -u "$RUN_USER" -- "${cmd[@]}")
    fi
    log=$RUN_DIR/readme-run.log
    local name=root version
    if [[ $who == user ]]; then name="$RUN_USER (docker group)"; fi
    version=$(PATH=$RUN_DIR/bin:$PATH docker-compose version --short 2>/dev/null || echo '?')
    rt_log "==== as $name with docker-compose $version, mesh $GV_SUBNET"
    start=$SECONDS
    set +e
    (cd "$copy" && timeout -k 10 "$RUN_TIMEOUT" "${cmd[@]}") 2>&1 | tee "$log" | grep --line-buffered '^\[readme-test'
    rc=${PIPESTATUS[0]}
    set -e
    if [[ $rc -ne 0 ]]; then
        rt_log "last 40 lines of the run's log (all of it: ${TMPDIR:-/tmp}/gv-readme-test-$who.log):"
        cp "$log" "${TMPDIR:-/tmp}/gv-readme-test-$who.log"
        grep -v '^\[readme-test' "$log" | tail -40 | sed 's/^/    /'
        [[ $rc -ne 124 ]] || die "as $who: timed out after ${RUN_TIMEOUT}s"
        die "as $who: the README's steps failed (exit $rc)"
    fi
    rt_log "==== as $who: passed in $((SECONDS - start))s"
    cleanup_run
}

[[ $(id -u) -eq 0 ]] || die "run as root: it creates and removes a user of the docker group"
for c in docker curl python3 git runuser useradd timeout; do
    command -v "$c" >/dev/null || die "$c is needed"
done
[[ -n ${GV_README_COMPOSE:-} ]] || command -v docker-compose >/dev/null ||
    die "docker-compose is needed (or GV_README_COMPOSE naming one)"
getent group docker >/dev/null || die "there is no docker group"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer"
for who in ${GV_README_AS:-root user}; do
    [[ $who == root || $who == user ]] || die "GV_README_AS: '$who' is neither root nor user"
    run_as "$who"
done
rt_log "ALL README STEPS PASSED (as ${GV_README_AS:-root user}) in $((SECONDS - RT_T0))s"
