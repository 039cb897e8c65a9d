.PHONY: test build demo fmt vet bench fuzz

# The whole test suite, installing what it needs first.
test:
	hack/test.sh

build:
	go build -o bin/cutover ./cmd/cutover

demo:
	go run ./cmd/cutover demo

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	go vet ./...

bench:
	go test -run '^$$' -bench . -benchmem ./...
