#!/usr/bin/env bash
# Installs the tools deploy/helm/chart.test.ts runs, each only when it is missing or at another
# version, and prints their versions:
#   helm                 built from its Go module (go install; needs Go 1.24 or later), into
#                        $PERSONA_HELM's folder (default ~/go/bin/helm);
#   kubernetes-validate  from PyPI (it ships the Kubernetes API's schemas, so validation is
#                        offline), into a virtualenv; $PERSONA_KUBERNETES_VALIDATE (default
#                        ~/.cache/persona-tools/venv/bin/kubernetes-validate).
# Nothing lands in the repository. CI runs it before `npm test` (docs/kubernetes.md).
set -euo pipefail

HELM_VERSION=v3.22.0
# The Kubernetes minor of that release's client-go (v0.37): what `helm lint` and `helm template`
# assume without --kube-version, stamped as Helm's release build does.
HELM_K8S_MINOR=37
KUBERNETES_VALIDATE_VERSION=1.37.0

helm_bin=${PERSONA_HELM:-$HOME/go/bin/helm}
kv_bin=${PERSONA_KUBERNETES_VALIDATE:-${XDG_CACHE_HOME:-$HOME/.cache}/persona-tools/venv/bin/kubernetes-validate}
venv=$(dirname "$(dirname "$kv_bin")")

helm_version() { "$helm_bin" version --template '{{.Version}}' 2>/dev/null || true; }
kv_version() { "$kv_bin" --version 2>/dev/null || true; }

if [ "$(helm_version)" != "$HELM_VERSION" ]; then
  command -v go >/dev/null 2>&1 || { echo "helm is built from source and needs Go (1.24 or later)" >&2; exit 1; }
  echo "building helm ${HELM_VERSION} from its Go module"
  # The version stamps of Helm's own release build (its Makefile's LDFLAGS).
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
  for pkg in pkg/chartutil pkg/lint/rules; do
    ldflags+=" -X helm.sh/helm/v3/${pkg}.k8sVersionMajor=1 -X helm.sh/helm/v3/${pkg}.k8sVersionMinor=${HELM_K8S_MINOR}"
  done
  CGO_ENABLED=0 GOBIN=$(dirname "$helm_bin") go install -trimpath -ldflags "$ldflags" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
  [ "$(basename "$helm_bin")" = helm ] || mv "$(dirname "$helm_bin")/helm" "$helm_bin"
fi

if [ "$(kv_version)" != "$KUBERNETES_VALIDATE_VERSION" ]; then
  python=$(command -v python3.11 || command -v python3)
  echo "installing kubernetes-validate ${KUBERNETES_VALIDATE_VERSION} into ${venv}"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}"
fi

helm_now=$(helm_version)
kv_now=$(kv_version)
[ "$helm_now" = "$HELM_VERSION" ] || { echo "helm reports '${helm_now}', expected ${HELM_VERSION}" >&2; exit 1; }
[ "$kv_now" = "$KUBERNETES_VALIDATE_VERSION" ] || {
  echo "kubernetes-validate reports '${kv_now}', expected ${KUBERNETES_VALIDATE_VERSION}" >&2
  exit 1
}
echo "helm: ${helm_bin} (${helm_now})"
echo "kubernetes-validate: ${kv_bin} (${kv_now})"
