#!/usr/bin/env bash
# setup.sh - installs everything grapevine needs to build, test and benchmark
# on Debian 12. Idempotent: when everything is already there it only checks
# (dpkg-query, one python import) and returns within seconds.
#
# Run as root, or as a user with sudo (only the apt/dpkg steps use it; root
# never needs sudo, which a minimal system does not have).
# Env: GV_SETUP_FORCE=1 re-runs the apt steps even when all looks present.
#      GV_SETUP_MINIMAL=1 installs only what building needs (deploy/Dockerfile):
#      no test/bench packages, no python.
#      GV_DEBIAN_MIRROR=URL overrides the Debian mirror read from apt's sources.
# Usage: setup.sh             install what is missing
#        setup.sh --print-mirror
#                             print the Debian mirror this machine's apt uses for
#                             bookworm main (deploy/compose-test.sh and
#                             scripts/fresh-machine.sh debootstrap from it)
set -euo pipefail

# llhttp is not in Debian 12: Debian 13 (trixie) has it, and its library needs
# only libc6. apt fetches it from the mirror this machine already uses, with a
# private source list and state, so that apt checks trixie's signed Release
# and the packages' hashes while the system's sources and lists stay as they
# are and nothing else is upgraded. No version is pinned: the newest in
# trixie, at least LLHTTP_MIN_VERSION.
readonly LLHTTP_SUITE=trixie
readonly LLHTTP_MIN_VERSION=9.2
readonly DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# Build, test, and benchmark packages. nginx-light/haproxy/wrk (and
# python3-matplotlib, which draws the benches' plots) are for
# tests/bench only; procps/netcat/iproute2 for scripts and debugging;
# iproute2 (ip netns) and iptables (random loss, partitions) for tests/fault.
# chromium + chromium-driver drive the dashboard test; prometheus brings
# promtool, which checks /metrics; tmux drives `ctl status --watch` on a terminal.
APT_PACKAGES=(
    build-essential cmake pkg-config
    libuv1-dev libnng-dev libmsgpack-dev libfyaml-dev libjansson-dev libssl-dev libpcre2-dev
    libnghttp2-dev
    clang libclang-rt-14-dev clang-format curl ca-certificates
    python3 python3-pip python3-pytest python3-requests python3-cryptography python3-yaml
    python3-h2 python3-httpx python3-grpcio python3-matplotlib
    wrk haproxy nginx-light stress-ng nghttp2-client
    procps netcat-openbsd iproute2 util-linux iptables git
    chromium chromium-driver prometheus tmux
)
if [[ ${GV_SETUP_MINIMAL:-0} == 1 ]]; then
    APT_PACKAGES=(
        build-essential cmake pkg-config
        libuv1-dev libnng-dev libmsgpack-dev libfyaml-dev libjansson-dev libssl-dev libpcre2-dev
        libnghttp2-dev curl ca-certificates
    )
fi

log() { printf 'setup: %s\n' "$*"; }
die() {
    printf 'setup: error: %s\n' "$*" >&2
    exit 1
}

# ---- which Debian mirror ---------------------------------------------------
# Prints the http(s) URIs of the enabled "deb" sources that serve SUITE with
# component main, in the order apt reads them: one-line entries of
# sources.list and sources.list.d/*.list, deb822 stanzas of
# sources.list.d/*.sources (URIs:, Suites:, Components:, Types:, Enabled:).
# GV_APT_ETC (default /etc/apt) lets a test point it at other files.
apt_source_uris() {
    local suite=$1 etc=${GV_APT_ETC:-/etc/apt} f
    for f in "$etc/sources.list" "$etc"/sources.list.d/*; do
        [[ -f $f && -r $f ]] || continue
        case $f in
        *.list)
            awk -v suite="$suite" '
                { sub(/#.*/, "") }
                $1 != "deb" { next }
                {
                    line = $0
                    gsub(/\[[^]]*\]/, " ", line)   # [ options ]
                    n = split(line, w, /[ \t]+/)
                    k = 0
                    for (i = 1; i <= n; i++) if (w[i] != "") f[++k] = w[i]
                    if (k < 4 || f[3] != suite) next
                    for (i = 4; i <= k; i++) if (f[i] == "main") { print f[2]; next }
                }' "$f"
            ;;
        *.sources)
            awk -v suite="$suite" '
                function has(list, word,   a, n, i) {
                    n = split(list, a, /[ \t]+/)
                    for (i = 1; i <= n; i++) if (a[i] == word) return 1
                    return 0
                }
                BEGIN { RS = ""; FS = "\n" }
                {
                    split("", v)
                    key = ""
                    for (i = 1; i <= NF; i++) {
                        line = $i
                        if (line ~ /^#/) continue
                        if (line ~ /^[ \t]/) { if (key != "") v[key] = v[key] " " line; continue }
                        p = index(line, ":")
                        if (p == 0) continue
                        key = tolower(substr(line, 1, p - 1))
                        v[key] = substr(line, p + 1)
                    }
                    if (tolower(v["enabled"]) ~ /no/) next
                    if (!has(v["types"], "deb") || !has(v["suites"], suite) || !has(v["components"], "main")) next
                    n = split(v["uris"], u, /[ \t]+/)
                    for (j = 1; j <= n; j++) if (u[j] != "") print u[j]
                }' "$f"
            ;;
        esac
    done | grep -E '^https?://' || true
}

