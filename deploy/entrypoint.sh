#!/usr/bin/env bash
# entrypoint.sh - how the grapevine image starts: started as root, it hands the
# secrets in /run/secrets to user grapevine and runs the command as that user;
# started as any other user, it just runs the command.
#
# Why root at all: the secrets of a compose file (`secrets: file:`) are bind
# mounts of the host's files, with the host's owner and mode (compose ignores
# uid/gid/mode for them). A key kept private on the host (chmod 600 by its
# owner, the only sane mode) cannot be read by uid 10001 in the container, and
# the ways around that from the host are worse: `chown 10001` needs root on the
# host and takes the file away from its owner, `chmod 644` shows the key to
# every user. So deploy/docker-compose.yml starts the gateways as root, this
# script copies every file of /run/secrets into $SECRETS_DIR (a tmpfs in the
# compose file) owned by grapevine with mode 0400, and then drops to grapevine
# for good with setpriv (no capabilities, no new privileges) before grapevine
# starts: root does nothing else. deploy/grapevine.yaml names those copies.
#
# The image's default user stays grapevine (Dockerfile USER), so `docker run`
# and Kubernetes (runAsUser / runAsNonRoot) start it without root: the secrets
# must then be readable by that user where the config names them (Kubernetes
# does it with defaultMode / fsGroup), and this script only execs the command.
set -euo pipefail

readonly SRC_DIR=/run/secrets
readonly SECRETS_DIR=/run/grapevine/secrets
readonly RUN_AS=grapevine

die() {
    printf 'entrypoint: %s\n' "$*" >&2
    exit 2
}

# copy_secrets: every regular file of $SRC_DIR, as $RUN_AS, mode 0400.
copy_secrets() {
    local f
    install -d -o "$RUN_AS" -g "$RUN_AS" -m 0700 "$SECRETS_DIR" ||
        die "cannot create $SECRETS_DIR"
    [[ -d $SRC_DIR ]] || return 0
    for f in "$SRC_DIR"/*; do
        [[ -f $f ]] || continue
        install -o "$RUN_AS" -g "$RUN_AS" -m 0400 "$f" "$SECRETS_DIR/" ||
            die "cannot copy $f to $SECRETS_DIR"
    done
}

[[ $# -gt 0 ]] || die "no command given"
if [[ $(id -u) -ne 0 ]]; then
    exec "$@"
fi
copy_secrets
exec setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --init-groups \
    --inh-caps=-all --no-new-privs -- "$@"
