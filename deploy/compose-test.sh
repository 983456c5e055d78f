#!/usr/bin/env bash
# compose-test.sh - end-to-end test of deploy/docker-compose.yml: builds the
# image, brings up gw1..gw3 and echo1..echo3, and shows the failover story:
# secrets private to uid 10001 in the containers while the host files stay
# their owner's (mode 600), config change on gw1 served by gw3 within 1 s,
# gw2 killed, an upstream killed, gw2 restarted with every change it missed,
# gw3 cut off from the gossip network (`docker network disconnect` of the
# mesh network) while it keeps serving its clients with the config it has,
# then reconnected with the change made meanwhile, `down` leaves nothing.
# Every wait is bounded and reports how long it took. Cleans up on exit.
#
# The Docker engine may have no registry: when the base image
# (debian:bookworm-slim, the Dockerfile's BASE) is missing it is created with
# debootstrap + docker import (scripts/lib/debian-image.sh, from the Debian
# mirror of this machine's apt sources) and kept as a cache for later runs.
#
# Kept between runs (caches): debian:bookworm-slim, grapevine-cache:deps,
# grapevine-cache:runtime-base. Remove them with docker image rm.
#
# Env: GV_COMPOSE_PORT_BASE (default 18080: proxies +1..+3, admins +11..+13),
#      GV_SUBNET (the mesh network's; default one of 10.212.200-249.0/24 by
#      process id, so that two runs on one engine do not collide),
#      GV_COMPOSE_KEEP=1 leaves the cluster and image up on failure (debugging).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
readonly DEPLOY=$PWD
readonly BASE_IMAGE=debian:bookworm-slim
readonly IMAGE=grapevine:compose-test
readonly PROJECT=gvcompose$$
readonly PB=${GV_COMPOSE_PORT_BASE:-18080}
readonly P1=$((PB + 1)) P2=$((PB + 2)) P3=$((PB + 3))
readonly A1=$((PB + 11)) A2=$((PB + 12)) A3=$((PB + 13))
T0=$SECONDS

log() { printf '[compose-test %4ss] %s\n' "$((SECONDS - T0))" "$*"; }
die() {
    printf '[compose-test %4ss] FAIL: %s\n' "$((SECONDS - T0))" "$*" >&2
    exit 1
}

SUDO=()
[[ $(id -u) -ne 0 ]] && SUDO=(sudo)

if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
else
    die "neither 'docker compose' nor 'docker-compose' is installed"
fi
command -v python3 >/dev/null || die "python3 is needed to read JSON answers"

SECRETS=$(mktemp -d "${TMPDIR:-/tmp}/gv-compose-secrets.XXXXXX")
export GV_IMAGE=$IMAGE GV_SECRETS_DIR=$SECRETS
export GV_SUBNET=${GV_SUBNET:-10.212.$((200 + $$ % 50)).0/24}
export GV_GW1_PROXY_PORT=$P1 GV_GW2_PROXY_PORT=$P2 GV_GW3_PROXY_PORT=$P3
export GV_GW1_ADMIN_PORT=$A1 GV_GW2_ADMIN_PORT=$A2 GV_GW3_ADMIN_PORT=$A3
dc() { "${COMPOSE[@]}" -p "$PROJECT" -f "$DEPLOY/docker-compose.yml" "$@"; }

