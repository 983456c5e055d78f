#!/usr/bin/env bash
# swarm-test.sh - end-to-end test of deploy/swarm/grapevine-stack.yml on a
# single-node Docker swarm: builds the image (two tags, the second a new image
# for the rolling update), deploys the stack and shows:
#   - 3 replicas: every task sees all 3 alive (joined through tasks.grapevine);
#   - scaled to 5: every task sees all 5;
#   - a config change through one task's admin API: served by every task;
#   - a rolling update (start-first) to the new image while a client loops
#     through the published port (or, where the kernel has no IPVS and so the
#     swarm's routing mesh cannot work, from a container on the stack's
#     network through tasks.grapevine; the test says which): 0 failed
#     requests; every task (all new) sees 5 and still serves the change
#     (taken from the peers);
#   - a task killed: the swarm replaces it, the new task joins and serves the
#     full config;
#   - `docker stack rm` leaves no service, container, network, secret or
#     config.
# Each step prints how long it took; every wait is bounded. The swarm: when
# the engine is in none, one is created (`docker swarm init`) and left
# (`docker swarm leave --force`) on exit, whatever happens; an engine already
# in a swarm is used and left as it was. Exits 0 with a SKIP line when there
# is no Docker engine.
#
# The base image logic is compose-test.sh's: debian:bookworm-slim is pulled or,
# without a registry, made with debootstrap + docker import and kept as a
# cache, like grapevine-cache:deps and :runtime-base.
#
# Env: GV_SWARM_PORT (published proxy port, default 18580),
#      GV_SWARM_POOL (address pool of a swarm this script creates, default
#      10.217.0.0/16), GV_SWARM_IMAGE (an image of deploy/Dockerfile built
#      already: used instead of building one), GV_SWARM_KEEP=1 leaves the
#      stack up on failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
readonly HERE=$PWD
readonly BASE_IMAGE=debian:bookworm-slim
readonly STACK=gvswarm$$
readonly IMAGE1=gvswarm-test:$$-1 IMAGE2=gvswarm-test:$$-2
readonly PORT=${GV_SWARM_PORT:-18580}
readonly SVC=${STACK}_grapevine
T0=$SECONDS

log() { printf '[swarm-test %4ss] %s\n' "$((SECONDS - T0))" "$*"; }
die() {
    printf '[swarm-test %4ss] FAIL: %s\n' "$((SECONDS - T0))" "$*" >&2
    exit 1
}

if ! docker info >/dev/null 2>&1; then
    echo "swarm test: SKIP (no Docker engine)"
    exit 0
