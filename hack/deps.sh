#!/usr/bin/env bash
# Installs and builds everything the tests need, from the project's own
# files and the registries this machine reaches: Debian packages for the
# real servers, kube-apiserver built from the Go module proxy, and the CRDs
# of Gateway API, KEDA, External Secrets and Argo CD from their Go modules.
#
# Idempotent and cached: a second run only checks. Prints, as its last
# line, the export the tests read:
#   CUTOVER_TEST_ASSETS=<dir with kube-apiserver, etcd and crds/>
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${CUTOVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cutover}
assets="$cache/assets"
mkdir -p "$assets/crds"

log() { printf 'deps: %s\n' "$*" >&2; }

# 1. Debian packages: the servers the tests start on loopback.
pkgs=()
need() { command -v "$1" >/dev/null 2>&1 || [ -x "$2" ] || pkgs+=("$3"); }
need etcd /usr/bin/etcd etcd-server
need haproxy /usr/sbin/haproxy haproxy
need nginx /usr/sbin/nginx nginx-light
need prometheus /usr/bin/prometheus prometheus
need wrk /usr/bin/wrk wrk
[ -x /usr/lib/postgresql/15/bin/postgres ] || pkgs+=(postgresql)
need chromium /usr/bin/chromium chromium
need curl /usr/bin/curl curl   # the Lambda tests' shell bootstrap (a provided runtime)
if [ ${#pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing packages ${pkgs[*]} and not root: tests that need them will skip"
  else
    log "installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${pkgs[@]}" >&2
  fi
fi
# Debian starts some of these as services on install; the tests start
# their own on ports they pick, so stop the packaged ones.
for s in haproxy nginx prometheus postgresql etcd; do
  (command -v systemctl >/dev/null && systemctl stop "$s" >/dev/null 2>&1) || true
  (command -v service >/dev/null && service "$s" stop >/dev/null 2>&1) || true
done

# 2. etcd for envtest: Debian's binary.
ln -sf "$(command -v etcd || echo /usr/bin/etcd)" "$assets/etcd"

# 3. kube-apiserver, built from the module under hack/kube-apiserver. The
# version is stamped in as a release build would (a plain go build reports
# v0.0.0-master), so /version and the apiserver's emulation version say
# what it is; a binary reporting another version is rebuilt.
kver=$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' hack/kube-apiserver/go.mod)
[ -n "$kver" ] || { log "cannot read the k8s.io/kubernetes version from hack/kube-apiserver/go.mod"; exit 1; }
have=$("$assets/kube-apiserver" --version 2>/dev/null || true)
if [ "$have" != "Kubernetes $kver" ] || [ hack/kube-apiserver/go.mod -nt "$assets/kube-apiserver" ]; then
  log "building kube-apiserver $kver (a few minutes, once)"
  major=${kver#v}; major=${major%%.*}
  minor=${kver#v*.}; minor=${minor%%.*}
  vpkg=k8s.io/component-base/version
  (cd hack/kube-apiserver && GONOSUMDB=k8s.io,sigs.k8s.io GOFLAGS=-mod=mod \
    go build -ldflags "-X $vpkg.gitVersion=$kver -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean" \
    -o "$assets/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$assets/kube-apiserver.tmp" "$assets/kube-apiserver"
fi

# 4. CRDs from the projects' own modules (versions pinned in hack/crds.txt).
hack/crds.sh "$assets/crds" >&2

echo "CUTOVER_TEST_ASSETS=$assets"