loops=()
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${loops[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [[ $rc -ne 0 ]]; then
        log "logs of the failed run (last 30 lines per service):"
        dc logs --no-color --tail 30 2>&1 | sed 's/^/    /' || true
    fi
    if [[ $rc -ne 0 && ${GV_COMPOSE_KEEP:-0} == 1 ]]; then
        log "GV_COMPOSE_KEEP=1: leaving project $PROJECT and $IMAGE (secrets in $SECRETS)"
        exit "$rc"
    fi
    dc down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
    # GV_COMPOSE_SAVE_IMAGE=TAG keeps a passing run's image under TAG, for
    # .ci/run to hand to the swarm test instead of compiling it again.
    if [[ $rc -eq 0 && -n ${GV_COMPOSE_SAVE_IMAGE:-} ]]; then
        docker tag "$IMAGE" "$GV_COMPOSE_SAVE_IMAGE" >/dev/null 2>&1 || true
    fi
    docker image rm -f "$IMAGE" >/dev/null 2>&1 || true
    docker image prune -f --filter label=org.grapevine.stage=build >/dev/null 2>&1 || true
    rm -rf "$SECRETS"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# step NAME CMD...: runs one step and prints how long it took.
step() {
    local name=$1 start=$SECONDS
    shift
    log "---- $name"
    "$@"
    log "---- $name: ok ($((SECONDS - start))s)"
}

TOKEN=
admin() { # admin PORT METHOD PATH [BODY]
    local port=$1 method=$2 path=$3
    shift 3
    local args=(-sS -m 3 -X "$method" -H "Authorization: Bearer $TOKEN")
    if [[ $# -gt 0 && $1 != -* ]]; then
        args+=(-H 'Content-Type: application/json' --data "$1")
        shift
    fi
    curl "${args[@]}" "$@" "http://127.0.0.1:$port$path"
}

# members PORT: "name=state name=state ..." as that node sees it ("" if down).
members() {
    admin "$1" GET /cluster/members 2>/dev/null | python3 -c '
import json, sys
try:
    m = json.load(sys.stdin)
except Exception:
    sys.exit(0)
m = m.get("members", m) if isinstance(m, dict) else m
print(" ".join(sorted("%s=%s" % (x["name"], x["state"]) for x in m)))' || true
}
digest() { # digest PORT: the node's config_digest
    admin "$1" GET /status 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("config_digest",""))' 2>/dev/null || true
}

# wait_for WHAT TIMEOUT CMD...: polls CMD every 0.1 s until it succeeds.
wait_for() {
    local what=$1 timeout=$2 start now
    shift 2
    start=$(date +%s%3N)
    log "waiting for: $what (at most ${timeout}s)"
    while true; do
        if "$@"; then
            now=$(date +%s%3N)
            log "  done: $what after $(ms "$((now - start))")s"
            return 0
        fi
        now=$(date +%s%3N)
        ((now - start <= timeout * 1000)) ||
            die "timed out after ${timeout}s waiting for: $what"
        sleep 0.1
    done
}
ms() { printf '%d.%03d' "$(($1 / 1000))" "$(($1 % 1000))"; }

all_alive_on() { # all_alive_on PORT...: every named node sees gw1..gw3 alive
    local p
    for p in "$@"; do
        [[ $(members "$p") == "gw1=alive gw2=alive gw3=alive" ]] || return 1
    done
}
sees_state() { # sees_state PORT NODE STATE
    [[ " $(members "$1") " == *" $2=$3 "* ]]
}
same_digest() { # same_digest PORT...: all equal to gw1's, non-empty
    local d1 p
    d1=$(digest "$A1")
    [[ -n $d1 ]] || return 1
    for p in "$@"; do [[ $(digest "$p") == "$d1" ]] || return 1; done
}

# ---- traffic: background curl loops counting failures ---------------------
# start_traffic NAME URL: GETs URL until stop_traffic; a failure is anything
# but a 200 (curl timeout 2 s).
start_traffic() {
    local name=$1 url=$2
    rm -f "$SECRETS/$name".{ok,fail,stop}
    (
        ok=0 fail=0
        while [[ ! -e $SECRETS/$name.stop ]]; do
            code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" || true)
            if [[ $code == 200 ]]; then
                ok=$((ok + 1))
            else
                fail=$((fail + 1))
                printf '%s %s\n' "$(date +%T.%N | cut -c1-12)" "$code" >>"$SECRETS/$name.failures"
            fi
        done
        echo "$ok" >"$SECRETS/$name.ok"
        echo "$fail" >"$SECRETS/$name.fail"
    ) &
    loops+=("$!")
}
# stop_traffic NAME...: stops the loops, prints counts, fails on any failure.
stop_traffic() {
    local name bad=0 pid
    for name in "$@"; do touch "$SECRETS/$name.stop"; done
    for pid in "${loops[@]}"; do wait "$pid" 2>/dev/null || true; done
    loops=()
    for name in "$@"; do
        log "  traffic $name: $(cat "$SECRETS/$name.ok") ok, $(cat "$SECRETS/$name.fail") failed"
        if [[ $(cat "$SECRETS/$name.fail") != 0 ]]; then
            sed 's/^/    failed at /' "$SECRETS/$name.failures" | head -5
            bad=1
        fi
        rm -f "$SECRETS/$name".{ok,fail,stop,failures}
    done
    [[ $bad -eq 0 ]] || die "requests failed during the fault"
}

# ---- steps -----------------------------------------------------------------
base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base image $BASE_IMAGE is present (cached)"
        return
    fi
    if docker pull "$BASE_IMAGE" >/dev/null 2>&1; then
        log "pulled $BASE_IMAGE"
        return
    fi
    log "no registry: creating $BASE_IMAGE with debootstrap + docker import"
    # shellcheck source=SCRIPTDIR/../scripts/lib/debian-image.sh
    . "$DEPLOY/../scripts/lib/debian-image.sh"
    gv_minbase_image "$BASE_IMAGE" || die "cannot create $BASE_IMAGE"
}

# The two dependency stages are tagged (grapevine-cache:deps, :runtime-base)
# and kept, like the base image, so that a later run only compiles; the
# image and the build stage's layers are removed on exit.
build_image() {
    local t
    for t in deps runtime-base; do
        t0=$SECONDS
        docker build -q --force-rm --target "$t" -f "$DEPLOY/Dockerfile" -t "grapevine-cache:$t" "$DEPLOY/.." >/dev/null
        log "  stage $t: $((SECONDS - t0))s"
    done
    t0=$SECONDS
    docker build -q --force-rm -f "$DEPLOY/Dockerfile" -t "$IMAGE" "$DEPLOY/.." >/dev/null
    log "  image: $((SECONDS - t0))s"
    log "image $IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'), user $(docker image inspect -f '{{.Config.User}}' "$IMAGE")"
}

make_secrets() {
    head -c 32 /dev/urandom | base64 >"$SECRETS/cluster.key"
    head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$SECRETS/admin.token"
    # Ours alone, as the README says: the entrypoint copies them for uid 10001.
    chmod 600 "$SECRETS/cluster.key" "$SECRETS/admin.token"
    TOKEN=$(cat "$SECRETS/admin.token")
}

up() {
    dc up -d --no-build 2>&1 | sed 's/^/    /'
    wait_for "every node sees 3 alive members" 60 all_alive_on "$A1" "$A2" "$A3"
    wait_for "gw1..gw3 report healthy to docker" 30 healthy_all
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$A1/health")
    [[ $code == 401 ]] || die "/health without the token answered $code, expected 401"
    secrets_private
}
# secrets_private: in each gateway grapevine runs as uid 10001 and reads
# copies of the secrets only it can read, and the host files are unchanged.
secrets_private() {
    local s cid uid mode
    for s in gw1 gw2 gw3; do
        cid=$(dc ps -q "$s")
        uid=$(docker exec "$cid" cat /proc/1/status | awk '/^Uid:/ {print $2 "/" $3}')
        [[ $uid == 10001/10001 ]] || die "$s: grapevine runs as uid $uid, expected 10001"
        mode=$(docker exec "$cid" stat -c '%u %a' /run/grapevine/secrets/cluster_key /run/grapevine/secrets/admin_token | sort -u)
        [[ $mode == "10001 400" ]] || die "$s: secret copies are '$mode', expected '10001 400'"
        ! docker logs "$cid" 2>&1 | grep -q 'readable by group or others' ||
            die "$s: grapevine warns that the cluster key is readable by others"
    done
    mode=$(stat -c '%u %a' "$SECRETS/cluster.key" "$SECRETS/admin.token" | sort -u)
    [[ $mode == "$(id -u) 600" ]] || die "host secret files changed to '$mode'"
    log "  grapevine runs as uid 10001 with private copies (0400) of the secrets; host files still $(id -u) 600"
}
healthy_all() {
    local s
    for s in gw1 gw2 gw3; do
        [[ $(docker inspect -f '{{.State.Health.Status}}' "$(dc ps -q "$s")") == healthy ]] || return 1
    done
}

served_by() { # served_by PORT PATH NAME: 5 answers in a row from upstream NAME
    local i
    for i in 1 2 3 4 5; do
        curl -s -m 1 "http://127.0.0.1:$1$2" | grep -q "\"name\": *\"$3\"" || return 1
    done
}

config_change() {
    admin "$A1" PUT /config/services/three '{"targets":[{"address":"echo3:9000"}]}' >/dev/null
    admin "$A1" PUT /config/routes/three '{"match":{"paths":["/three"]},"service":"three"}' >/dev/null
    wait_for "gw3 serves route 'three' (PUT on gw1) from echo3" 20 served_by "$P3" /three echo3
}

kill_gw2() {
    start_traffic gw1 "http://127.0.0.1:$P1/"
    start_traffic gw3 "http://127.0.0.1:$P3/"
    sleep 1
    dc kill gw2 2>&1 | sed 's/^/    /'
    wait_for "gw1 and gw3 mark gw2 dead" 20 both_see_gw2_dead
    sleep 1
    stop_traffic gw1 gw3
}
both_see_gw2_dead() { sees_state "$A1" gw2 dead && sees_state "$A3" gw2 dead; }

changes_while_gw2_down() {
    admin "$A1" PUT /config/routes/while-gw2-down '{"match":{"paths":["/down"]},"service":"three"}' >/dev/null
    admin "$A3" DELETE /config/routes/three >/dev/null
    wait_for "gw1 and gw3 agree on the config" 20 same_digest "$A3"
}

kill_upstream() {
    start_traffic gw1 "http://127.0.0.1:$P1/"
    start_traffic gw3 "http://127.0.0.1:$P3/"
    sleep 1
    dc kill echo2 2>&1 | sed 's/^/    /'
    wait_for "gw1 marks echo2 unhealthy" 30 target_down "$A1" echo2
    sleep 2
    stop_traffic gw1 gw3
    dc start echo2 2>&1 | sed 's/^/    /'
}
target_down() { # target_down PORT HOST: /backends says the target HOST:9000 (the name as
    # configured; "address" is what it resolved to) is not healthy
    admin "$1" GET /backends | python3 -c '
import json, sys
host = sys.argv[1] + ":9000"
def walk(o):
    if isinstance(o, dict):
        if o.get("target") == host and o.get("healthy") is False:
            return True
        return any(walk(v) for v in o.values())
    if isinstance(o, list):
        return any(walk(v) for v in o)
    return False
sys.exit(0 if walk(json.load(sys.stdin)) else 1)' "$2"
}

# Cuts gw3 off the mesh network only: gossip goes over the gwN-mesh names,
# which exist there alone, while the published ports and the upstreams are on
# the proxy network. gw3 must keep serving its clients, with the config it
# had, while gw1 and gw2 count it dead; the change made on gw1 meanwhile
# reaches it after the reconnect.
partition_gw3() {
    local net cid ip new_ip d3
    net=$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.network=mesh")
    [[ -n $net ]] || net=${PROJECT}_mesh
    cid=$(dc ps -q gw3)
    # Reconnect under a new address, the harder case: the peers must give up
    # their connections to the old one and dial the name gw3-mesh afresh.
    ip=$(docker inspect -f "{{with index .NetworkSettings.Networks \"$(docker network inspect -f '{{.Name}}' "$net")\"}}{{.IPAddress}}{{end}}" "$cid")
    [[ -n $ip ]] || die "gw3 has no address on the mesh network"
    new_ip=${ip%.*}.200
    d3=$(digest "$A3")
    start_traffic gw1 "http://127.0.0.1:$P1/"
    start_traffic gw3 "http://127.0.0.1:$P3/"
    docker network disconnect "$net" "$cid"
    log "  gw3 disconnected from the mesh network"
    wait_for "gw1 and gw2 mark gw3 dead" 30 both_see_gw3_dead
    # /part -> service three (echo3 alone); gw3 without it sends /part to the
    # root route (round robin over echo1..echo3).
    admin "$A1" PUT /config/routes/during-partition '{"match":{"paths":["/part"]},"service":"three"}' >/dev/null
    sleep 2
    stop_traffic gw1 gw3
    log "  gw3 saw: $(members "$A3")"
    [[ $(digest "$A3") == "$d3" ]] || die "gw3's config changed while it was cut off"
    served_by_any "$P3" / || die "gw3 does not serve / from an echo while cut off"
    local code
    code=$(admin "$A3" GET /config/routes/during-partition -o /dev/null -w '%{http_code}')
    [[ $code == 404 ]] || die "gw3 has the route made on gw1 while it was cut off (admin GET: $code)"
    log "  gw3 kept serving with the config it had (it does not know the route made on gw1 meanwhile)"
    docker network connect --ip "$new_ip" --alias gw3-mesh "$net" "$cid"
    log "  gw3 reconnected under a new address ($ip -> $new_ip)"
    wait_for "every node sees 3 alive members and they agree on the config" 60 rejoined_gw3
    wait_for "gw3 serves /part (made on gw1 during the partition) from echo3" 20 \
        served_by "$P3" /part echo3
}
both_see_gw3_dead() { sees_state "$A1" gw3 dead && sees_state "$A2" gw3 dead; }
rejoined_gw3() {
    all_alive_on "$A1" "$A2" "$A3" && same_digest "$A2" "$A3"
}
served_by_any() { # served_by_any PORT PATH: 5 answers in a row from some echo
    local _
    for _ in 1 2 3 4 5; do
        curl -s -m 1 "http://127.0.0.1:$1$2" | grep -q '"name": *"echo[123]"' || return 1
    done
}

restart_gw2() {
    dc start gw2 2>&1 | sed 's/^/    /'
    wait_for "every node sees 3 alive members" 60 all_alive_on "$A1" "$A2" "$A3"
    wait_for "gw2 has every change made while it was down" 30 gw2_caught_up
}
gw2_caught_up() {
    same_digest "$A2" "$A3" &&
        [[ $(admin "$A2" GET /config/routes/while-gw2-down -o /dev/null -w '%{http_code}') == 200 ]] &&
        [[ $(admin "$A2" GET /config/routes/three -o /dev/null -w '%{http_code}') == 404 ]]
}

down() {
    dc down -v --remove-orphans -t 10 2>&1 | sed 's/^/    /'
    local left
    left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")
    [[ -z $left ]] || die "containers left after down: $left"
    left=$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
    [[ -z $left ]] || die "volumes left after down: $left"
    left=$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT")
    [[ -z $left ]] || die "networks left after down: $left"
}

log "using ${COMPOSE[*]}, project $PROJECT, proxies 127.0.0.1:$P1-$P3, admin :$A1-$A3, mesh $GV_SUBNET"
make_secrets
step "base image" base_image
step "build image" build_image
step "up: 3 gateways + 3 upstreams" up
step "config change on gw1, served by gw3" config_change
step "kill gw2 under traffic through gw1 and gw3" kill_gw2
step "config changes while gw2 is down" changes_while_gw2_down
step "kill upstream echo2 under traffic" kill_upstream
step "restart gw2: it catches up" restart_gw2
step "cut gw3 off the gossip network, then reconnect it" partition_gw3
step "down leaves nothing running" down
log "ALL COMPOSE STEPS PASSED in $((SECONDS - T0))s"