fi
command -v python3 >/dev/null || die "python3 is needed to read JSON answers"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gv-swarm.XXXXXX")
INITED=0
TRAFFIC_SINCE=
loops=()
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${loops[@]}"; do kill "$pid" 2>/dev/null || true; done
    docker rm -f "$CLIENT" >/dev/null 2>&1 || true
    if [[ $rc -ne 0 ]]; then
        log "state of the failed run:"
        docker service ps --no-trunc "$SVC" 2>&1 | head -20 | sed 's/^/    /' || true
        docker service logs --tail 20 "$SVC" 2>&1 | tail -40 | sed 's/^/    /' || true
        if [[ -n $TRAFFIC_SINCE ]]; then
            log "the tasks' addresses, and what they logged on targets since the traffic began:"
            docker ps -aq --filter "label=com.docker.swarm.service.name=$SVC" |
                xargs -r docker inspect -f '{{.Name}} {{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' |
                sed 's/^/    /' || true
            docker service logs --since "$TRAFFIC_SINCE" "$SVC" 2>&1 |
                grep -E 'target|unhealthy|warn|error|config:' | head -60 | sed 's/^/    /' || true
        fi
    fi
    if [[ $rc -ne 0 && ${GV_SWARM_KEEP:-0} == 1 ]]; then
        log "GV_SWARM_KEEP=1: leaving stack $STACK (secrets in $WORK)"
        exit "$rc"
    fi
    note_volumes 2>/dev/null || true
    docker stack rm "$STACK" >/dev/null 2>&1 || true
    wait_gone 60 >/dev/null 2>&1 || true
    task_volumes 2>/dev/null | xargs -r docker volume rm -f >/dev/null 2>&1 || true
    docker image rm -f "$IMAGE1" "$IMAGE2" >/dev/null 2>&1 || true
    docker image prune -f --filter label=org.grapevine.stage=build >/dev/null 2>&1 || true
    if [[ $INITED == 1 ]]; then
        docker swarm leave --force >/dev/null 2>&1 || true
        # the bridge swarm init made for overlay traffic outlives the swarm:
        # this test made it, so it goes too (when nothing else uses it)
        docker network rm docker_gwbridge >/dev/null 2>&1 || true
        log "left the swarm this test created ($(docker info --format '{{.Swarm.LocalNodeState}}'))"
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { # step NAME CMD...: runs one step and prints how long it took
    local name=$1 start=$SECONDS
    shift
    log "---- $name"
    "$@"
    log "---- $name: ok ($((SECONDS - start))s)"
}
ms() { printf '%d.%03d' "$(($1 / 1000))" "$(($1 % 1000))"; }
wait_for() { # wait_for WHAT TIMEOUT CMD...: polls CMD every 0.5 s
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
        ((now - start <= timeout * 1000)) || die "timed out after ${timeout}s waiting for: $what"
        sleep 0.5
    done
}

# ---- the swarm ---------------------------------------------------------------
swarm_up() {
    local state addr
    state=$(docker info --format '{{.Swarm.LocalNodeState}}')
    case $state in
    active)
        log "the engine is in a swarm already: using it, and leaving it as it is"
        ;;
    inactive)
        addr=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1)}')
        [[ -n $addr ]] || addr=127.0.0.1
        INITED=1
        timeout 60 docker swarm init --advertise-addr "$addr" --listen-addr 127.0.0.1:2377 \
            --default-addr-pool "${GV_SWARM_POOL:-10.217.0.0/16}" >/dev/null ||
            die "docker swarm init failed"
        log "created a single-node swarm (advertised $addr; left on exit)"
        ;;
    *) die "the engine's swarm state is '$state': not touching it" ;;
    esac
}

# ---- images (compose-test.sh's logic) -----------------------------------------
base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base image $BASE_IMAGE is present (cached)"
    elif docker pull "$BASE_IMAGE" >/dev/null 2>&1; then
        log "pulled $BASE_IMAGE"
    else
        log "no registry: creating $BASE_IMAGE with debootstrap + docker import"
        # shellcheck source=SCRIPTDIR/../../scripts/lib/debian-image.sh
        . "$HERE/../../scripts/lib/debian-image.sh"
        gv_minbase_image "$BASE_IMAGE" || die "cannot create $BASE_IMAGE"
    fi
}
build_images() {
    local t t0
    for t in deps runtime-base; do
        t0=$SECONDS
        docker build -q --force-rm --target "$t" -f "$HERE/../Dockerfile" -t "grapevine-cache:$t" "$HERE/../.." \
            >/dev/null 2>"$WORK/build.err" || { cat "$WORK/build.err" >&2; die "docker build --target $t failed"; }
        log "  stage $t: $((SECONDS - t0))s"
    done
    t0=$SECONDS
    if [[ -n ${GV_SWARM_IMAGE:-} ]]; then
        docker tag "$GV_SWARM_IMAGE" "$IMAGE1" || die "no image $GV_SWARM_IMAGE"
        log "  image $IMAGE1: $GV_SWARM_IMAGE (GV_SWARM_IMAGE), not built"
    else
        docker build -q --force-rm -f "$HERE/../Dockerfile" -t "$IMAGE1" "$HERE/../.." >/dev/null 2>"$WORK/build.err" ||
            { cat "$WORK/build.err" >&2; die "docker build of $IMAGE1 failed"; }
        log "  image $IMAGE1: $((SECONDS - t0))s"
    fi
    # The update's image: the first with a label added, so a new image id
    # (and no second compile).
    printf 'FROM %s\nLABEL org.grapevine.swarm-test=%s\n' "$IMAGE1" "$$-2" |
        docker build -q --force-rm -t "$IMAGE2" - >/dev/null 2>"$WORK/build.err" ||
        { cat "$WORK/build.err" >&2; die "docker build of $IMAGE2 failed"; }
    [[ $(docker image inspect -f '{{.Id}}' "$IMAGE1") != $(docker image inspect -f '{{.Id}}' "$IMAGE2") ]] ||
        die "$IMAGE2 is the same image as $IMAGE1"
    log "  image $IMAGE2 (new id) built"
}

