#!/usr/bin/env bash
# demo.sh - sets up the machine, builds a release grapevine (build-release/)
# and runs a local demo until Ctrl-C: three `grapevine echo` upstreams and a
# three-node cluster (gw1, gw2, gw3) balancing over them, all on 127.0.0.1.
# gw2 and gw3 join through gw1's gossip address.
#
#   scripts/demo.sh              runs the demo in this terminal
#   scripts/demo.sh kill NAME    (from another terminal) SIGKILLs gw1..gw3 or
#                                echo-1..echo-3 of the running demo, as a crash
#                                would; the demo goes on and reports it
#   scripts/demo.sh start NAME   starts it again with the same config
#   scripts/demo.sh --banner     prints the list of things to try that the demo
#                                prints once it is up (the README shows it)
#
# Env: DEMO_PROXY_PORT (8080; gw2 and gw3 use the next two), DEMO_ADMIN_PORT
# (9901, +1, +2), DEMO_GOSSIP_PORT (7946, +1, +2), DEMO_ECHO1_PORT (9001),
# DEMO_ECHO2_PORT (9002), DEMO_ECHO3_PORT (9003); GRAPEVINE_BIN=path uses that
# binary and skips the build; GV_SKIP_SETUP=1 skips scripts/setup.sh;
# DEMO_DIR=path runs the demo in that (empty or new) folder instead of a
# temporary one.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly ROOT=$PWD
readonly PROXY_PORT=${DEMO_PROXY_PORT:-8080}
readonly ADMIN_PORT=${DEMO_ADMIN_PORT:-9901}
readonly GOSSIP_PORT=${DEMO_GOSSIP_PORT:-7946}
readonly ECHO1_PORT=${DEMO_ECHO1_PORT:-9001}
readonly ECHO2_PORT=${DEMO_ECHO2_PORT:-9002}
readonly ECHO3_PORT=${DEMO_ECHO3_PORT:-9003}
# Where `kill` and `start` find the running demo.
readonly CURRENT=${TMPDIR:-/tmp}/grapevine-demo.current
readonly NAMES=(echo-1 echo-2 echo-3 gw1 gw2 gw3)

