#!/usr/bin/env bash
# bench.sh - grapevine against HAProxy and nginx, set up alike, on this machine.
#
# Each proxy: one worker, pinned to core 0 (taskset), in front of the same two
# upstreams (`grapevine echo` on 127.0.0.1), keep-alive to the upstreams,
# no access log, the same headers added: X-Forwarded-*, Via (both ways) and a
# W3C traceparent (grapevine sends one upstream on every request: the echo
# upstreams reflect every header, so without it in the others' configs they
# had ~70 bytes less to parse and echo per request, ~1.8 us of the load
# core's CPU). wrk and the upstreams share core 1.
# Measured per proxy, in interleaved rounds (the order rotates every round):
#   - requests/s, p50 and p99 at 64 connections (wrk -t1 -c64 --latency),
#     and the proxy's CPU use meanwhile;
#   - p50 at 1 connection (wrk -t1 -c1);
# then once per proxy, in a fresh process: the memory of N idle keep-alive
# client connections (each sent one request first), as (RSS after - RSS
# before) / N from /proc/PID/status (and the same with Pss from smaps_rollup).
#
# Usage: tests/bench/bench.sh [--quick] [--rounds N] [--duration S] [--idle N]
#                             [--only grapevine,haproxy,nginx] [--upstream echo|nginx]
#                             [--bin PATH] [--out FILE]
#   --quick      1 round of 3 s, 1000 idle connections (a smoke check)
#   --upstream   nginx: static nginx upstreams instead of `grapevine echo`,
#                for comparing HAProxy and nginx without a grapevine build
#   --out FILE   also keep the raw per-round results (TSV) in FILE
#   --ratelimit  grapevine plain against grapevine_rl (the same with a scope
#                cluster rate_limit that is never reached on every request)
#                and the ratio of their requests/s (target >= 0.9); no idle test
#   --plugins    grapevine plain against grapevine_auth (key_auth + request_id
#                + request/response_headers on every request) and grapevine_jwt
#                (HS256 jwt on every request) with the ratios of their
#                requests/s (targets >= 0.9 and >= 0.85); no idle test. Every
#                proxy gets the same request (API key and bearer token).
# Env: ROUNDS (3), DURATION (10), IDLE_CONNS (10000), GRAPEVINE_BIN,
#      BENCH_BASE_PORT (18000), PROXY_CPU (0), LOAD_CPU (1).
# Without --bin/GRAPEVINE_BIN, a release build is made in build-release/.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
IDLE_CONNS=${IDLE_CONNS:-10000}
PROXIES=grapevine,haproxy,nginx
UPSTREAM="echo"
BIN=${GRAPEVINE_BIN:-}
OUT=""
BASE=${BENCH_BASE_PORT:-18000}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [[ $# -gt 0 ]]; do
    case $1 in
    --quick) ROUNDS=1 DURATION=3 IDLE_CONNS=1000 ;;
    --rounds) ROUNDS=$2 && shift ;;
    --duration) DURATION=$2 && shift ;;
    --idle) IDLE_CONNS=$2 && shift ;;
    --only) PROXIES=$2 && shift ;;
    --upstream) UPSTREAM=$2 && shift ;;
    --bin) BIN=$2 && shift ;;
    --out) OUT=$2 && shift ;;
    --ratelimit) PROXIES=grapevine,grapevine_rl RATELIMIT=1 ;;
    --plugins) PROXIES=grapevine,grapevine_auth,grapevine_jwt PLUGINS=1 ;;
    -h | --help) usage 0 ;;
    *) printf 'bench: unknown argument %s\n' "$1" >&2 && usage 2 ;;
    esac
    shift
done

log() { printf 'bench: %s\n' "$*"; }
die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}

IFS=, read -r -a proxies <<<"$PROXIES"
for p in "${proxies[@]}"; do
    [[ $p =~ ^(grapevine|grapevine_rl|grapevine_auth|grapevine_jwt|haproxy|nginx)$ ]] || die "unknown proxy '$p' in --only"
done
[[ $UPSTREAM =~ ^(echo|nginx)$ ]] || die "--upstream is echo or nginx"
for n in "$ROUNDS" "$DURATION" "$IDLE_CONNS"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "rounds, duration and idle connections are positive integers"
done

