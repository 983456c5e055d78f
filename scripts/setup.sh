#!/usr/bin/env bash
# setup.sh - installs everything grapevine needs to build, test and benchmark
# on Debian 12. Idempotent: when everything is already there it only checks
# (dpkg-query, one python import) and returns within seconds.
#
# Run as root, or as a user with sudo (only the apt/dpkg steps use it).
# Env: GV_SETUP_FORCE=1 re-runs the apt steps even when all looks present.
#      GV_SETUP_MINIMAL=1 installs only what building needs (deploy/Dockerfile):
#      no test/bench packages, no python.
set -euo pipefail

# llhttp is not in Debian 12: take Debian 13's package (it needs only libc6),
# pinned to one version and verified by sha256.
readonly LLHTTP_VERSION='9.2.1~7.3.0+dfsg1+~cs24.12.11-1'
readonly LLHTTP_POOL='http://deb.debian.org/debian/pool/main/n/node-undici'
readonly LLHTTP_DEBS=(
    "libllhttp9.2_${LLHTTP_VERSION}_amd64.deb 4c74284cb0f781f5f3a6ee909984df9521f1075fa18ab4ee14b91a6c7a86dfb0"
    "libllhttp-dev_${LLHTTP_VERSION}_amd64.deb c018069b22f5d53ac630bdc360d6c8bc7df78626cfb22276cbfb280aa64ac4b6"
)

# Build, test, and benchmark packages. nginx-light/haproxy/wrk are for
# tests/bench only; procps/netcat/iproute2 for scripts and debugging.
APT_PACKAGES=(
    build-essential cmake pkg-config
    libuv1-dev libnng-dev libmsgpack-dev libfyaml-dev libjansson-dev libssl-dev
    clang-format curl ca-certificates
    python3 python3-pip python3-pytest python3-requests python3-cryptography
    wrk haproxy nginx-light
    procps netcat-openbsd iproute2 util-linux
)
if [[ ${GV_SETUP_MINIMAL:-0} == 1 ]]; then
    APT_PACKAGES=(
        build-essential cmake pkg-config
        libuv1-dev libnng-dev libmsgpack-dev libfyaml-dev libjansson-dev libssl-dev
        curl ca-certificates
    )
fi

log() { printf 'setup: %s\n' "$*"; }
die() {
    printf 'setup: error: %s\n' "$*" >&2
    exit 1
}

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "not root and sudo is not installed"
    SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

start_time=$SECONDS

# Prints the packages of APT_PACKAGES that are not installed.
missing_packages() {
    local pkg status
    for pkg in "${APT_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [[ $status == installed ]] || printf '%s\n' "$pkg"
    done
}

llhttp_ok() {
    local pkg v
    for pkg in libllhttp9.2 libllhttp-dev; do
        v=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$pkg" 2>/dev/null || true)
        [[ $v == "installed $LLHTTP_VERSION" ]] || return 1
    done
}

# Keeps services from starting while packages install (nginx would grab port
# 80): a temporary policy-rc.d, removed afterwards, unless one already exists.
POLICY_RC=/usr/sbin/policy-rc.d
policy_rc_added=0
block_service_starts() {
    if [[ ! -e $POLICY_RC ]]; then
        printf '#!/bin/sh\n# added by grapevine scripts/setup.sh while installing\nexit 101\n' |
            "${SUDO[@]}" tee "$POLICY_RC" >/dev/null
        "${SUDO[@]}" chmod 755 "$POLICY_RC"
        policy_rc_added=1
    fi
}
unblock_service_starts() {
    if [[ $policy_rc_added -eq 1 ]]; then
        "${SUDO[@]}" rm -f "$POLICY_RC"
        policy_rc_added=0
    fi
}
trap unblock_service_starts EXIT