# ---- the tasks -----------------------------------------------------------------
TOKEN=
tasks() { # running gateway containers: "ID NAME" lines
    docker ps --filter "label=com.docker.swarm.service.name=$SVC" --filter status=running \
        --format '{{.ID}} {{.Names}}'
}
admin() { # admin CID METHOD PATH [BODY]: the task's admin API, from inside it
    local cid=$1 method=$2 path=$3 body=${4:-}
    local args=(-sS -m 3 -X "$method" -H "Authorization: Bearer $TOKEN")
    [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data "$body")
    docker exec "$cid" curl "${args[@]}" "http://127.0.0.1:9901$path" 2>/dev/null
}
alive_names() { # alive_names CID: sorted names of the members CID sees alive
    admin "$1" GET /cluster/members | python3 -c '
import json, sys
try:
    m = json.load(sys.stdin)
except Exception:
    sys.exit(0)
print(" ".join(sorted(x["name"] for x in m if x["state"] == "alive")))' || true
}
# all_see N: N tasks run, each healthy, and each sees exactly those N alive.
all_see() {
    local want=$1 lines names cid
    lines=$(tasks)
    [[ $(grep -c . <<<"$lines") -eq $want ]] || return 1
    names=$(awk '{print $2}' <<<"$lines" | sort | tr '\n' ' ' | sed 's/ $//')
    while read -r cid _; do
        [[ $(docker inspect -f '{{.State.Health.Status}}' "$cid") == healthy ]] || return 1
        [[ $(alive_names "$cid") == "$names" ]] || return 1
    done <<<"$lines"
}
serves_change() { # serves_change: every task answers /changed with the header
    local lines cid
    lines=$(tasks)
    [[ -n $lines ]] || return 1
    while read -r cid _; do
        docker exec "$cid" curl -si -m 2 http://127.0.0.1:8080/changed 2>/dev/null |
            grep -qi '^x-swarm-change: 1' || return 1
    done <<<"$lines"
}

