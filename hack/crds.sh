#!/usr/bin/env bash
# Copies the CRDs named in hack/crds.txt from their projects' Go modules
# into the directory given as $1.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1
mkdir -p "$out"
# Start clean, so a CRD dropped from crds.txt (or renamed upstream) does
# not linger and get installed by tests.
rm -f "$out"/*.yaml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# go mod download needs a module context; an empty one will do.
(cd "$tmp" && go mod init crds >/dev/null 2>&1)
grep -v '^#' hack/crds.txt | while read -r modver dir glob; do
  [ -n "$modver" ] || continue
  src=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$modver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] || { echo "crds: cannot download $modver" >&2; exit 1; }
  n=0
  for f in "$src/$dir"/$glob; do
    cp "$f" "$out/$(basename "$f")"
    n=$((n + 1))
  done
  echo "crds: $n from $modver" >&2
done
