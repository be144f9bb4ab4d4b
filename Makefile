# meshgate build, test, demo and benchmarks. See README.md.
GO       ?= go
BIN      := bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/meshgate/meshgate/internal/buildinfo.Version=$(VERSION)
# Release binaries are static (the pure-Go resolver; no libc mapped) and leave
# out what they never use: urfave/cli's man-page generator (blackfriday) and
# gRPC's golang.org/x/net/trace (html/template). Each sidecar runs beside a
# service, so every page its init touches counts: together about 2 MB of idle
# RSS (make bench, suite sidecar).
BUILD_TAGS := urfave_cli_no_docs,grpcnotrace
PKGS     := ./...
TEST_TIMEOUT ?= 20m

.PHONY: all build test vet lint fmt demo bench faults soak fuzz clean spire jaeger hydra proto

all: build

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(BUILD_TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/ ./edge ./sidecar ./meshctl ./demo/demosvc ./demo/meshdemo

vet:
	$(GO) vet $(PKGS)

# make test: vet, the binaries and the real peers the tests run (SPIRE,
# Jaeger, Hydra: pinned, built once — about 15 minutes cold on 2 cores, a few
# seconds when nothing changed), then every test with the race detector (fuzz
# seed corpora included). A test whose peer is missing skips on a developer's
# machine and fails in CI (CI=true; internal/testenv).
test: vet build spire jaeger hydra
	$(GO) test -race -timeout $(TEST_TIMEOUT) $(PKGS)
	$(GO) test -count=1 $(POOLED_ALLOC_PKGS)

# Packages whose allocation tests count through a sync.Pool: the race
# detector drops pooled state at random, so make test runs them once more
# without it (testenv.RaceEnabled).
POOLED_ALLOC_PKGS := ./internal/transform/jsonx

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

# make demo: the whole mesh on one machine (edge, sidecars, demo services, a meshctl tour); Ctrl-C stops all.
demo: build
	$(BIN)/meshdemo

# make spire: SPIRE's server and agent (v1.13.3, pinned in the tools module
# internal/tools, whose go.mod keeps SPIRE's dependencies out of ours) into
# bin/, for TestSPIRE. About 6 minutes cold on 2 cores.
spire:
	@mkdir -p $(BIN)
	cd internal/tools && $(GO) build -o ../../$(BIN)/ github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent

# make jaeger: Jaeger (v1.76.0, cmd/jaeger: the v2 binary on the OpenTelemetry
# collector, pinned in its own tools module internal/tools/jaeger, whose go.mod
# keeps Jaeger's dependencies out of ours and out of SPIRE's) into bin/jaeger,
# the OTLP trace backend of the tracing tests (internal/tracetest). A
# `go build` of it has no UI; the query HTTP API is all the tests use.
# About 4-6 minutes cold on 2 cores (6 under other builds' load).
jaeger:
	@mkdir -p $(BIN)
	cd internal/tools/jaeger && $(GO) build -o ../../../$(BIN)/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

# make hydra: ORY Hydra (v2.3.0, the OAuth2/OIDC server, pinned in its own
# tools module internal/tools/hydra) into bin/hydra, the identity provider of
# the token-validation tests (internal/idptest runs `hydra serve all` on
# loopback with an in-memory store). It needs cgo and the sqlite tags: the
# `memory` DSN is an in-memory SQLite. The tools module replaces pop/v6 with
# ORY's fork as Hydra's own go.mod does (Go ignores a dependency's replaces).
# About 4-5 minutes cold on 2 cores (4m16s measured under other builds' load).
hydra:
	@mkdir -p $(BIN)
	cd internal/tools/hydra && CGO_ENABLED=1 $(GO) build -tags sqlite,sqlite_omit_load_extension -o ../../../$(BIN)/hydra github.com/ory/hydra/v2

# make proto: regenerate the Go code of proto/ (committed) with protoc from
# Debian's protobuf-compiler and the plugins pinned in internal/tools/proto.
PROTOS := $(shell find proto -name '*.proto')
proto:
	@command -v protoc >/dev/null || { echo "make proto: protoc not found (apt-get install protobuf-compiler)"; exit 1; }
	@mkdir -p $(BIN)
	cd internal/tools/proto && $(GO) build -o ../../../$(BIN)/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
	protoc --plugin=protoc-gen-go=$(BIN)/protoc-gen-go --plugin=protoc-gen-go-grpc=$(BIN)/protoc-gen-go-grpc \
	  -I proto --go_out=proto --go_opt=paths=source_relative \
	  --go-grpc_out=proto --go-grpc_opt=paths=source_relative $(PROTOS)

# make bench: suites dataplane (edge vs direct vs nginx), sidecar (RSS, east-west latency),
# gossip (route convergence, breaker propagation, rate-limit accuracy, partition and heal),
# tracing, auth, transform, aggregate, cache (edge cache hits vs nginx proxy_cache hits,
# edge misses vs the edge without cache), and faults (failed requests while a sidecar is
# killed or hung, the edge reloads, every SVID rotates);
# BENCH_ONLY=name[,name], BENCH_JSON=path.
bench: build
	$(GO) run ./internal/bench

# make faults: the faults suite alone (about 8 minutes): crashes, hangs, reloads,
# rotations and restarts under load, failure detection and lossy links
# (BENCH_FAULTS_RATES, BENCH_FAULTS_ONLY, BENCH_FAULTS_LOSSY).
faults: build
	BENCH_ONLY=faults $(GO) run ./internal/bench

# make soak: 10 minutes at a fixed rate through the edge and sidecars with a reload, an SVID
# rotation and a member leaving and rejoining every minute; fails on a failed request or on
# goroutines, fds, RSS or heap that grow (BENCH_SOAK_DURATION, BENCH_SOAK_RATE, BENCH_SOAK_EVERY).
soak: build
	BENCH_ONLY=soak $(GO) run ./internal/bench

# make fuzz: a short run of every fuzz target (CI replays the seed corpora in make test).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

clean:
	rm -rf $(BIN)