# ---- traffic: a bounded client loop -------------------------------------------
# Through the published port (the swarm's routing mesh) when it works here.
# The routing mesh needs IPVS in the kernel; where the engine has none (it
# logs "Could not get ipvs family information") the loop runs in a client
# container on the stack's proxy network instead, on tasks.grapevine:8080
# (every task's address; curl tries the next when one refuses), and says so.
CLIENT=gvswarm-client-$$
VIA=
choose_client() {
    local code
    code=$(curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$PORT/" || true)
    if [[ $code == 200 ]]; then
        VIA=published
        log "  client loop: the published port 127.0.0.1:$PORT (routing mesh)"
    else
        VIA=container
        log "  client loop: the published port does not answer here (HTTP '$code'; no IPVS in this kernel: $( [[ -e /proc/net/ip_vs ]] && echo present || echo absent)),"
        log "  so a client container on ${STACK}_proxy loops on tasks.grapevine:8080"
    fi
}
# The loop itself: GETs until /tmp/stop exists (at most 20000), then prints
# "result OK FAILED"; failures are printed as they happen, with the address
# that answered and the start of the answer (a gateway's error says why).
readonly LOOP='ok=0 fail=0 n=0
while [ ! -e /tmp/stop ] && [ $n -lt 20000 ]; do
    n=$((n + 1))
    got=$(curl -s -o /tmp/body -m 3 -w "%{http_code} %{remote_ip}" "$URL" || true)
    code=${got%% *}
    if [ "$code" = 200 ]; then ok=$((ok + 1)); else fail=$((fail + 1)); echo "failed at $(date +%T.%N | cut -c1-12) $got: $(head -c 160 /tmp/body 2>/dev/null | tr -s "\n" " ")"; fi
    sleep 0.02
done
echo "result $ok $fail"'
start_traffic() {
    choose_client
    TRAFFIC_SINCE=$(date -u +%Y-%m-%dT%H:%M:%S)
    if [[ $VIA == published ]]; then
        mkdir -p "$WORK/client"
        rm -f "$WORK/client/stop"
        (cd "$WORK/client" && URL="http://127.0.0.1:$PORT/" bash -c "${LOOP//\/tmp\//}" >"$WORK/client/out" 2>&1) &
        loops+=("$!")
    else
        docker run -d --name "$CLIENT" --network "${STACK}_proxy" --entrypoint bash \
            -e URL=http://tasks.grapevine:8080/ "$IMAGE1" -c "$LOOP" >/dev/null ||
            die "cannot start the client container"
    fi
}
stop_traffic() {
    local pid ok fail out
    if [[ $VIA == published ]]; then
        touch "$WORK/client/stop"
        for pid in "${loops[@]}"; do wait "$pid" 2>/dev/null || true; done
        loops=()
        out=$(cat "$WORK/client/out")
    else
        docker exec "$CLIENT" touch /tmp/stop
        docker wait "$CLIENT" >/dev/null
        out=$(docker logs "$CLIENT" 2>&1)
        docker rm -f "$CLIENT" >/dev/null
    fi
    read -r _ ok fail < <(grep '^result ' <<<"$out")
    log "  traffic ($VIA): ${ok:-?} ok, ${fail:-?} failed"
    if [[ ${fail:-1} != 0 ]]; then
        grep '^failed at' <<<"$out" | head -5 | sed 's/^/    /'
        die "requests failed during the rolling update"
    fi
    [[ ${ok:-0} -gt 0 ]] || die "no request got through"
}

# ---- steps ---------------------------------------------------------------------
deploy3() {
    head -c 32 /dev/urandom | base64 >"$WORK/cluster.key"
    head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$WORK/admin.token"
    chmod 600 "$WORK/cluster.key" "$WORK/admin.token"
    TOKEN=$(cat "$WORK/admin.token")
    GV_IMAGE=$IMAGE1 GV_SECRETS_DIR=$WORK GV_SWARM_PROXY_PORT=$PORT \
        docker stack deploy --resolve-image never -c "$HERE/grapevine-stack.yml" "$STACK" 2>&1 |
        grep -v 'detach=false' | sed 's/^/    /'
    wait_for "3 healthy tasks, each seeing all 3 alive" 120 all_see 3
    note_volumes
    local cid uid
    cid=$(tasks | awk 'NR == 1 {print $1}')
    uid=$(docker exec "$cid" stat -c '%u %a' /run/secrets/cluster_key)
    [[ $uid == "10001 400" ]] || die "the cluster key secret is '$uid' in a task, expected '10001 400'"
    log "  grapevine runs as $(docker exec "$cid" id -u); secrets 10001 0400; root filesystem read-only: $(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$cid")"
}
scale5() {
    docker service scale -d "$SVC=5" >/dev/null
    wait_for "5 healthy tasks, each seeing all 5 alive" 120 all_see 5
    note_volumes
}
config_change() {
    local cid code
    cid=$(tasks | awk 'NR == 1 {print $1}')
    code=$(admin "$cid" PUT /config/routes/swarm-change \
        '{"match":{"paths":["/changed"]},"service":"demo","plugins":[{"response_headers":{"set":{"X-Swarm-Change":"1"}}}]}' |
        python3 -c 'import json,sys; print("ok" if "error" not in json.load(sys.stdin) else "error")' 2>/dev/null || true)
    [[ $code == ok ]] || die "PUT /config/routes/swarm-change on $cid failed"
    wait_for "every task serves the change made on one" 30 serves_change
}
rolling_update() {
    start_traffic
    sleep 1
    docker service update -d --no-resolve-image --image "$IMAGE2" "$SVC" >/dev/null
    wait_for "the rolling update to complete" 300 update_done
    sleep 1
    stop_traffic
    wait_for "5 tasks of the new image, each seeing all 5 alive" 60 all_see 5
    note_volumes
    local cid
    while read -r cid _; do
        [[ $(docker inspect -f '{{.Config.Image}}' "$cid") == "$IMAGE2" ]] || die "task $cid still runs the old image"
    done < <(tasks)
    wait_for "every new task serves the change (from its peers)" 30 serves_change
}
update_done() {
    [[ $(docker service inspect -f '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$SVC") == completed ]]
}
kill_task() {
    local cid name
    read -r cid name < <(tasks | head -1)
    docker kill "$cid" >/dev/null
    log "  killed $name"
    wait_for "a replacement: 5 tasks, each seeing all 5 alive" 120 replaced "$name"
    wait_for "every task (the new one too) serves the change" 30 serves_change
    note_volumes
}
replaced() { ! tasks | grep -q " $1\$" && all_see 5; }
stack_rm() {
    note_volumes
    log "  $(sort -u "$WORK/volumes" | grep -c .) task data volumes seen"
    docker stack rm "$STACK" 2>&1 | sed 's/^/    /'
    wait_for "nothing of the stack left" 90 wait_gone 0
}
# The anonymous data volumes of the stack's task containers (seen while the
# containers exist; each is listed in $WORK/volumes when first seen).
note_volumes() {
    local cid
    for cid in $(docker ps -aq --filter "label=com.docker.stack.namespace=$STACK"); do
        docker inspect -f '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}}{{"\n"}}{{end}}{{end}}' "$cid" 2>/dev/null
    done | sort -u >>"$WORK/volumes"
}
task_volumes() {
    local v
    [[ -s $WORK/volumes ]] || return 0
    for v in $(sort -u "$WORK/volumes"); do
        docker volume inspect "$v" >/dev/null 2>&1 && echo "$v"
    done
    return 0
}
# wait_gone SECONDS: polls until the stack left nothing (0: one look).
wait_gone() {
    local deadline=$((SECONDS + $1))
    while true; do
        if [[ -z $(docker service ls -q --filter "label=com.docker.stack.namespace=$STACK") &&
            -z $(docker ps -aq --filter "label=com.docker.stack.namespace=$STACK") &&
            -z $(docker network ls -q --filter "label=com.docker.stack.namespace=$STACK") &&
            -z $(docker secret ls -q --filter "label=com.docker.stack.namespace=$STACK") &&
            -z $(docker config ls -q --filter "label=com.docker.stack.namespace=$STACK") &&
            -z $(task_volumes) ]]; then
            return 0
        fi
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

log "stack $STACK, images $IMAGE1 / $IMAGE2, published port $PORT"
step "swarm" swarm_up
step "base image" base_image
step "build images" build_images
step "deploy 3 replicas" deploy3
step "scale to 5" scale5
step "config change on one task, served by all" config_change
step "rolling update to a new image under traffic" rolling_update
step "kill a task: replaced, rejoins with the full config" kill_task
step "docker stack rm leaves nothing" stack_rm
log "ALL SWARM STEPS PASSED in $((SECONDS - T0))s"
