# shellcheck shell=bash
# debian-image.sh - sourced (not run) by deploy/compose-test.sh and
# scripts/fresh-machine.sh: makes a Debian 12 minbase Docker image on an engine
# that has no registry, with debootstrap + docker import, from the Debian
# mirror this machine's apt already uses (scripts/setup.sh --print-mirror;
# GV_DEBIAN_MIRROR overrides). Needs root or sudo (debootstrap) and docker.
#
# Functions return non-zero with a message on stderr; they never exit, so the
# caller keeps its own cleanup and its own way of failing.

# Prints its arguments to stderr, prefixed, and returns 1.
gv_image_fail() {
    printf 'debian-image: %s\n' "$*" >&2
    return 1
}

# gv_minbase_image TAG: creates the Debian 12 (bookworm) minbase image TAG
# unless the engine already has it; the image is kept as a cache. It is the
# bare system debootstrap installs (apt, no lists, no ca-certificates) and its
# /etc/apt/sources.list names the same mirror.
gv_minbase_image() {
    local tag=$1 scripts mirror root rc=0
    local sudo=()
    docker image inspect "$tag" >/dev/null 2>&1 && return 0
    [[ $(id -u) -ne 0 ]] && sudo=(sudo)
    scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    mirror=$("$scripts/setup.sh" --print-mirror) || return 1
    if ! command -v debootstrap >/dev/null; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null ||
            { "${sudo[@]}" apt-get update -q >/dev/null &&
                "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; } ||
            gv_image_fail "cannot install debootstrap with apt-get" || return 1
    fi
    # /var/tmp, not TMPDIR: debootstrap needs device nodes and exec there.
    root=$(mktemp -d /var/tmp/gv-rootfs.XXXXXX)
    printf 'debian-image: debootstrap --variant=minbase bookworm from %s (a few minutes)\n' "$mirror" >&2
    if ! timeout 1200 "${sudo[@]}" debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1; then
        tail -n 20 "$root.log" >&2
        gv_image_fail "debootstrap from $mirror failed (no network, or not a Debian mirror?)" || rc=1
    else
        "${sudo[@]}" sh -c "rm -rf '$root'/var/cache/apt/archives/*.deb '$root'/var/lib/apt/lists/*"
        "${sudo[@]}" tar -C "$root" -c . |
            timeout 600 docker import -c "LABEL org.grapevine.debootstrap-mirror=$mirror" - "$tag" >/dev/null ||
            gv_image_fail "docker import of the debootstrapped tree as $tag failed" || rc=1
    fi
    "${sudo[@]}" rm -rf "$root" "$root.log"
    return "$rc"
}
