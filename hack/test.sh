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
