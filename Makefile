# The README's test command is `make test`; .ci/run calls exactly that.
GO ?= go
FUZZTIME ?= 10s

.PHONY: test tools unit integration vet fmt-check fuzz-short vulncheck build run bench

test: tools vet fmt-check unit fuzz-short vulncheck integration

# Installs what the tests drive (curl, nghttp, h2load, h2spec, ...) when missing.
tools:
	./scripts/install-test-tools.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -race -count=1 ./settings/... ./gateway/... ./cmd/... ./bench/...

integration:
	$(GO) test -count=1 -timeout 15m ./integration/...

# Each fuzz target for FUZZTIME (README: how to run them long); go test -fuzz
# takes one target per run, so they are listed. FuzzAfterUpgrade drives a live
# gateway: one worker.
fuzz-short:
	$(GO) test ./settings -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./gateway -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME)
	$(GO) test ./gateway -run '^$$' -fuzz '^FuzzAfterUpgrade$$' -fuzztime $(FUZZTIME) -parallel 1

# Known vulnerabilities in the code paths used; where the vulnerability
# database cannot be reached, says so and relies on gateway's version guard.
vulncheck:
	./scripts/govulncheck.sh

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/h2cgw ./cmd/h2cgw

run:
	$(GO) run ./cmd/h2cgw

# The bench harness: every contender in turn, several rounds, medians and
# ratios h2cgw/peer (bench/README.md). Not part of `make test`.
BENCHFLAGS ?= -rounds 3 -duration 5s
bench:
	$(GO) run ./bench $(BENCHFLAGS)
