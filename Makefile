# The README's two commands are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go

.PHONY: run test lint deps build bench fuzz

build:
	$(GO) build -o bin/wgbot ./cmd/wgbot

# Installs what the tests need from Debian packages when missing
# (wireguard-tools, iproute2, iputils-ping, and chromium with an emoji font
# for the sandbox's browser test); a no-op when present.
deps:
	./scripts/install-deps.sh

# With a BOT_TOKEN (in the environment or .env) `make run` serves the real
# bot; without one it opens the sandbox: the whole product on this machine,
# with Telegram, payments and PostgreSQL stood in for.
run: build
	@if [ -n "$$BOT_TOKEN" ] || grep -Eqs '^[[:space:]]*(export[[:space:]]+)?BOT_TOKEN[[:space:]]*=[[:space:]]*[^[:space:]#]' .env; then \
		exec ./bin/wgbot serve; \
	else \
		exec ./bin/wgbot sandbox; \
	fi

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