# nginx and haproxy are benchmark subjects only: never system services.
quiet_services() {
    local svc
    for svc in nginx haproxy; do
        [[ -e /etc/init.d/$svc || -e /lib/systemd/system/$svc.service ]] || continue
        if [[ -d /run/systemd/system ]]; then
            if systemctl is-active --quiet "$svc" || systemctl is-enabled --quiet "$svc" 2>/dev/null; then
                log "disabling the $svc system service (used by tests/bench only)"
                "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
            fi
        else
            if [[ -s /run/$svc.pid ]] && kill -0 "$(cat "/run/$svc.pid")" 2>/dev/null; then
                log "stopping the $svc system service (used by tests/bench only)"
                "${SUDO[@]}" service "$svc" stop >/dev/null 2>&1 || true
            fi
            if compgen -G "/etc/rc[2-5].d/S*$svc" >/dev/null; then
                "${SUDO[@]}" update-rc.d "$svc" disable >/dev/null 2>&1 || true
            fi
        fi
    done
}

install_llhttp() {
    local dir entry file sum
    dir=$(mktemp -d)
    # shellcheck disable=SC2064 # expand dir now: it is local
    trap "rm -rf '$dir'; unblock_service_starts" EXIT
    for entry in "${LLHTTP_DEBS[@]}"; do
        file=${entry%% *}
        sum=${entry##* }
        log "downloading $file"
        curl -fsSL --retry 3 --retry-delay 2 --connect-timeout 20 --max-time 300 \
            -o "$dir/$file" "$LLHTTP_POOL/$file" || die "download failed: $LLHTTP_POOL/$file"
        printf '%s  %s\n' "$sum" "$dir/$file" | sha256sum -c --quiet - ||
            die "sha256 mismatch for $file"
    done
    # apt resolves the (tiny) dependencies of the local .debs; the files are
    # readable by _apt so it does not warn about sandboxing.
    chmod 755 "$dir"
    chmod 644 "$dir"/*.deb
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends --allow-downgrades \
        "$dir"/libllhttp9.2_*.deb "$dir"/libllhttp-dev_*.deb
    rm -rf "$dir"
    trap unblock_service_starts EXIT
}

# ---- apt ------------------------------------------------------------------
mapfile -t missing < <(missing_packages)
need_llhttp=0
llhttp_ok || need_llhttp=1

if [[ ${#missing[@]} -eq 0 && $need_llhttp -eq 0 && ${GV_SETUP_FORCE:-0} != 1 ]]; then
    log "system packages: all present"
else
    [[ ${#missing[@]} -gt 0 ]] && log "installing: ${missing[*]}"
    block_service_starts
    "${SUDO[@]}" apt-get update -q
    if [[ ${GV_SETUP_FORCE:-0} == 1 ]]; then
        missing=("${APT_PACKAGES[@]}")
    fi
    if [[ ${#missing[@]} -gt 0 ]]; then
        "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    if [[ $need_llhttp -eq 1 || ${GV_SETUP_FORCE:-0} == 1 ]]; then
        install_llhttp
    fi
    unblock_service_starts
    llhttp_ok || die "libllhttp-dev $LLHTTP_VERSION is not installed after installing it"
    mapfile -t missing < <(missing_packages)
    [[ ${#missing[@]} -eq 0 ]] || die "still missing after apt-get: ${missing[*]}"
fi
quiet_services

# ---- python (for the scenario tests) --------------------------------------
# The tests run with whichever python3 is first on PATH (CMake finds that
# one): Debian's gets pytest/requests/cryptography (JWT tests sign tokens)
# from apt above; another (pyenv, venv)
# gets them from pip. --break-system-packages only when pip insists on it.
if [[ ${GV_SETUP_MINIMAL:-0} != 1 ]] && ! python3 -c 'import pytest, requests, cryptography' >/dev/null 2>&1; then
    log "installing pytest, requests and cryptography for $(command -v python3) with pip"
    pip_args=(install -q --disable-pip-version-check pytest requests cryptography)
    if ! out=$(python3 -m pip "${pip_args[@]}" 2>&1); then
        if grep -q externally-managed <<<"$out"; then
            [[ $(id -u) -ne 0 ]] && pip_args+=(--user)
            python3 -m pip "${pip_args[@]}" --break-system-packages
        else
            printf '%s\n' "$out" >&2
            die "pip install failed"
        fi
    fi
    python3 -c 'import pytest, requests, cryptography' ||
        die "python3 still cannot import pytest/requests/cryptography"
fi

log "ready ($((SECONDS - start_time))s)"
