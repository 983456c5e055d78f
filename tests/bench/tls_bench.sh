#!/usr/bin/env bash
# tls_bench.sh - grapevine's TLS termination beside HAProxy's, same certificate
# (self-signed P-256), one worker/thread each pinned to PROXY_CPU, wrk on
# LOAD_CPU, both in front of one `grapevine echo` upstream. Prints per proxy:
#   - TLS handshakes/s: wrk with "Connection: close" (one full handshake per
#     request, no session resumption);
#   - TLS keep-alive requests/s: wrk over https, 64 connections.
# Not run in CI. Usage: tests/bench/tls_bench.sh [--duration S]
# Env: DURATION (10), GRAPEVINE_BIN (default build-release/grapevine, built
# when missing), BENCH_BASE_PORT (18400), PROXY_CPU (0), LOAD_CPU (1).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-10}
BASE=${BENCH_BASE_PORT:-18400}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
[[ ${1:-} == --duration ]] && DURATION=$2
BIN=${GRAPEVINE_BIN:-}
if [[ -z $BIN ]]; then
    BIN=$ROOT/build-release/grapevine
    if [[ ! -x $BIN ]]; then
        cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$ROOT/build-release" -j"$(nproc)" >/dev/null
    fi
fi
for t in wrk haproxy openssl taskset; do
    command -v $t >/dev/null || { echo "tls_bench: $t is missing" >&2; exit 1; }
done

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

ECHO_PORT=$BASE GV_PORT=$((BASE + 1)) GV_TLS=$((BASE + 2)) GV_ADMIN=$((BASE + 3))
HA_TLS=$((BASE + 4))
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=a.test -addext subjectAltName=DNS:a.test \
    -keyout "$TMP/a.key" -out "$TMP/a.pem" 2>/dev/null
cat "$TMP/a.pem" "$TMP/a.key" >"$TMP/haproxy.pem"

taskset -c "$LOAD_CPU" "$BIN" echo --listen 127.0.0.1:$ECHO_PORT --name echo >/dev/null 2>&1 &
PIDS+=($!)

cat >"$TMP/gv.yaml" <<YAML
node:
  listen: 127.0.0.1:$GV_PORT
  admin: 127.0.0.1:$GV_ADMIN
  workers: 1
  access_log: false
  data_dir: $TMP/data
  tls: {listen: 127.0.0.1:$GV_TLS, certificates: [{cert: $TMP/a.pem, key: $TMP/a.key}]}
services:
  - name: echo
    targets: [{address: 127.0.0.1:$ECHO_PORT}]
routes:
  - name: main
    match: {paths: ["/"], path_type: prefix}
    service: echo
YAML
taskset -c "$PROXY_CPU" "$BIN" run -c "$TMP/gv.yaml" >"$TMP/gv.log" 2>&1 &
PIDS+=($!)

cat >"$TMP/haproxy.cfg" <<CFG
global
  nbthread 1
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option forwardfor
frontend fe
  bind 127.0.0.1:$HA_TLS ssl crt $TMP/haproxy.pem alpn http/1.1
  http-request set-header X-Forwarded-Proto https
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:$ECHO_PORT
CFG
taskset -c "$PROXY_CPU" haproxy -f "$TMP/haproxy.cfg" >"$TMP/ha.log" 2>&1 &
PIDS+=($!)

for p in $ECHO_PORT $GV_TLS $HA_TLS; do
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break
        sleep 0.1
    done
done

rps() { # url [wrk args...] -> requests/s
    local url=$1
    shift
    taskset -c "$LOAD_CPU" wrk -t1 -d"${DURATION}s" "$@" "$url" 2>&1 |
        awk '/Requests\/sec/ {print int($2)} /Non-2xx|Socket errors/ {print "  (" $0 ")" > "/dev/stderr"}'
}

printf '%-10s %16s %22s\n' proxy "handshakes/s" "keep-alive req/s (c64)"
for proxy in grapevine haproxy; do
    port=$GV_TLS
    [[ $proxy == haproxy ]] && port=$HA_TLS
    url=https://127.0.0.1:$port/bench
    hs=$(rps "$url" -c16 -H "Connection: close")
    ka=$(rps "$url" -c64)
    printf '%-10s %16s %22s\n' "$proxy" "$hs" "$ka"
done
