#!/usr/bin/env bash
# h2_bench.sh - grapevine's HTTP/2 beside HAProxy's and nginx's, set up alike:
# one worker/thread each pinned to PROXY_CPU, in front of the same two
# `grapevine echo` HTTP/1.1 upstreams (keep-alive), h2load and the upstreams
# on LOAD_CPU. Per proxy, in interleaved rounds (the order rotates):
#   - h2c (prior knowledge) and h2 over TLS (ALPN): requests/s and p99 with
#     h2load, 64 connections x 10 streams (-c64 -m10);
# then once, for grapevine and HAProxy: the memory of N idle client
# connections, HTTP/2 (preface, SETTINGS, one request answered) beside
# HTTP/1.1 (one request answered), as (RSS after - RSS before) / N.
# Not run in CI. Usage: tests/bench/h2_bench.sh [--duration S] [--rounds N] [--idle N]
# Env: DURATION (10), ROUNDS (2), IDLE_CONNS (1000), GRAPEVINE_BIN (default
# build-release/grapevine, built when missing), BENCH_BASE_PORT (18600),
# PROXY_CPU (0), LOAD_CPU (1).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
IDLE_CONNS=${IDLE_CONNS:-1000}
BASE=${BENCH_BASE_PORT:-18600}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
while [[ $# -gt 0 ]]; do
    case $1 in
    --duration) DURATION=$2 && shift ;;
    --rounds) ROUNDS=$2 && shift ;;
    --idle) IDLE_CONNS=$2 && shift ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' && exit 2 ;;
    esac
    shift
done
[[ $DURATION =~ ^[0-9]+$ && $ROUNDS =~ ^[0-9]+$ && $IDLE_CONNS =~ ^[0-9]+$ ]] ||
    { echo "h2_bench: --duration, --rounds and --idle take whole numbers" >&2; exit 2; }
BIN=${GRAPEVINE_BIN:-}
if [[ -z $BIN ]]; then
    BIN=$ROOT/build-release/grapevine
    if [[ ! -x $BIN ]]; then
        cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$ROOT/build-release" -j"$(nproc)" >/dev/null
    fi
fi
for t in h2load haproxy nginx openssl taskset python3; do
    command -v $t >/dev/null || { echo "h2_bench: $t is missing" >&2; exit 1; }
done

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

UP1=$BASE UP2=$((BASE + 1)) GV=$((BASE + 2)) GV_TLS=$((BASE + 3)) GV_ADMIN=$((BASE + 4))
HA=$((BASE + 5)) HA_TLS=$((BASE + 6)) NG=$((BASE + 7)) NG_TLS=$((BASE + 8))
HA_H1=$((BASE + 9)) GV_GOSSIP=$((BASE + 10))
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=a.test -addext subjectAltName=DNS:a.test \
    -keyout "$TMP/a.key" -out "$TMP/a.pem" 2>/dev/null
cat "$TMP/a.pem" "$TMP/a.key" >"$TMP/haproxy.pem"
ulimit -n $((IDLE_CONNS * 2 + 4096)) 2>/dev/null || true

for p in $UP1 $UP2; do
    taskset -c "$LOAD_CPU" "$BIN" echo --listen 127.0.0.1:$p --name "echo-$p" >/dev/null 2>&1 &
    PIDS+=($!)
done

cat >"$TMP/gv.yaml" <<YAML
node:
  listen: 127.0.0.1:$GV
  admin: 127.0.0.1:$GV_ADMIN
  gossip: 127.0.0.1:$GV_GOSSIP
  workers: 1
  access_log: false
  log_level: warn
  data_dir: $TMP/data
  tls: {listen: 127.0.0.1:$GV_TLS, certificates: [{cert: $TMP/a.pem, key: $TMP/a.key}]}
services:
  - name: echo
    targets: [{address: 127.0.0.1:$UP1}, {address: 127.0.0.1:$UP2}]
routes:
  - name: main
    match: {paths: ["/"], path_type: prefix}
    service: echo