readonly UP1=$((BASE + 1)) UP2=$((BASE + 2))
readonly GV_PORT=$((BASE + 100)) HA_PORT=$((BASE + 101)) NG_PORT=$((BASE + 102))
readonly GV_ADMIN=$((BASE + 110)) GV_GOSSIP=$((BASE + 111))

# ---- tools, limits, binary ------------------------------------------------
for tool in wrk haproxy nginx taskset python3 curl; do
    command -v "$tool" >/dev/null || die "$tool not found: run scripts/setup.sh"
done
if [[ $(nproc) -lt 2 ]]; then
    log "warning: fewer than 2 cores, no CPU pinning"
    pin_proxy=()
    pin_load=()
else
    pin_proxy=(taskset -c "$PROXY_CPU")
    pin_load=(taskset -c "$LOAD_CPU")
fi

# HAProxy reserves two descriptors per connection it may take (maxconn), so
# the idle connection count is capped by half the open-file limit.
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
MAXCONN=$((IDLE_CONNS + 200))
if ((2 * MAXCONN + 100 > NOFILE)); then
    IDLE_CONNS=$(((NOFILE - 100) / 2 - 200))
    MAXCONN=$((IDLE_CONNS + 200))
    log "warning: open-file limit is $NOFILE: measuring $IDLE_CONNS idle connections"
fi

need_bin=0
[[ $UPSTREAM == echo ]] && need_bin=1
[[ ",$PROXIES," == *,grapevine,* ]] && need_bin=1
if [[ $need_bin -eq 1 && -z $BIN ]]; then
    log "building a release binary in build-release/"
    cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$ROOT/build-release" -j "${JOBS:-2}" --target grapevine >/dev/null
    BIN=$ROOT/build-release/grapevine
fi
if [[ $need_bin -eq 1 ]]; then
    [[ -x $BIN ]] || die "no grapevine binary at $BIN"
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$UP1" "$UP2" "$GV_PORT" "$HA_PORT" "$NG_PORT" "$GV_ADMIN"; do
    ! port_busy "$port" || die "port $port is in use (set BENCH_BASE_PORT)"
done

# ---- process bookkeeping ----------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/grapevine-bench.XXXXXX")

# --plugins: every proxy gets the same API key and bearer token, so the only
# difference between the rows is the work the plugins do.
BENCH_KEY=bench-key-0123456789
BENCH_SECRET=bench-secret-0123456789abcdef
AUTH_HEADERS=()
if [[ -n ${PLUGINS:-} ]]; then
    BENCH_TOKEN=$(python3 - "$BENCH_SECRET" <<'PY'
import base64, hashlib, hmac, json, sys
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"iss": "bench-app", "sub": "bench", "exp": 4102444800}).encode())
sig = hmac.new(sys.argv[1].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
print(f"{head}.{body}.{b64(sig)}")
PY
    )
    AUTH_HEADERS=(-H "X-Api-Key: $BENCH_KEY" -H "Authorization: Bearer $BENCH_TOKEN")
fi
RESULTS=$WORK/results.tsv
: >"$RESULTS"
all_pids=()

stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    trap - EXIT INT TERM
    for pid in "${all_pids[@]}"; do
        stop_pid "$pid"
    done
    if [[ -n $OUT && -s $RESULTS ]]; then
        cp "$RESULTS" "$OUT"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# spawn LOGNAME CMD...: starts CMD in the background; its pid in LAST_PID.
spawn() {
    local name=$1
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    LAST_PID=$!
    all_pids+=("$LAST_PID")
}

# wait_port PORT PID NAME: polls until PORT accepts, 15 s at most.
wait_port() {
    local port=$1 pid=$2 name=$3 deadline=$((SECONDS + 15))
    until port_busy "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$WORK/$name.log" >&2 || true
            die "$name exited during start-up"
        fi
        ((SECONDS < deadline)) || die "$name did not listen on port $port within 15 s"
        sleep 0.05
    done
}

