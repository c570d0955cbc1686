#!/usr/bin/env bash
# Builds the vzsalvage binary: static (CGO_ENABLED=0, pure Go: no C library
# needed on the host), with its version from git describe.
#   scripts/build.sh [OUTPUT]            (default ./vzsalvage)
#   GOARCH=arm64 scripts/build.sh vzsalvage-arm64
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
out=${1:-vzsalvage}
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out" ./cmd/vzsalvage
echo "built $out ($version, static)" >&2
