# The README's test command is `make test`; .ci/run calls exactly that.
#
# Every test runs on the two supported Go releases (README "Supported Go
# versions"). go.mod's go line (1.26.11) is newer than the Go some machines
# ship, and a Go whose GOTOOLCHAIN is "local" refuses it: each command here
# names its toolchain, which the go command fetches through the module proxy
# the first time.
GO_OLD ?= go1.26.11
GO_NEW ?= go1.27.4
TOOLCHAINS ?= $(GO_OLD) $(GO_NEW)
GO ?= GOTOOLCHAIN=$(GO_NEW) go
FUZZTIME ?= 10s

.PHONY: test tools unit integration vet fmt-check fuzz-short vulncheck build run bench cross

test: tools vet fmt-check cross unit fuzz-short vulncheck integration

# Installs what the tests drive (curl, nghttp, h2load, h2spec, ...) when missing.
tools:
	GOTOOLCHAIN=$(GO_NEW) ./scripts/install-test-tools.sh

# Each toolchain builds a different HTTP/2 file (gateway/http2_xnet.go on
# Go 1.26, gateway/http2_nethttp.go on Go 1.27): vet both.
vet:
	@set -e; for tc in $(TOOLCHAINS); do echo "== go vet ($$tc)"; GOTOOLCHAIN=$$tc go vet ./...; done

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The gateway's own tests also run on the newest toolchain with the
# http2legacy build tag, which selects x/net's own HTTP/2 server there.
unit:
	@set -e; for tc in $(TOOLCHAINS); do echo "== unit tests ($$tc)"; \
		GOTOOLCHAIN=$$tc go test -race -count=1 -timeout 5m ./settings/... ./gateway/... ./proxy/... ./internal/... ./cmd/... ./bench/...; done
	@echo "== gateway and proxy unit tests ($(GO_NEW), -tags http2legacy)"
	GOTOOLCHAIN=$(GO_NEW) go test -race -count=1 -timeout 5m -tags http2legacy ./gateway/... ./proxy/...

# The library and the binary build for darwin and windows too (linux is
# built by vet and the tests), on both toolchains: internal/readahead has a
# plain-read fallback off unix. The bench harness is Linux-only (build tag).
CROSS_TARGETS ?= darwin/arm64 windows/amd64
cross:
	@set -e; for tc in $(TOOLCHAINS); do for t in $(CROSS_TARGETS); do echo "== go build ($$tc, $$t)"; \
		GOTOOLCHAIN=$$tc GOOS=$${t%/*} GOARCH=$${t#*/} CGO_ENABLED=0 go build -o /dev/null ./...; done; done

# The binary under test is built by the toolchain that runs the tests.
integration:
	@set -e; for tc in $(TOOLCHAINS); do echo "== integration tests ($$tc)"; \
		GOTOOLCHAIN=$$tc go test -count=1 -timeout 15m ./integration/...; done

# Each fuzz target for FUZZTIME (README: how to run them long), on the newest
# toolchain; go test -fuzz takes one target per run, so they are listed.
# FuzzAfterUpgrade drives a live gateway: one worker.
fuzz-short:
	$(GO) test ./settings -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./gateway -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME)
	$(GO) test ./gateway -run '^$$' -fuzz '^FuzzAfterUpgrade$$' -fuzztime $(FUZZTIME) -parallel 1

# Known vulnerabilities in the code paths used; where the vulnerability
# database cannot be reached, says so and relies on gateway's version guard.
vulncheck:
	GOTOOLCHAIN=$(GO_NEW) ./scripts/govulncheck.sh

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/h2cgw ./cmd/h2cgw

run:
	$(GO) run ./cmd/h2cgw

# The bench harness: every contender in turn, several rounds, medians and
# ratios h2cgw/peer (bench/README.md). Not part of `make test`.
# `make bench GO_NEW=go1.26.11` measures a Go 1.26 build.
BENCHFLAGS ?= -rounds 3 -duration 5s
bench:
	$(GO) run ./bench $(BENCHFLAGS)
