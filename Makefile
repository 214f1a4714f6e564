# The README's two commands are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go

.PHONY: run test lint deps build bench fuzz

build:
	$(GO) build -o bin/wgbot ./cmd/wgbot

# Installs what the tests need from Debian packages when missing
# (wireguard-tools, iproute2, iputils-ping); a no-op when present.
deps:
	./scripts/install-deps.sh

run: build
	./bin/wgbot serve

test: deps
	$(GO) test -count=1 -timeout 40m ./...
	$(MAKE) fuzz

# Short, bounded fuzzing of the wg0.conf parser on every run.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseRender$$' -fuzztime 15s ./wireguard/wgconf

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...