log() { printf 'demo: %s\n' "$*"; }
die() {
    printf 'demo: error: %s\n' "$*" >&2
    exit 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The binary as the banner names it: relative to the repo root when inside.
bin_shown() {
    local b=${BIN:-${GRAPEVINE_BIN:-build-release/grapevine}}
    [[ $b == /* || ! -e $b ]] || b=$(realpath "$b")
    printf '%s' "${b#"$ROOT"/}"
}

# What the demo prints once everything is up. The README's "Quick start"
# list is this text with the default ports (tests/scenario/test_demo.py
# checks both, and runs every command in it).
banner() {
    local b p1=$PROXY_PORT p2=$((PROXY_PORT + 1)) p3=$((PROXY_PORT + 2))
    local a1=$ADMIN_PORT a3=$((ADMIN_PORT + 2))
    b=$(bin_shown)
    cat <<EOF
curl -s localhost:$p1/hello                         # any node answers: round-robin over echo-1..3
curl -s localhost:$p2/hello                         # gw2 (and :$p3, gw3) the same
$b ctl --admin 127.0.0.1:$a3 members     # the cluster as gw3 sees it: 3 alive
curl -s localhost:$a1/backends                      # every target's health, and who checks it
curl -s localhost:$a1/metrics | grep requests_total # Prometheus metrics
curl -i localhost:$p1/api/x                         # 401: /api needs an API key
curl -s -H 'X-Api-Key: demo-key-alice' localhost:$p2/api/x   # upstream sees X-Consumer: alice
curl -s -o /dev/null -w '%{http_code}\\n' localhost:$p3/three  # 404: no such route yet
curl -s -X PUT localhost:$a1/config/services/three -d '{"targets":[{"address":"127.0.0.1:$ECHO3_PORT"}]}'
curl -s -X PUT localhost:$a1/config/routes/three -d '{"match":{"paths":["/three"]},"service":"three"}'
curl -s localhost:$p3/three                         # made on gw1, served by gw3: "name": "echo-3"
$b ctl --admin 127.0.0.1:$a3 status      # every node on the same config digest
curl -s -X POST localhost:$ECHO1_PORT/fail                    # echo-1 turns unhealthy on every node...
curl -s -X POST localhost:$ECHO1_PORT/recover                 # ...and healthy again
scripts/demo.sh kill gw3                            # crash gw3: the demo goes on, gw1 and gw2 see it dead in ~6 s
$b ctl --admin 127.0.0.1:$a1 members     # gw3: dead
scripts/demo.sh start gw3                           # gw3 comes back with everything it missed
EOF
}

# ---- kill / start: act on the running demo -----------------------------
# demo_dir: the running demo's folder, or die.
demo_dir() {
    local dir
    [[ -f $CURRENT ]] || die "no demo is running (no $CURRENT)"
    dir=$(cat "$CURRENT")
    if [[ ! -f $dir/demo.pid ]] || ! kill -0 "$(cat "$dir/demo.pid")" 2>/dev/null; then
        die "no demo is running (the one in $dir has stopped)"
    fi
    printf '%s' "$dir"
}

known_name() {
    local n
    for n in "${NAMES[@]}"; do [[ $n == "$1" ]] && return 0; done
    die "unknown name \"$1\" (one of: ${NAMES[*]})"
}

# pid_of DIR NAME: the pid of NAME if it is running, else nothing.
pid_of() {
    local pid
    [[ -f $1/$2.pid ]] || return 0
    pid=$(cat "$1/$2.pid")
    kill -0 "$pid" 2>/dev/null && printf '%s' "$pid"
    return 0
}

# launch DIR NAME: starts NAME from its saved command line, records its pid.
launch() {
    local dir=$1 name=$2 bin args
    mapfile -t args <"$dir/$name.cmd"
    bin=$(cat "$dir/bin")
    setsid "$bin" "${args[@]}" >>"$dir/$name.log" 2>&1 </dev/null &
    echo $! >"$dir/$name.pid"
}

case ${1:-} in
--banner)
    banner
    exit 0
    ;;
kill | start)
    [[ $# -eq 2 ]] || die "usage: scripts/demo.sh $1 NAME (one of: ${NAMES[*]})"
    known_name "$2"
    dir=$(demo_dir)
    pid=$(pid_of "$dir" "$2")
    if [[ $1 == kill ]]; then
        [[ -n $pid ]] || die "$2 is not running"
        kill -KILL "$pid"
        log "$2 killed (SIGKILL); bring it back with: scripts/demo.sh start $2"
    else
        [[ -z $pid ]] || die "$2 is already running (pid $pid)"
        launch "$dir" "$2"
        log "$2 started again (log: $dir/$2.log)"
    fi
    exit 0
    ;;
"") ;;
*) die "unknown argument \"$1\" (try: scripts/demo.sh, kill NAME, start NAME, --banner)" ;;
esac

# ---- the demo ----------------------------------------------------------
if [[ ${GV_SKIP_SETUP:-0} != 1 ]]; then
    "$ROOT/scripts/setup.sh"
fi

if [[ -n ${GRAPEVINE_BIN:-} ]]; then
    BIN=$(realpath "$GRAPEVINE_BIN")
else
    log "building a release binary in build-release/"
    cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$ROOT/build-release" -j "${JOBS:-2}" --target grapevine
    BIN=$ROOT/build-release/grapevine
fi
[[ -x $BIN ]] || die "no grapevine binary at $BIN"

for p in "$PROXY_PORT" $((PROXY_PORT + 1)) $((PROXY_PORT + 2)) "$ADMIN_PORT" \
    $((ADMIN_PORT + 1)) $((ADMIN_PORT + 2)) "$GOSSIP_PORT" $((GOSSIP_PORT + 1)) \
    $((GOSSIP_PORT + 2)) "$ECHO1_PORT" "$ECHO2_PORT" "$ECHO3_PORT"; do
    if port_busy "$p"; then
        die "port $p on 127.0.0.1 is in use (see the DEMO_*_PORT variables at the top of $0)"
    fi
done

if [[ -n ${DEMO_DIR:-} ]]; then
    mkdir -p "$DEMO_DIR"
    WORK=$(realpath "$DEMO_DIR")
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/grapevine-demo.XXXXXX")
fi
echo $$ >"$WORK/demo.pid"
echo "$BIN" >"$WORK/bin"
echo "$WORK" >"$CURRENT"

cleanup() {
    local name pid i alive
    trap - EXIT INT TERM
    for name in "${NAMES[@]}"; do
        pid=$(pid_of "$WORK" "$name")
        [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null
    done
    # Give them a few seconds to drain, then make sure.
    for i in $(seq 50); do
        alive=0
        for name in "${NAMES[@]}"; do [[ -n $(pid_of "$WORK" "$name") ]] && alive=1; done
        [[ $alive -eq 0 ]] && break
        sleep 0.1
    done
    for name in "${NAMES[@]}"; do
        pid=$(pid_of "$WORK" "$name")
        [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
    done
    [[ $(cat "$CURRENT" 2>/dev/null) == "$WORK" ]] && rm -f "$CURRENT"
    [[ -z ${DEMO_DIR:-} ]] && rm -rf "$WORK"
    log "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME ARGS...: saves NAME's command line (for `demo.sh start`), runs it.
start() {
    local name=$1
    shift
    printf '%s\n' "$@" >"$WORK/$name.cmd"
    launch "$WORK" "$name"
}

# wait_port PORT NAME: polls until the port accepts, with a deadline.
wait_port() {
    local port=$1 name=$2 deadline=$((SECONDS + 20))
    until port_busy "$port"; do
        if [[ -z $(pid_of "$WORK" "$name") ]]; then
            cat "$WORK/$name.log" >&2
            die "$name exited during start-up"
        fi
        ((SECONDS < deadline)) || die "$name did not listen on 127.0.0.1:$port within 20s"
        sleep 0.05
    done
}

start echo-1 echo --listen "127.0.0.1:$ECHO1_PORT" --name echo-1
start echo-2 echo --listen "127.0.0.1:$ECHO2_PORT" --name echo-2
start echo-3 echo --listen "127.0.0.1:$ECHO3_PORT" --name echo-3
wait_port "$ECHO1_PORT" echo-1
wait_port "$ECHO2_PORT" echo-2
wait_port "$ECHO3_PORT" echo-3

# The cluster state (services, routes) is the same for every node; the node:
# section differs by name and ports. No route catches every path, so a route
# added later visibly appears (404 before, 200 after).
for i in 1 2 3; do
    mkdir -p "$WORK/gw$i.data"
    cat >"$WORK/gw$i.yaml" <<EOF
node:
  name: gw$i
  listen: 127.0.0.1:$((PROXY_PORT + i - 1))
  admin: 127.0.0.1:$((ADMIN_PORT + i - 1))
  gossip: 127.0.0.1:$((GOSSIP_PORT + i - 1))
  data_dir: $WORK/gw$i.data
  access_log: false
services:
  - name: demo
    balancer: round_robin
    targets:
      - address: 127.0.0.1:$ECHO1_PORT
      - address: 127.0.0.1:$ECHO2_PORT
      - address: 127.0.0.1:$ECHO3_PORT
    health_check:
      path: /healthz
      interval: 1s
      timeout: 500ms
      healthy: 1
      unhealthy: 1
routes:
  - name: hello
    match:
      paths: ["/hello"]
      path_type: prefix
    service: demo
  - name: api
    match:
      paths: ["/api"]
      path_type: prefix
    service: demo
    plugins:
      - key_auth: {header: X-Api-Key}
      - rate_limit: {limit: 5, window: 1s, key: consumer, scope: cluster}
consumers:
  - name: alice
    key_auth: [demo-key-alice]
plugins:
  - request_id: {header: X-Request-Id}
EOF
done

start gw1 run -c "$WORK/gw1.yaml"
wait_port "$PROXY_PORT" gw1
for i in 2 3; do
    start "gw$i" run -c "$WORK/gw$i.yaml" --join "127.0.0.1:$GOSSIP_PORT"
done
for i in 1 2 3; do
    wait_port $((PROXY_PORT + i - 1)) "gw$i"
    wait_port $((ADMIN_PORT + i - 1)) "gw$i"
done

cat <<EOF

grapevine demo is running: a three-node cluster (configs and logs in $WORK)
  gw1  proxy http://127.0.0.1:$PROXY_PORT  admin http://127.0.0.1:$ADMIN_PORT
  gw2  proxy http://127.0.0.1:$((PROXY_PORT + 1))  admin http://127.0.0.1:$((ADMIN_PORT + 1))
  gw3  proxy http://127.0.0.1:$((PROXY_PORT + 2))  admin http://127.0.0.1:$((ADMIN_PORT + 2))
  every node: /hello -> service "demo" (round_robin over echo-1 :$ECHO1_PORT, echo-2 :$ECHO2_PORT, echo-3 :$ECHO3_PORT);
  /api needs an API key (consumer alice: demo-key-alice) and allows alice 5 requests/s cluster-wide

Try, from $ROOT in another terminal:
$(banner)

Ctrl-C stops everything.

EOF

# Report processes that go away or come back until interrupted.
declare -A up=()
for name in "${NAMES[@]}"; do up[$name]=1; done
while true; do
    for name in "${NAMES[@]}"; do
        pid=$(pid_of "$WORK" "$name")
        if [[ -z $pid && ${up[$name]} == 1 ]]; then
            up[$name]=0
            log "$name is down (log: $WORK/$name.log); the demo goes on; scripts/demo.sh start $name brings it back"
        elif [[ -n $pid && ${up[$name]} == 0 ]]; then
            up[$name]=1
            log "$name is up again (pid $pid)"
        fi
    done
    sleep 0.5
done