YAML
start_gv() {
    taskset -c "$PROXY_CPU" "$BIN" run -c "$TMP/gv.yaml" >"$TMP/gv.log" 2>&1 &
    GV_PID=$!
    PIDS+=($GV_PID)
}
start_gv

cat >"$TMP/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn $((IDLE_CONNS * 2 + 1024))
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 30s
  timeout http-keep-alive 60s
  option forwardfor
  http-reuse always
frontend h2c
  bind 127.0.0.1:$HA proto h2
  bind 127.0.0.1:$HA_TLS ssl crt $TMP/haproxy.pem alpn h2,http/1.1
  bind 127.0.0.1:$HA_H1
  http-request add-header Via "1.1 haproxy"
  default_backend be
backend be
  balance roundrobin
  server up1 127.0.0.1:$UP1
  server up2 127.0.0.1:$UP2
CFG
start_ha() {
    taskset -c "$PROXY_CPU" haproxy -f "$TMP/haproxy.cfg" >"$TMP/ha.log" 2>&1 &
    HA_PID=$!
    PIDS+=($HA_PID)
}
start_ha

mkdir -p "$TMP/nginx/tmp"
cat >"$TMP/nginx/nginx.conf" <<CFG
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/tmp/body;
  proxy_temp_path $TMP/nginx/tmp/proxy;
  fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
  uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
  scgi_temp_path $TMP/nginx/tmp/scgi;
  keepalive_requests 1000000;
  upstream be {
    server 127.0.0.1:$UP1;
    server 127.0.0.1:$UP2;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$NG http2;
    listen 127.0.0.1:$NG_TLS ssl http2;
    ssl_certificate $TMP/a.pem;
    ssl_certificate_key $TMP/a.key;
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header Via "1.1 nginx";
    }
  }
}
CFG
taskset -c "$PROXY_CPU" nginx -p "$TMP/nginx/" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" &
PIDS+=($!)

for p in $UP1 $UP2 $GV $GV_TLS $HA $HA_TLS $NG $NG_TLS; do
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break
        sleep 0.1
    done
done