# Prints the Debian mirror to use (no trailing slash): GV_DEBIAN_MIRROR, else
# the first apt source for bookworm main (not -security or -updates), else the
# one for the host's own Debian release. Fails when there is none.
debian_mirror() {
    local uri suite suites=(bookworm) host
    if [[ -n ${GV_DEBIAN_MIRROR:-} ]]; then
        printf '%s\n' "${GV_DEBIAN_MIRROR%/}"
        return 0
    fi
    # shellcheck disable=SC1091 # os-release is the machine's, not ours
    host=$(. /etc/os-release 2>/dev/null && [[ ${ID:-} == debian ]] && printf '%s' "${VERSION_CODENAME:-}") || true
    [[ -n $host && $host != bookworm ]] && suites+=("$host")
    for suite in "${suites[@]}"; do
        uri=$(apt_source_uris "$suite" | head -n 1)
        if [[ -n $uri ]]; then
            printf '%s\n' "${uri%/}"
            return 0
        fi
    done
    return 1
}

# Fails with a message saying where it looked and how to override.
need_mirror() {
    debian_mirror || die "no Debian mirror for bookworm main in ${GV_APT_ETC:-/etc/apt}/sources.list or sources.list.d/*.sources|*.list (an enabled 'deb' source with an http(s) URI); set GV_DEBIAN_MIRROR=URL"
}

case ${1:-} in
'') ;;
--print-mirror)
    need_mirror
    exit 0
    ;;
-h | --help)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
*) die "unknown argument '$1' (try --help)" ;;
esac

