#!/usr/bin/env bash
# Build a real helm binary into <repo>/.cache/bin (git-ignored) unless it is
# already there, then print its path on stdout (progress goes to stderr).
#
# helm is compiled from source with `go install`; the only network it needs is
# the Go module proxy. The first build takes a few minutes, later calls return
# at once. Override the version with HELM_VERSION, the Go toolchain with GO.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# Kubernetes version helm assumes without a cluster (`helm template`, `helm
# lint`): helm's own release build sets it from the k8s.io modules it is built
# with (v0.37 for helm v3.22.0); a plain `go install` would leave 1.20.
HELM_K8S_MINOR="${HELM_K8S_MINOR:-37}"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bindir="$repo/.cache/bin"
helm="$bindir/helm"
stamp="$bindir/helm.build"

ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${HELM_K8S_MINOR}"
done
want="${HELM_VERSION} ${ldflags}"

if [[ -x "$helm" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
    && [[ "$("$helm" version --template '{{.Version}}' 2>/dev/null)" == "$HELM_VERSION" ]]; then
    echo "$helm"
    exit 0
fi

go="${GO:-}"
if [[ -z "$go" ]]; then
    if command -v go >/dev/null 2>&1; then
        go="$(command -v go)"
    elif [[ -x /usr/local/go/bin/go ]]; then
        go=/usr/local/go/bin/go
    else
        echo "ensure-helm: no Go toolchain found; install Go >= 1.24 or set GO=/path/to/go" >&2
        exit 1
    fi
fi

mkdir -p "$bindir"
echo "ensure-helm: building helm ${HELM_VERSION} with $("$go" version) (first time only, a few minutes)" >&2
# Build into a temporary GOBIN and move into place, so an interrupted build
# never leaves a half-written binary that the check above would accept.
tmp="$(mktemp -d "$bindir/.helm-build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" GOFLAGS="${GOFLAGS:--mod=mod}" CGO_ENABLED="${CGO_ENABLED:-0}" \
    "$go" install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
mv -f "$tmp/helm" "$helm"
printf '%s' "$want" > "$stamp"
"$helm" version --short >&2
echo "$helm"
