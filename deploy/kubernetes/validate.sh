#!/usr/bin/env bash
# validate.sh - checks deploy/kubernetes without a Kubernetes cluster (none
# runs on the CI machines):
#   1. renders the kustomization with `kubectl kustomize` (throwaway secrets
#      in a temporary copy); where kubectl is missing or too old for it
#      (Debian 12's kubernetes-client is 1.20), check.py renders the same
#      objects itself (resources + the two generators) and says so;
#   2. kubernetes-validate --strict against a pinned Kubernetes version
#      (GV_K8S_VERSION, default below): every object against that version's
#      OpenAPI schemas, unknown fields rejected;
#   3. check.py: what the schemas cannot say (probes on /ready and /health,
#      terminationGracePeriodSeconds covering preStop + the drain, non-root
#      and read-only root filesystem everywhere, the seed is the headless
#      service...), and `grapevine validate` on the config file when a
#      grapevine binary is at hand (GRAPEVINE_BIN or build/grapevine).
# Exits 0 when all pass, 1 on a problem, and 77 (CTest's skip, see
# tests/CMakeLists.txt) when kubernetes-validate is not installed
# (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
readonly HERE=$PWD
readonly K8S_VERSION=${GV_K8S_VERSION:-1.32.0}
start=$SECONDS

if ! command -v kubernetes-validate >/dev/null; then
    echo "kubernetes manifests: SKIP (kubernetes-validate is not installed; scripts/setup.sh installs it)"
    exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/gv-k8s.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$HERE" "$work/kubernetes"
mkdir -p "$work/kubernetes/secrets"
head -c 32 /dev/urandom | base64 >"$work/kubernetes/secrets/cluster_key"
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/kubernetes/secrets/admin_token"

rendered=$work/rendered.yaml
if command -v kubectl >/dev/null && kubectl kustomize "$work/kubernetes" >"$rendered" 2>"$work/kustomize.err"; then
    echo "rendered with kubectl kustomize ($(kubectl version --client 2>/dev/null | head -1))"
else
    if command -v kubectl >/dev/null; then
        echo "kubectl kustomize failed here ($(head -c 300 "$work/kustomize.err")); rendering with check.py instead"
    else
        echo "no kubectl: rendering with check.py (resources + generators) instead of kubectl kustomize"
    fi
    python3 "$HERE/check.py" render "$work/kubernetes" >"$rendered"
fi

echo "kubernetes-validate --strict -k $K8S_VERSION ($(kubernetes-validate --version 2>&1))"
if ! kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$rendered"; then
    echo "kubernetes manifests: FAILED (schema)"
    exit 1
fi

bin=${GRAPEVINE_BIN:-$HERE/../../build/grapevine}
[[ -x $bin ]] || bin=
python3 "$HERE/check.py" check "$rendered" "$HERE/../../gateway/pipeline.h" "$bin"
echo "kubernetes manifests: ok ($((SECONDS - start))s)"
