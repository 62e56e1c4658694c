#!/usr/bin/env bash
# Installs the tools deploy/helm/chart.test.ts runs, each only when it is missing or at another
# version, and prints their versions:
#   helm                 built from its Go module (go install; needs Go 1.24 or later), into
#                        $PERSONA_HELM's folder (default ~/go/bin/helm);
#   kubernetes-validate  from PyPI (it ships the Kubernetes API's schemas, so validation is
#                        offline), into a virtualenv; $PERSONA_KUBERNETES_VALIDATE (default
#                        ~/.cache/persona-tools/venv/bin/kubernetes-validate);
#   the Prometheus Operator's CRDs of ServiceMonitor and PrometheusRule, which the test validates
#                        those kinds against (deploy/helm/validate_crds.py): from the operator's Go
#                        module (go mod download, checked against the pinned hash), copied into
#                        $PERSONA_PROMETHEUS_OPERATOR_CRDS (default ~/.cache/persona-tools/prometheus-operator-crds).
# Nothing lands in the repository. CI runs it before `npm test` (docs/kubernetes.md).
set -euo pipefail

HELM_VERSION=v3.22.0
# The Kubernetes minor of that release's client-go (v0.37): what `helm lint` and `helm template`
# assume without --kube-version, stamped as Helm's release build does.
HELM_K8S_MINOR=37
KUBERNETES_VALIDATE_VERSION=1.37.0
# The newest release of the operator's root module that the Go module proxy serves, and its go.sum hash.
PROMETHEUS_OPERATOR_VERSION=v0.94.1
PROMETHEUS_OPERATOR_SUM=h1:QEIb2wenPH+SdMN1xMf8l4Pmj00YYXXI6HlbLlQWkww=
PROMETHEUS_OPERATOR_CRDS=(monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_prometheusrules.yaml)
# The two files as that release has them: checked at every run, so a cached copy is trusted no more
# than a download.
PROMETHEUS_OPERATOR_CRDS_SHA256="31bdff398b54ac2bc993a33f5dcb0472792a77104a6a609d264c8f1f17829769  monitoring.coreos.com_servicemonitors.yaml
8e29b30e9353d593821ba4e61dc189ed7b3c4cf50a665e95d8c3d3aad3c4d484  monitoring.coreos.com_prometheusrules.yaml"

helm_bin=${PERSONA_HELM:-$HOME/go/bin/helm}
kv_bin=${PERSONA_KUBERNETES_VALIDATE:-${XDG_CACHE_HOME:-$HOME/.cache}/persona-tools/venv/bin/kubernetes-validate}
venv=$(dirname "$(dirname "$kv_bin")")
crd_dir=${PERSONA_PROMETHEUS_OPERATOR_CRDS:-${XDG_CACHE_HOME:-$HOME/.cache}/persona-tools/prometheus-operator-crds}

helm_version() { "$helm_bin" version --template '{{.Version}}' 2>/dev/null || true; }
kv_version() { "$kv_bin" --version 2>/dev/null || true; }
# The operator's release each CRD was generated for (its operator.prometheus.io/version annotation).
crds_version() {
  for crd in "${PROMETHEUS_OPERATOR_CRDS[@]}"; do
    sed -n 's/^ *operator\.prometheus\.io\/version: *\([^ ]*\)$/v\1/p' "$crd_dir/$crd" 2>/dev/null || true
  done | sort -u | paste -sd' '
}

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

crds_intact() { (cd "$crd_dir" 2>/dev/null && sha256sum --quiet --status -c <<<"$PROMETHEUS_OPERATOR_CRDS_SHA256"); }

if ! crds_intact; then
  command -v go >/dev/null 2>&1 || { echo "the Prometheus Operator's CRDs are a Go module's: needs Go" >&2; exit 1; }
  echo "fetching the Prometheus Operator's CRDs ${PROMETHEUS_OPERATOR_VERSION} from its Go module into ${crd_dir}"
  # Outside any module, so that no go.mod or go.sum is touched; the module cache keeps the zip.
  outside=$(mktemp -d)
  trap 'rm -rf "$outside"' EXIT
  module=$(cd "$outside" && go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@${PROMETHEUS_OPERATOR_VERSION}") || {
    echo "$module" >&2
    exit 1
  }
  field() { sed -n "s/^\t\"$1\": \"\(.*\)\",\{0,1\}$/\1/p" <<<"$module"; }
  [ "$(field Sum)" = "$PROMETHEUS_OPERATOR_SUM" ] || {
    echo "prometheus-operator ${PROMETHEUS_OPERATOR_VERSION}: '$(field Sum)', not ${PROMETHEUS_OPERATOR_SUM}" >&2
    exit 1
  }
  mkdir -p "$crd_dir"
  for crd in "${PROMETHEUS_OPERATOR_CRDS[@]}"; do
    install -m 644 "$(field Dir)/example/prometheus-operator-crd/$crd" "$crd_dir/$crd"
  done
fi

helm_now=$(helm_version)
kv_now=$(kv_version)
crds_now=$(crds_version)
crds_intact || { echo "the Prometheus Operator's CRDs in ${crd_dir} are not the pinned files (sha256)" >&2; exit 1; }
[ "$helm_now" = "$HELM_VERSION" ] || { echo "helm reports '${helm_now}', expected ${HELM_VERSION}" >&2; exit 1; }
[ "$kv_now" = "$KUBERNETES_VALIDATE_VERSION" ] || {
  echo "kubernetes-validate reports '${kv_now}', expected ${KUBERNETES_VALIDATE_VERSION}" >&2
  exit 1
}
[ "$crds_now" = "$PROMETHEUS_OPERATOR_VERSION" ] || {
  echo "the Prometheus Operator's CRDs are of '${crds_now}', expected ${PROMETHEUS_OPERATOR_VERSION}" >&2
  exit 1
}
echo "helm: ${helm_bin} (${helm_now})"
echo "kubernetes-validate: ${kv_bin} (${kv_now})"
echo "prometheus-operator CRDs: ${crd_dir} (${crds_now})"