for pid in $GV_PID $HA_PID; do
    kill -0 "$pid" 2>/dev/null || { cat "$TMP"/*.log >&2; echo "h2_bench: a proxy did not start" >&2; exit 1; }
done
curl -sf --http2-prior-knowledge -o /dev/null "http://127.0.0.1:$GV/bench" ||
    { cat "$TMP/gv.log" >&2; echo "h2_bench: grapevine does not answer" >&2; exit 1; }

# h2load over url -> "requests/s p99_ms", from its per-request log.
measure() {
    local url=$1 log=$TMP/h2load.log out
    rm -f "$log"
    out=$(taskset -c "$LOAD_CPU" h2load -c64 -m10 -D "$DURATION" --warm-up-time=1 \
        --log-file="$log" "$url" 2>&1)
    grep -q "0 failed, 0 errored" <<<"$out" ||
        echo "  ($url: $(grep -E '^requests:' <<<"$out"))" >&2
    local rps p99
    rps=$(awk '/^finished in/ {gsub(",", "", $4); print int($4)}' <<<"$out")
    p99=$(awk '{print $3}' "$log" | sort -n | awk '{v[NR] = $1} END {
        k = int(NR * 0.99); if (k < 1) k = 1
        if (NR == 0) print "-"; else printf "%.2f", v[k] / 1000}')
    echo "$rps $p99"
}

url_of() { # proxy kind
    local port
    case $1/$2 in
    grapevine/h2c) port=$GV ;; grapevine/tls) port=$GV_TLS ;;
    haproxy/h2c) port=$HA ;; haproxy/tls) port=$HA_TLS ;;
    nginx/h2c) port=$NG ;; nginx/tls) port=$NG_TLS ;;
    esac
    [[ $2 == tls ]] && echo "https://127.0.0.1:$port/bench" || echo "http://127.0.0.1:$port/bench"
}

declare -A SUM_RPS SUM_P99
proxies=(grapevine haproxy nginx)
for ((round = 0; round < ROUNDS; round++)); do
    for ((i = 0; i < 3; i++)); do
        proxy=${proxies[$(((i + round) % 3))]}
        for kind in h2c tls; do
            read -r rps p99 < <(measure "$(url_of "$proxy" "$kind")")
            echo "round $((round + 1)) $proxy $kind: $rps req/s, p99 $p99 ms" >&2
            SUM_RPS[$proxy/$kind]=$((${SUM_RPS[$proxy/$kind]:-0} + rps))
            SUM_P99[$proxy/$kind]="${SUM_P99[$proxy/$kind]:-} $p99"
        done
    done
done

echo
printf '%-10s %-5s %12s %14s\n' proxy kind "req/s (mean)" "p99 ms (worst)"
for proxy in "${proxies[@]}"; do
    for kind in h2c tls; do
        worst=$(tr ' ' '\n' <<<"${SUM_P99[$proxy/$kind]}" | { grep -v '^-\?$' || true; } | sort -n | tail -1)
        printf '%-10s %-5s %12d %14s\n' "$proxy" "$kind" \
            $((${SUM_RPS[$proxy/$kind]} / ROUNDS)) "${worst:--}"
    done
done
for kind in h2c tls; do
    g=${SUM_RPS[grapevine/$kind]} h=${SUM_RPS[haproxy/$kind]} n=${SUM_RPS[nginx/$kind]}
    python3 -c "print('$kind: grapevine/haproxy %.2f, grapevine/nginx %.2f' % ($g / max($h, 1), $g / max($n, 1)))"
done

# Idle connections: the RSS a proxy gains per connection held open.
idle_kb() { # pid port proto -> KiB per connection
    python3 - "$1" "$2" "$3" "$IDLE_CONNS" <<'PY'
import socket, sys, time
pid, port, proto, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
if proto == "h2":
    import h2.connection
    def hello(s):
        c = h2.connection.H2Connection()
        c.initiate_connection()
        c.send_headers(1, [(":method", "GET"), (":path", "/idle"), (":scheme", "http"),
                           (":authority", "a")], end_stream=True)
        s.sendall(c.data_to_send())
        done = False
        while not done:
            for ev in c.receive_data(s.recv(65536)):
                done |= type(ev).__name__ == "StreamEnded"
            s.sendall(c.data_to_send())
else:
    def hello(s):
        s.sendall(b"GET /idle HTTP/1.1\r\nHost: a\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            data += s.recv(65536)
before = rss()
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    hello(s)
    socks.append(s)
time.sleep(1)
print("%.1f" % ((rss() - before) / n))
PY
}
echo
printf '%-10s %16s %16s   (%d idle connections)\n' proxy "h2 KiB/conn" "http/1.1 KiB/conn" "$IDLE_CONNS"
# Each measure in a fresh process: memory freed after the load rounds (or by
# the other protocol's connections) would be reused and hide the cost.
fresh() { # fresh gv|ha PORT: the proxy restarted, answering on PORT
    local pid
    if [[ $1 == gv ]]; then pid=$GV_PID; else pid=$HA_PID; fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [[ $1 == gv ]]; then start_gv; else start_ha; fi
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$2") 2>/dev/null && break
        sleep 0.1
    done
}
# Not in $(...): the restarted proxy must be this shell's child (cleanup).
idle_fresh() { # idle_fresh gv|ha PORT h2|h1: KiB per connection in $IDLE
    fresh "$1" "$2"
    if [[ $1 == gv ]]; then
        idle_kb "$GV_PID" "$2" "$3" >"$TMP/idle.out"
    else
        idle_kb "$HA_PID" "$2" "$3" >"$TMP/idle.out"
    fi
    IDLE=$(cat "$TMP/idle.out")
}
idle_fresh gv "$GV" h2 && gv_h2=$IDLE
idle_fresh gv "$GV" h1 && gv_h1=$IDLE
idle_fresh ha "$HA" h2 && ha_h2=$IDLE
idle_fresh ha "$HA_H1" h1 && ha_h1=$IDLE
printf '%-10s %16s %16s\n' grapevine "$gv_h2" "$gv_h1"
printf '%-10s %16s %16s\n' haproxy "$ha_h2" "$ha_h1"