# Stands in for sudo when there is none: fails only if something really has
# to run as root, so a set-up machine still passes the checks without it.
no_sudo() { die "not root and sudo is not installed: cannot run '$*'"; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then
        SUDO=(sudo)
    else
        SUDO=(no_sudo)
    fi
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

# True when libllhttp-dev (which depends on its exact library) is installed
# at LLHTTP_MIN_VERSION or later.
llhttp_ok() {
    local v
    v=$(dpkg-query -W -f='${db:Status-Status} ${Version}' libllhttp-dev 2>/dev/null || true)
    [[ $v == "installed "* ]] && dpkg --compare-versions "${v#installed }" ge "$LLHTTP_MIN_VERSION"
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

# nginx and haproxy are benchmark subjects, prometheus only brings promtool:
# never system services.
quiet_services() {
    local svc
    for svc in nginx haproxy prometheus; do
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

# Installs libllhttp-dev and its library from trixie: apt reads trixie's
# signed package list into a private state dir (the system's sources, lists
# and pins are not used or changed), downloads the two .debs (apt checks their
# hashes against that list) and installs them with apt-get install ./x.deb,
# which takes their dependencies from the system's own sources.
# Trust: trixie's Release is signed by the Debian 12 archive key as well as
# the Debian 13 ones, and bookworm's debian-archive-keyring holds both, so
# the keyring bookworm already trusts verifies it.
install_llhttp() {
    local mirror dir pkg version runtime installed
    mirror=$(need_mirror)
    [[ -r $DEBIAN_KEYRING ]] ||
        die "$DEBIAN_KEYRING is missing: install debian-archive-keyring"
    dir=$(mktemp -d "${TMPDIR:-/tmp}/gv-llhttp.XXXXXX")
    # shellcheck disable=SC2064 # expand dir now: it is local
    trap "${SUDO[*]} rm -rf '$dir'; unblock_service_starts" EXIT
    mkdir -p "$dir/lists/partial" "$dir/debs" "$dir/empty.d"
    printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nArchitectures: %s\nLanguages: none\nTargets: Packages\nSigned-By: %s\n' \
        "$mirror" "$LLHTTP_SUITE" "$(dpkg --print-architecture)" "$DEBIAN_KEYRING" >"$dir/llhttp.sources"
    # apt fetches as the _apt user when run as root: let it in.
    chmod 755 "$dir" "$dir/debs"
    if getent passwd _apt >/dev/null; then
        "${SUDO[@]}" chown _apt "$dir/debs"
    fi
    local opts=(-o Dir::Etc::sourcelist="$dir/llhttp.sources" -o Dir::Etc::sourceparts="$dir/empty.d"
        -o Dir::Etc::preferences="$dir/none" -o Dir::Etc::preferencesparts="$dir/empty.d"
        -o Dir::State::Lists="$dir/lists"
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
        -o Acquire::AllowInsecureRepositories=false
        -o Acquire::AllowDowngradeToInsecureRepositories=false
        -o APT::Get::AllowUnauthenticated=false)
    log "reading Debian 13 ($LLHTTP_SUITE) main from $mirror into a private apt state (system sources untouched)"
    "${SUDO[@]}" apt-get -q "${APT_WAIT[@]}" "${opts[@]}" --error-on=any update ||
        die "could not get $LLHTTP_SUITE's signed package list from $mirror: no network, a mirror without $LLHTTP_SUITE, or a Release whose signature does not verify against $DEBIAN_KEYRING (apt's message is above)"

    version=$(apt-cache "${opts[@]}" show --no-all-versions libllhttp-dev 2>/dev/null |
        sed -n 's/^Version: //p') || true
    [[ -n $version ]] || die "$mirror has no libllhttp-dev in $LLHTTP_SUITE main"
    dpkg --compare-versions "$version" ge "$LLHTTP_MIN_VERSION" ||
        die "$LLHTTP_SUITE has libllhttp-dev $version, grapevine needs >= $LLHTTP_MIN_VERSION"
    # The library's package is named after its soname (libllhttp9.2): take
    # it from the -dev package's Depends rather than naming it here.
    runtime=$(apt-cache "${opts[@]}" show --no-all-versions libllhttp-dev |
        sed -n 's/^Depends: //p' | tr ',' '\n' | sed -nE 's/^ *(libllhttp[0-9][^ ]*).*/\1/p' | head -n 1)
    [[ -n $runtime ]] || die "cannot tell libllhttp-dev $version's library package from its Depends"

    installed=$(dpkg-query -W -f='${Version}' libllhttp-dev 2>/dev/null || true)
    if llhttp_ok && dpkg --compare-versions "$installed" ge "$version"; then
        log "libllhttp-dev $installed is installed (trixie has $version)"
    else
        log "downloading libllhttp-dev and $runtime $version"
        (cd "$dir/debs" && "${SUDO[@]}" apt-get -q "${opts[@]}" download libllhttp-dev "$runtime") ||
            die "could not download libllhttp-dev/$runtime $version from $mirror (apt's message is above)"
        for pkg in "$dir"/debs/*.deb; do
            "${SUDO[@]}" chmod 644 "$pkg"
        done
        (cd "$dir/debs" && "${SUDO[@]}" apt-get install "${APT_WAIT[@]}" -y -q --no-install-recommends ./*.deb) ||
            die "apt-get install of libllhttp-dev/$runtime $version failed (apt's message is above)"
    fi
    "${SUDO[@]}" rm -rf "$dir"
    trap unblock_service_starts EXIT
}

# ---- apt ------------------------------------------------------------------
# Another apt (unattended-upgrades on a new machine, a second setup) holds
# dpkg's lock for a while: wait for it up to 10 minutes instead of failing.
APT_WAIT=(-o DPkg::Lock::Timeout=600)
mapfile -t missing < <(missing_packages)
need_llhttp=0
llhttp_ok || need_llhttp=1

if [[ ${#missing[@]} -eq 0 && $need_llhttp -eq 0 && ${GV_SETUP_FORCE:-0} != 1 ]]; then
    log "system packages: all present"
else
    [[ ${#missing[@]} -gt 0 ]] && log "installing: ${missing[*]}"
    block_service_starts
    "${SUDO[@]}" apt-get update "${APT_WAIT[@]}" -q
    if [[ ${GV_SETUP_FORCE:-0} == 1 ]]; then
        missing=("${APT_PACKAGES[@]}")
    fi
    if [[ ${#missing[@]} -gt 0 ]]; then
        "${SUDO[@]}" apt-get install "${APT_WAIT[@]}" -y -q --no-install-recommends "${missing[@]}"
    fi
    if [[ $need_llhttp -eq 1 || ${GV_SETUP_FORCE:-0} == 1 ]]; then
        install_llhttp
    fi
    unblock_service_starts
    llhttp_ok || die "libllhttp-dev >= $LLHTTP_MIN_VERSION is not installed after installing it"
    mapfile -t missing < <(missing_packages)
    [[ ${#missing[@]} -eq 0 ]] || die "still missing after apt-get: ${missing[*]}"
fi
quiet_services

# ---- python (for the scenario tests) --------------------------------------
# selenium (the dashboard test) and schemathesis (the admin API contract
# test) are not packaged in Debian 12: always from pip.
# The tests run with whichever python3 is first on PATH (CMake finds that
# one): Debian's gets pytest/requests/cryptography (JWT tests sign tokens)
# from apt above; another (pyenv, venv)
# gets them from pip. --break-system-packages only when pip insists on it.
# h2, httpx and grpcio are the HTTP/2 and gRPC clients of test_http2/test_grpc.
PY_IMPORTS='import pytest, requests, cryptography, yaml, h2, hpack, httpx, grpc, selenium, schemathesis'
if [[ ${GV_SETUP_MINIMAL:-0} != 1 ]] && ! python3 -c "$PY_IMPORTS" >/dev/null 2>&1; then
    log "installing pytest, requests, cryptography, pyyaml, h2, httpx, grpcio, selenium and schemathesis for $(command -v python3) with pip"
    pip_args=(install -q --disable-pip-version-check pytest requests cryptography pyyaml h2 'httpx[http2]' grpcio selenium schemathesis)
    if ! out=$(python3 -m pip "${pip_args[@]}" 2>&1); then
        if grep -q externally-managed <<<"$out"; then
            [[ $(id -u) -ne 0 ]] && pip_args+=(--user)
            python3 -m pip "${pip_args[@]}" --break-system-packages
        else
            printf '%s\n' "$out" >&2
            die "pip install failed"
        fi
    fi
    python3 -c "$PY_IMPORTS" ||
        die "python3 still cannot import one of: ${PY_IMPORTS#import }"
fi

# ---- deploy/kubernetes/validate.sh ------------------------------------------
# kubernetes-validate (PyPI, pinned: its schemas of each Kubernetes version
# are what the manifests are checked against) and a kubectl for `kubectl
# kustomize` (Debian's kubernetes-client, unless some kubectl is there
# already; validate.sh renders without it where it is too old).
readonly KUBERNETES_VALIDATE=kubernetes-validate==1.37.0
if [[ ${GV_SETUP_MINIMAL:-0} != 1 ]]; then
    if ! command -v kubectl >/dev/null; then
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${APT_WAIT[@]}" -y -q --no-install-recommends \
            kubernetes-client >/dev/null || log "kubernetes-client not installed (validate.sh renders without kubectl)"
    fi
    if ! kubernetes-validate --version 2>/dev/null | grep -qx "${KUBERNETES_VALIDATE#*==}"; then
        log "installing $KUBERNETES_VALIDATE with pip"
        pip_args=(install -q --disable-pip-version-check "$KUBERNETES_VALIDATE")
        if ! out=$(python3 -m pip "${pip_args[@]}" 2>&1); then
            if grep -q externally-managed <<<"$out"; then
                [[ $(id -u) -ne 0 ]] && pip_args+=(--user)
                python3 -m pip "${pip_args[@]}" --break-system-packages
            else
                printf '%s\n' "$out" >&2
                die "pip install $KUBERNETES_VALIDATE failed"
            fi
        fi
    fi
fi

log "ready ($((SECONDS - start_time))s)"
