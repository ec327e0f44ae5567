#!/usr/bin/env bash
# Build a real helm binary into <repo>/.cache/bin (git-ignored) unless it is
# already there, then print its path on stdout.
#
# helm is compiled from source with `go install`; the only network it needs is
# the Go module proxy. The first build takes a few minutes, later calls return
# at once. Override the version with HELM_VERSION, the Go toolchain with GO.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bindir="$repo/.cache/bin"
helm="$bindir/helm"

# The version is stamped into the binary at link time (see -ldflags below),
# as helm's own release build does; a binary of another version is rebuilt.
if [[ -x "$helm" ]] && [[ "$("$helm" version --template '{{.Version}}' 2>/dev/null)" == "$HELM_VERSION" ]]; then
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
    "$go" install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
mv -f "$tmp/helm" "$helm"
"$helm" version --short >&2
echo "$helm"
