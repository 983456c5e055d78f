#!/usr/bin/env bash
# demo.sh - sets up the machine, builds a release grapevine (build-release/)
# and runs a local demo until Ctrl-C: three `grapevine echo` upstreams and a
# three-node cluster (gw1, gw2, gw3) balancing over them, all on 127.0.0.1.
# gw2 and gw3 join through gw1's gossip address.
#
# Env: DEMO_PROXY_PORT (8080; gw2 and gw3 use the next two), DEMO_ADMIN_PORT
# (9901, +1, +2), DEMO_GOSSIP_PORT (7946, +1, +2), DEMO_ECHO1_PORT (9001),
# DEMO_ECHO2_PORT (9002), DEMO_ECHO3_PORT (9003); GRAPEVINE_BIN=path uses that binary and skips the
# build; GV_SKIP_SETUP=1 skips scripts/setup.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly ROOT=$PWD
readonly PROXY_PORT=${DEMO_PROXY_PORT:-8080}
readonly ADMIN_PORT=${DEMO_ADMIN_PORT:-9901}
readonly GOSSIP_PORT=${DEMO_GOSSIP_PORT:-7946}
readonly ECHO1_PORT=${DEMO_ECHO1_PORT:-9001}
readonly ECHO2_PORT=${DEMO_ECHO2_PORT:-9002}
readonly ECHO3_PORT=${DEMO_ECHO3_PORT:-9003}

log() { printf 'demo: %s\n' "$*"; }
die() {
    printf 'demo: error: %s\n' "$*" >&2
    exit 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ ${GV_SKIP_SETUP:-0} != 1 ]]; then
    "$ROOT/scripts/setup.sh"
fi

if [[ -n ${GRAPEVINE_BIN:-} ]]; then
    BIN=$GRAPEVINE_BIN
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

WORK=$(mktemp -d "${TMPDIR:-/tmp}/grapevine-demo.XXXXXX")
pids=()
names=()