# ---- upstreams --------------------------------------------------------------
start_upstreams() {
    if [[ $UPSTREAM == echo ]]; then
        spawn up-1 "${pin_load[@]}" "$BIN" echo --listen "127.0.0.1:$UP1" --name up-1
        wait_port "$UP1" "$LAST_PID" up-1
        spawn up-2 "${pin_load[@]}" "$BIN" echo --listen "127.0.0.1:$UP2" --name up-2
        wait_port "$UP2" "$LAST_PID" up-2
        return
    fi
    # Static stand-ins with an echo-sized JSON body.
    local pad dir=$WORK/nginx-upstream
    pad=$(printf 'x%.0s' $(seq 300))
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile $NOFILE;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    default_type application/json;
    server { listen 127.0.0.1:$UP1; location / { return 200 '{"name": "up-1", "pad": "$pad"}'; } }
    server { listen 127.0.0.1:$UP2; location / { return 200 '{"name": "up-2", "pad": "$pad"}'; } }
}
EOF
    spawn upstream-nginx "${pin_load[@]}" nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log"
    wait_port "$UP1" "$LAST_PID" upstream-nginx
    wait_port "$UP2" "$LAST_PID" upstream-nginx
}

# ---- proxies ----------------------------------------------------------------
write_configs() {
    mkdir -p "$WORK/gv-data" "$WORK/nginx/tmp"
    cat >"$WORK/grapevine.yaml" <<EOF
node:
  name: bench
  listen: 127.0.0.1:$GV_PORT
  admin: 127.0.0.1:$GV_ADMIN
  gossip: 127.0.0.1:$GV_GOSSIP
  data_dir: $WORK/gv-data
  workers: 1
  access_log: false
  log_level: warn
services:
  - name: echo
    balancer: round_robin
    targets:
      - address: 127.0.0.1:$UP1
      - address: 127.0.0.1:$UP2
routes:
  - name: all
    match:
      paths: ["/"]
    service: echo
EOF
    sed -e 's/^    service: echo$/    service: echo\n    plugins:\n      - rate_limit: {limit: 1000000000, window: 1s, key: ip, scope: cluster}/' \
        "$WORK/grapevine.yaml" >"$WORK/grapevine_rl.yaml"
    sed -e 's/^    service: echo$/    service: echo\n    plugins:\n      - key_auth: {header: X-Api-Key}\n      - request_headers: {set: {X-Env: bench}, add: {X-Gw: grapevine}, remove: [X-Debug]}\n      - response_headers: {set: {X-Frame-Options: DENY}, remove: [Server]}/' \
        "$WORK/grapevine.yaml" >"$WORK/grapevine_auth.yaml"
    printf 'plugins:\n  - request_id: {header: X-Request-Id}\nconsumers:\n  - name: bench\n    key_auth: [%s]\n' \
        "$BENCH_KEY" >>"$WORK/grapevine_auth.yaml"
    sed -e 's/^    service: echo$/    service: echo\n    plugins:\n      - jwt: {}/' \
        "$WORK/grapevine.yaml" >"$WORK/grapevine_jwt.yaml"
    printf 'consumers:\n  - name: bench\n    jwt: [{issuer: bench-app, algorithm: HS256, secret: %s}]\n' \
        "$BENCH_SECRET" >>"$WORK/grapevine_jwt.yaml"
    cat >"$WORK/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $MAXCONN

defaults
    mode http
    option http-keep-alive
    option forwardfor
    http-reuse always
    timeout connect 2s
    timeout client 60s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 60s

frontend fe
    bind 127.0.0.1:$HA_PORT
    maxconn $MAXCONN
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-request add-header Via "1.1 haproxy"
    http-request set-header traceparent "00-%[rand,hex,lower]%[rand,hex,lower]-%[rand,hex,lower]-01"
    http-response add-header Via "1.1 haproxy"
    default_backend be

backend be
    balance roundrobin
    server up1 127.0.0.1:$UP1
    server up2 127.0.0.1:$UP2
EOF
    # nginx closes idle keep-alive connections once fewer than 1/16 of its
    # worker_connections are free: leave room so that none is closed.
    local dir=$WORK/nginx NGX_CONNS=$((MAXCONN + MAXCONN / 8 + 256))
    cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile $NOFILE;
events { worker_connections $NGX_CONNS; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    map \$request_id \$tp_span { "~^(?<s>.{16})" \$s; }
    upstream be {
        server 127.0.0.1:$UP1;
        server 127.0.0.1:$UP2;
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$NG_PORT backlog=4096;
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header Via "1.1 nginx";
            proxy_set_header traceparent "00-\$request_id-\$tp_span-01";
            add_header Via "1.1 nginx" always;
        }
    }
}
EOF
}

