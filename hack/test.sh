#!/usr/bin/env bash
# The whole test suite: installs what the tests need (hack/deps.sh), then
# vets and runs every test, including those against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "export $(hack/deps.sh | tail -n 1)"
export KUBEBUILDER_ASSETS="$CUTOVER_TEST_ASSETS"
# Tests that need the apiserver fail here instead of skipping: a suite
# that skipped them would pass without having tested anything.
export CUTOVER_REQUIRE_ASSETS=1
echo "== go vet" >&2
go vet ./...
# The event-loop bench peer is a module of its own with no dependencies.
(cd bench/peers/evloop && go vet .)
echo "== go test" >&2
go test -count=1 -timeout 40m ./... "$@"
# On Linux the proxy serves plain HTTP/1.1 from event loops and hands other
# connections to a goroutine each; the goroutine data plane alone (other
# systems, CUTOVER_DATAPLANE=goroutine) must pass the same tests.
echo "== go test ./proxy (goroutine data plane)" >&2
CUTOVER_DATAPLANE=goroutine go test -count=1 -timeout 10m ./proxy "$@"
