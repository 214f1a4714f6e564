# The README's two commands are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go

.PHONY: run test race lint deps build bench fuzz

build:
	$(GO) build -o bin/wgbot ./cmd/wgbot

# Installs what the tests need from Debian packages when missing
# (wireguard-tools, iproute2, iputils-ping, and chromium with an emoji font
# for the sandbox's browser test); a no-op when present.
deps:
	./scripts/install-deps.sh

# With a BOT_TOKEN (in the environment or .env) `make run` serves the real
# bot; without one it opens the sandbox: the whole product on this machine,
# with Telegram, payments and PostgreSQL stood in for. scripts/run.sh builds
# first and shows the build's progress (a fresh machine's first build takes
# a minute or two).
run:
	@GO='$(GO)' ./scripts/run.sh

test: deps
	$(GO) test -count=1 -timeout 40m ./...
	$(MAKE) fuzz

# The packages whose code runs concurrently, again under the race
# detector (CI runs this after `make test`). cmd/wgbot is left out: its
# tests drive the built binary as separate processes, which -race would not
# instrument.
RACE_PKGS := ./postgres/... ./service/... ./reconcile/... ./jobs/... ./telegram/... ./payment/... \
	./wireguard/... ./httpserver/... ./secret/... ./sandbox/... ./logs/... ./config/... ./panel/... ./traffic/... ./gctight/...

race: deps
	$(GO) test -race -count=1 -timeout 40m $(RACE_PKGS)

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

# Issuance at 0, 10k and 50k peers on wireguard-go, device and file mode
# (issue 15; figures in docs/benchmarks.md): press→document through the
# real serve binary, then the reconciler alone (rows read per issuance).
# Needs root for the namespaces.
.PHONY: bench-e2e
bench-e2e:
	$(GO) test -run '^$$' -bench E2E -benchtime 1x -timeout 60m ./cmd/wgbot
	$(GO) test -run '^$$' -bench IssuanceAtScale -benchtime 1x -timeout 30m ./reconcile

# The web panel at 100,000 users and 300,000 payments (issue 21; figures
# in docs/benchmarks.md).
.PHONY: bench-panel
bench-panel:
	$(GO) test -run '^$$' -bench Panel -benchtime 200x ./panel

# Issue 16's scale acceptance: 1 and 10 servers of 10,000 peers each on one
# PostgreSQL, a `wgbot node` per server in file mode and three issuing
# processes; trials/s against a pgbench ceiling of the same run, and
# commit→applied p50/p99 (figures in docs/benchmarks.md). No root needed.
.PHONY: bench-scale
bench-scale:
	$(GO) test -run '^$$' -bench Scale -benchtime 1x -count 2 -timeout 60m ./cmd/wgbot