proxy_port() {
    case $1 in
    grapevine | grapevine_rl | grapevine_auth | grapevine_jwt) echo "$GV_PORT" ;;
    haproxy) echo "$HA_PORT" ;;
    nginx) echo "$NG_PORT" ;;
    esac
}

# start_proxy NAME: starts it pinned; sets PROXY_PID (what to stop) and
# MEM_PIDS (the processes whose CPU and memory count).
start_proxy() {
    local name=$1
    case $name in
    grapevine | grapevine_rl | grapevine_auth | grapevine_jwt)
        spawn "$name" "${pin_proxy[@]}" "$BIN" run -c "$WORK/$name.yaml" --workers 1
        PROXY_PID=$LAST_PID
        wait_port "$GV_PORT" "$PROXY_PID" "$name"
        wait_port "$GV_ADMIN" "$PROXY_PID" "$name"
        MEM_PIDS=("$PROXY_PID")
        ;;
    haproxy)
        spawn "$name" "${pin_proxy[@]}" haproxy -db -f "$WORK/haproxy.cfg"
        PROXY_PID=$LAST_PID
        wait_port "$HA_PORT" "$PROXY_PID" "$name"
        MEM_PIDS=("$PROXY_PID")
        ;;
    nginx)
        spawn "$name" "${pin_proxy[@]}" nginx -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" \
            -e "$WORK/nginx/error.log"
        PROXY_PID=$LAST_PID
        wait_port "$NG_PORT" "$PROXY_PID" "$name"
        local workers deadline=$((SECONDS + 10))
        until workers=$(pgrep -P "$PROXY_PID" | tr '\n' ' ') && [[ -n $workers ]]; do
            ((SECONDS < deadline)) || die "nginx started no worker"
            sleep 0.05
        done
        read -r -a MEM_PIDS <<<"$PROXY_PID $workers"
        ;;
    esac
    check_proxy "$name"
}

# check_proxy NAME: four requests through it must all be 200 and reach both
# upstreams, or the numbers would mean nothing.
check_proxy() {
    local name=$1 port body seen="" i
    port=$(proxy_port "$name")
    for i in 1 2 3 4; do
        body=$(curl -fsS -m 5 "${AUTH_HEADERS[@]}" "http://127.0.0.1:$port/check/$i") ||
            die "$name: request $i failed (log: $(tail -n 5 "$WORK/$name.log" 2>/dev/null))"
        [[ $body == *'"up-1"'* ]] && seen+=1
        [[ $body == *'"up-2"'* ]] && seen+=2
    done
    [[ $seen == *1* && $seen == *2* ]] || die "$name did not spread requests over both upstreams"
}

stop_proxy() {
    stop_pid "$PROXY_PID"
}

cputicks() { python3 "$HERE/bench_tool.py" cputicks "${MEM_PIDS[@]}"; }

# run_wrk CONNS SECONDS URL: runs wrk on the load core; prints the GVBENCH line.
run_wrk() {
    local conns=$1 secs=$2 url=$3 out
    out=$(timeout $((secs + 30)) "${pin_load[@]}" wrk -t1 -c"$conns" -d"${secs}s" --latency \
        "${AUTH_HEADERS[@]}" -s "$HERE/wrk_report.lua" "$url") || die "wrk failed against $url"
    grep '^GVBENCH ' <<<"$out" || die "no summary from wrk: $out"
}

# field LINE KEY: the value of KEY=VALUE in LINE.
field() { sed -n "s/.*[[:space:]]$2=\([^[:space:]]*\).*/\1/p" <<<" $1"; }