cleanup() {
    local pid i
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    # Give them a few seconds to drain, then make sure.
    for i in $(seq 50); do
        local alive=0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        [[ $alive -eq 0 ]] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
    log "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME LOGFILE ARGS... : runs the binary in the background.
start() {
    local name=$1 logfile=$2
    shift 2
    if [[ $logfile == - ]]; then
        "$BIN" "$@" &
    else
        "$BIN" "$@" >"$logfile" 2>&1 &
    fi
    pids+=("$!")
    names+=("$name")
}

# wait_port PORT NAME LOGFILE: polls until the port accepts, with a deadline.
wait_port() {
    local port=$1 name=$2 logfile=$3 deadline=$((SECONDS + 20)) i
    until port_busy "$port"; do
        for i in "${!pids[@]}"; do
            if ! kill -0 "${pids[$i]}" 2>/dev/null; then
                [[ -f $logfile ]] && cat "$logfile" >&2
                die "${names[$i]} exited during start-up"
            fi
        done
        ((SECONDS < deadline)) || die "$name did not listen on 127.0.0.1:$port within 20s"
        sleep 0.05
    done
}

start echo-1 "$WORK/echo-1.log" echo --listen "127.0.0.1:$ECHO1_PORT" --name echo-1
start echo-2 "$WORK/echo-2.log" echo --listen "127.0.0.1:$ECHO2_PORT" --name echo-2
start echo-3 "$WORK/echo-3.log" echo --listen "127.0.0.1:$ECHO3_PORT" --name echo-3
wait_port "$ECHO1_PORT" echo-1 "$WORK/echo-1.log"
wait_port "$ECHO2_PORT" echo-2 "$WORK/echo-2.log"
wait_port "$ECHO3_PORT" echo-3 "$WORK/echo-3.log"

# The cluster state (services, routes) is the same for every node; the node:
# section differs by name and ports.
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
      interval: 2s
      timeout: 1s
routes:
  - name: root
    match:
      paths: ["/"]
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

start gw1 "$WORK/gw1.log" run -c "$WORK/gw1.yaml"
wait_port "$PROXY_PORT" gw1 "$WORK/gw1.log"
for i in 2 3; do
    start "gw$i" "$WORK/gw$i.log" run -c "$WORK/gw$i.yaml" --join "127.0.0.1:$GOSSIP_PORT"
done
for i in 1 2 3; do
    wait_port $((PROXY_PORT + i - 1)) "gw$i" "$WORK/gw$i.log"
    wait_port $((ADMIN_PORT + i - 1)) "gw$i" "$WORK/gw$i.log"
done

cat <<EOF

grapevine demo is running: a three-node cluster (configs and logs in $WORK)
  gw1  proxy http://127.0.0.1:$PROXY_PORT  admin http://127.0.0.1:$ADMIN_PORT
  gw2  proxy http://127.0.0.1:$((PROXY_PORT + 1))  admin http://127.0.0.1:$((ADMIN_PORT + 1))
  gw3  proxy http://127.0.0.1:$((PROXY_PORT + 2))  admin http://127.0.0.1:$((ADMIN_PORT + 2))
  every node: service "demo" (round_robin over echo-1 :$ECHO1_PORT, echo-2 :$ECHO2_PORT, echo-3 :$ECHO3_PORT)
  /api needs an API key (consumer alice: demo-key-alice) and allows alice 5 requests/s cluster-wide

Try:
  curl -s localhost:$PROXY_PORT/hello     # any node answers: also :$((PROXY_PORT + 1)), :$((PROXY_PORT + 2))
  $BIN ctl --admin 127.0.0.1:$ADMIN_PORT members
  $BIN ctl --admin 127.0.0.1:$((ADMIN_PORT + 2)) backends
  curl localhost:$ADMIN_PORT/metrics
  curl -i localhost:$PROXY_PORT/api/x                              # 401: no key
  curl -s -H 'X-Api-Key: demo-key-alice' localhost:$((PROXY_PORT + 1))/api/x   # X-Consumer: alice upstream
  for p in $PROXY_PORT $((PROXY_PORT + 1)) $((PROXY_PORT + 2)) $PROXY_PORT $((PROXY_PORT + 1)) $((PROXY_PORT + 2)); do
      curl -s -o /dev/null -w '%{http_code} ' -H 'X-Api-Key: demo-key-alice' localhost:\$p/api; done; echo
                                                                    # 429 once alice has used her 5/s, counted over all three nodes
  curl -X POST localhost:$ECHO1_PORT/fail      # echo-1 turns unhealthy; /recover brings it back
  kill gw3 (pkill -f gw3.yaml) and watch 'ctl members' on gw1 mark it dead

Change config on gw1 and watch it reach gw3:
  $BIN ctl --admin 127.0.0.1:$((ADMIN_PORT + 2)) status --watch --timeout 60 &
  curl -X PUT localhost:$ADMIN_PORT/config/routes/only-echo-3 \\
       -d '{"match":{"paths":["/three"]},"service":"three"}'      # 400: no service "three"
  printf 'kind: services\nname: three\ntargets: [{address: 127.0.0.1:$ECHO3_PORT}]\n' |
       $BIN ctl --admin 127.0.0.1:$ADMIN_PORT apply -f -
  curl -X PUT localhost:$ADMIN_PORT/config/routes/only-echo-3 \\
       -d '{"match":{"paths":["/three"]},"service":"three"}'
  curl -s localhost:$((PROXY_PORT + 2))/three                 # gw3 routes it to echo-3

Ctrl-C stops everything.

EOF

# Wait until interrupted, or until one of the processes dies on its own.
while true; do
    wait -n "${pids[@]}" || true
    for i in "${!pids[@]}"; do
        if ! kill -0 "${pids[$i]}" 2>/dev/null; then
            log "${names[$i]} exited unexpectedly"
            [[ -f $WORK/${names[$i]}.log ]] && tail -n 20 "$WORK/${names[$i]}.log" >&2
            exit 1
        fi
    done
done