record() { printf '%s %s %s %s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"; }

errors_of() {
    local line=$1 k total=0
    for k in connect read write status timeout; do
        total=$((total + $(field "$line" "$k")))
    done
    echo "$total"
}

bench_round() {
    local name=$1 round=$2 port url line t0 t1 c0 c1 ticks rps errs
    port=$(proxy_port "$name")
    url="http://127.0.0.1:$port/bench"
    start_proxy "$name"
    run_wrk 64 1 "$url" >/dev/null # warm-up: upstream pools, caches

    ticks=$(getconf CLK_TCK)
    c0=$(cputicks)
    t0=$(date +%s%N)
    line=$(run_wrk 64 "$DURATION" "$url")
    t1=$(date +%s%N)
    c1=$(cputicks)
    rps=$(awk -v r="$(field "$line" requests)" -v d="$(field "$line" duration_us)" \
        'BEGIN { printf "%.1f", r / (d / 1e6) }')
    record "$name" "$round" rps64 "$rps"
    record "$name" "$round" p50_64_us "$(field "$line" p50_us)"
    record "$name" "$round" p99_64_us "$(field "$line" p99_us)"
    record "$name" "$round" cpu64_pct "$(awk -v c=$((c1 - c0)) -v t="$ticks" -v w=$((t1 - t0)) \
        'BEGIN { printf "%.1f", 100 * (c / t) / (w / 1e9) }')"
    errs=$(errors_of "$line")

    line=$(run_wrk 1 "$DURATION" "$url")
    record "$name" "$round" p50_1_us "$(field "$line" p50_us)"
    errs=$((errs + $(errors_of "$line")))
    record "$name" "$round" errors "$errs"
    stop_proxy
    log "$(printf 'round %d %-9s %8.0f req/s  p50 %s us  p99 %s us  p50@1 %s us  errors %d' \
        "$round" "$name" "$rps" "$(grep "^$name $round p50_64_us" "$RESULTS" | cut -d' ' -f4)" \
        "$(grep "^$name $round p99_64_us" "$RESULTS" | cut -d' ' -f4)" \
        "$(field "$line" p50_us)" "$errs")"
}

bench_idle() {
    local name=$1 port out
    port=$(proxy_port "$name")
    start_proxy "$name"
    run_wrk 64 2 "http://127.0.0.1:$port/warm" >/dev/null
    out=$(timeout 300 "${pin_load[@]}" python3 "$HERE/bench_tool.py" idle --port "$port" \
        --pid "${MEM_PIDS[@]}" --conns "$IDLE_CONNS") || die "$name: idle connection test failed"
    stop_proxy
    log "idle $name: $out"
    record "$name" 1 base_rss_kb "$(field "$out" base_rss_kb)"
    record "$name" 1 rss_per_conn_b "$(field "$out" rss_per_conn_b)"
    record "$name" 1 pss_per_conn_b "$(field "$out" pss_per_conn_b)"
    [[ $(field "$out" non200) == 0 ]] || log "warning: $name answered non-200 to idle clients"
    [[ $(field "$out" closed_while_idle) == 0 ]] ||
        log "warning: $name closed idle connections during the measurement"
}

# ---- main -------------------------------------------------------------------
log "proxies: ${proxies[*]}; upstream: $UPSTREAM; $ROUNDS round(s) of ${DURATION}s; $IDLE_CONNS idle conns"
log "versions: $(haproxy -v | head -n 1 | cut -d' ' -f1-3); $(nginx -v 2>&1 | cut -d' ' -f3)$(
    [[ -n $BIN ]] && printf '; grapevine %s' "$("$BIN" version 2>/dev/null | head -n 1)")"
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine skews the numbers)"
write_configs
start_upstreams

for round in $(seq "$ROUNDS"); do
    n=${#proxies[@]}
    for i in $(seq 0 $((n - 1))); do
        bench_round "${proxies[$(((i + round - 1) % n))]}" "$round"
    done
done
if [[ -z ${RATELIMIT:-}${PLUGINS:-} ]]; then
    for p in "${proxies[@]}"; do
        bench_idle "$p"
    done
fi

log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n'
python3 "$HERE/bench_tool.py" report "$RESULTS" "${proxies[@]}"
if [[ -n ${RATELIMIT:-} ]]; then
    python3 "$HERE/bench_tool.py" ratio "$RESULTS" grapevine grapevine_rl \
        "rate_limit (scope cluster, not reached)" 0.9
fi
if [[ -n ${PLUGINS:-} ]]; then
    python3 "$HERE/bench_tool.py" ratio "$RESULTS" grapevine grapevine_auth \
        "key_auth + request_id + headers" 0.9
    python3 "$HERE/bench_tool.py" ratio "$RESULTS" grapevine grapevine_jwt "jwt HS256" 0.85
fi
printf '(proxy pinned to core %s; wrk and upstreams share core %s: when the proxy CPU row is\n' \
    "$PROXY_CPU" "$LOAD_CPU"
printf ' well under 100%%, requests/s is bounded by the load core and requests per CPU-second\n'
printf ' is the fairer throughput comparison)\n'
