# buildmon — the two commands a new machine needs are `make run` and `make test`.
# The Makefile installs its own tools (ocb, mdatagen via the tools module, Debian packages for
# the end-to-end backends) and rebuilds only what changed.

SHELL := /bin/bash
GO ?= go
export GOFLAGS ?=

OCB_VERSION := v0.165.0
TOOLS_DIR := $(CURDIR)/.tools
OCB := $(TOOLS_DIR)/builder
GOLANGCI_LINT := $(TOOLS_DIR)/golangci-lint
JAEGER := $(TOOLS_DIR)/jaeger
NFPM := $(TOOLS_DIR)/nfpm
MKIMAGE := $(TOOLS_DIR)/mkimage
DIST := _build/otelcol-buildmon
CLI := bin/buildmon
CONFIG ?= testdata/config.yaml

# Everything the distribution is built from; a change to any of these rebuilds it.
GO_SOURCES := $(shell find . -name '*.go' -not -path './_build/*' -not -path './_build-router/*' -not -path './_build-hostagent/*' -not -path './.tools/*' -not -path './internal/tools/*' -not -path './packaging/*' -not -path './dist/*' -not -name '*_test.go' -not -path './e2e/*' 2>/dev/null)
DIST_INPUTS := $(GO_SOURCES) go.mod go.sum builder-config.yaml

E2E_TIMEOUT ?= 30m

.PHONY: all run build test vet lint unit unit-deps cross e2e e2e-deps generate bench fmt clean tools soak fuzz router fleet hostagent package package-test package-deps

all: build

## run: build the distribution if needed and start it with the default config
run: $(DIST)
	@mkdir -p var
	./$(DIST) --config $(CONFIG)

## build: the ocb-built collector and the build client
build: $(DIST) $(CLI)

$(OCB):
	@mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)

$(DIST): $(OCB) $(DIST_INPUTS)
	$(OCB) --config builder-config.yaml
	@touch $(DIST)

$(CLI): $(shell find cmd/buildmon -name '*.go' -not -name '*_test.go' 2>/dev/null) go.mod go.sum
	$(GO) build -o $(CLI) ./cmd/buildmon

# The fleet router is a second, stock collector (otlp receiver, contrib loadbalancing exporter,
# health_check) from its own manifest: the load-balancing exporter is served only at v0.161.0,
# so this ocb and every module of the router are pinned to that release.
ROUTER_OCB_VERSION := v0.161.0
ROUTER_OCB := $(TOOLS_DIR)/ocb-$(ROUTER_OCB_VERSION)/builder
ROUTER := _build-router/otelcol-router
ROUTER_MANIFEST := testdata/fleet/router-builder.yaml

$(ROUTER_OCB):
	@mkdir -p $(dir $(ROUTER_OCB))
	GOBIN=$(dir $(ROUTER_OCB)) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(ROUTER_OCB_VERSION)

$(ROUTER): $(ROUTER_OCB) $(ROUTER_MANIFEST)
	$(ROUTER_OCB) --config $(ROUTER_MANIFEST)
	@touch $(ROUTER)

## router: the fleet's stock router collector (_build-router/otelcol-router)
router: $(ROUTER)

# A stock host agent (contrib hostmetricsreceiver, resourceprocessor and core otlphttpexporter,
# all v0.160.0; confmap providers v1.66.0) that the e2e tests use as a source of standard host
# metrics. Built once by the same ocb as the distribution (about 3 min) and kept in
# _build-hostagent until its manifest changes.
HOSTAGENT := _build-hostagent/otelcol-hostagent
HOSTAGENT_MANIFEST := testdata/hostagent/builder-config.yaml

$(HOSTAGENT): $(OCB) $(HOSTAGENT_MANIFEST)
	$(OCB) --config $(HOSTAGENT_MANIFEST)
	@touch $(HOSTAGENT)

## hostagent: the stock host agent of the standard-host-metrics e2e test
hostagent: $(HOSTAGENT)

## fleet: a loopback fleet for a demo (3 agents, the router, 2 gateways, Prometheus,
## Alertmanager); prints where to look, stops on Ctrl-C
fleet: $(DIST) $(CLI) $(ROUTER) e2e-deps
	DIST=$(CURDIR)/$(DIST) ROUTER=$(CURDIR)/$(ROUTER) CLI=$(CURDIR)/$(CLI) ./testdata/fleet/fleet.sh

# golangci-lint is pinned in its own tools module, so its dependencies never meet the
# collector's or mdatagen's.
$(GOLANGCI_LINT): internal/tools/lint/go.mod internal/tools/lint/go.sum
	@mkdir -p $(TOOLS_DIR)
	cd internal/tools/lint && $(GO) build -o $(GOLANGCI_LINT) github.com/golangci/golangci-lint/v2/cmd/golangci-lint

# Jaeger v2 (the traces backend of the e2e tests), pinned in its own tools module
# (internal/tools/jaeger, v1.76.0). A cold build takes 8 to 30 minutes on 2 cores; it is cached
# in .tools/ and rebuilt only when the module changes.
$(JAEGER): internal/tools/jaeger/go.mod internal/tools/jaeger/go.sum
	@mkdir -p $(TOOLS_DIR)
	cd internal/tools/jaeger && $(GO) build -trimpath -o $(JAEGER) github.com/jaegertracing/jaeger/cmd/jaeger

# nfpm (deb and rpm packages), pinned in its own tools module like golangci-lint.
$(NFPM): internal/tools/nfpm/go.mod internal/tools/nfpm/go.sum
	@mkdir -p $(TOOLS_DIR)
	cd internal/tools/nfpm && $(GO) build -o $(NFPM) github.com/goreleaser/nfpm/v2/cmd/nfpm

# mkimage writes the container image as an OCI layout (go-containerregistry, its own module).
$(MKIMAGE): $(wildcard packaging/cmd/mkimage/*.go) packaging/cmd/mkimage/go.mod packaging/cmd/mkimage/go.sum
	@mkdir -p $(TOOLS_DIR)
	cd packaging/cmd/mkimage && $(GO) build -o $(MKIMAGE) .

tools: $(OCB) $(GOLANGCI_LINT) $(JAEGER) $(NFPM) $(MKIMAGE)

## test: vet, lint, unit tests with the race detector, cross-compiles, end-to-end tests against
## the built binary, and the packages' tests
test: vet lint unit cross e2e package-test

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './_build/*')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/...
	$(GO) vet -tags package ./packaging/...
	cd packaging/cmd/mkimage && $(GO) vet ./...

## lint: golangci-lint with .golangci.yml (misspell US, revive, errorlint, nolintlint, …)
lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...
	$(GOLANGCI_LINT) run --build-tags package ./packaging/...
	cd packaging/cmd/mkimage && $(GOLANGCI_LINT) run --config $(CURDIR)/.golangci.yml ./...

unit: unit-deps
	$(GO) test -race ./...

# The webhook verifier's tests run the README's shell verifier, which needs openssl.
unit-deps:
	@if ! command -v openssl >/dev/null 2>&1; then \
	    echo "installing openssl from Debian"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && \
	    $$SUDO apt-get install -y -qq --no-install-recommends openssl >/dev/null; \
	  fi

## cross: build and vet the distribution (the ocb output in _build), the build client and every
## package with its tests for the other build-host platforms (macOS, Windows); no cgo needed
CROSS_PLATFORMS ?= darwin/arm64 darwin/amd64 windows/amd64
cross: $(DIST)
	@set -e; for p in $(CROSS_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; echo "== cross $$p"; \
	  (cd _build && GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) build -o /dev/null ./... && \
	    GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) vet ./...); \
	  GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/buildmon; \
	  GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) vet ./...; \
	done

e2e: $(DIST) $(CLI) $(ROUTER) $(JAEGER) $(HOSTAGENT) e2e-deps
	BUILDMON_DIST=$(CURDIR)/$(DIST) BUILDMON_CLI=$(CURDIR)/$(CLI) BUILDMON_ROUTER=$(CURDIR)/$(ROUTER) BUILDMON_JAEGER=$(JAEGER) BUILDMON_HOSTAGENT=$(CURDIR)/$(HOSTAGENT) \
	  $(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) ./e2e/...

# Real backends for the end-to-end tests come from Debian; installed only when missing.
E2E_PACKAGES := prometheus prometheus-alertmanager
e2e-deps:
	@missing=""; \
	  command -v prometheus >/dev/null 2>&1 || missing="$$missing prometheus"; \
	  command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing$$missing from Debian"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && \
	    $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  fi

# Packages: the version is the ocb manifest's dist.version; the .deb, the .rpm and the image are
# for the architecture the distribution is built on.
VERSION ?= $(shell sed -n 's/^  version: *//p' builder-config.yaml)
PKG_ARCH := $(shell $(GO) env GOARCH)
PKG_DIR := dist
CLIENT_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64
PKG_TEST_TIMEOUT ?= 10m

## package: into dist/: the .deb and .rpm (nfpm, packaging/nfpm.yaml), the container image as an
## OCI layout (dist/image), the build client for each of CLIENT_PLATFORMS as .tar.gz / .zip,
## and SHA256SUMS of the packages and archives
package: $(DIST) $(NFPM) $(MKIMAGE)
	@set -euo pipefail; rm -rf $(PKG_DIR); mkdir -p $(PKG_DIR); \
	  for p in $(CLIENT_PLATFORMS); do \
	    os=$${p%/*}; arch=$${p#*/}; name=buildmon_$(VERSION)_$${os}_$${arch}; exe=buildmon; \
	    [ $$os = windows ] && exe=buildmon.exe; \
	    echo "== client $$p"; \
	    GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" \
	      -o $(PKG_DIR)/$$name/$$exe ./cmd/buildmon; \
	    cp cmd/buildmon/README.md $(PKG_DIR)/$$name/README.md; \
	    touch -d @0 $(PKG_DIR)/$$name/*; \
	    if [ $$os = windows ]; then \
	      (cd $(PKG_DIR)/$$name && zip -q -X ../$$name.zip $$exe README.md); \
	    else \
	      tar -C $(PKG_DIR)/$$name --owner=0 --group=0 --numeric-owner -czf $(PKG_DIR)/$$name.tar.gz $$exe README.md; \
	    fi; \
	  done
	VERSION=$(VERSION) ARCH=$(PKG_ARCH) DIST_BIN=$(DIST) CLI_BIN=$(PKG_DIR)/buildmon_$(VERSION)_linux_$(PKG_ARCH)/buildmon \
	  $(NFPM) package --config packaging/nfpm.yaml --packager deb --target $(PKG_DIR)/
	VERSION=$(VERSION) ARCH=$(PKG_ARCH) DIST_BIN=$(DIST) CLI_BIN=$(PKG_DIR)/buildmon_$(VERSION)_linux_$(PKG_ARCH)/buildmon \
	  $(NFPM) package --config packaging/nfpm.yaml --packager rpm --target $(PKG_DIR)/
	$(MKIMAGE) -binary $(DIST) -config packaging/container-config.yaml -arch $(PKG_ARCH) \
	  -ref otelcol-buildmon:$(VERSION) -out $(PKG_DIR)/image
	cd $(PKG_DIR) && sha256sum *.deb *.rpm *.tar.gz *.zip > SHA256SUMS
	@ls -l $(PKG_DIR)

## package-test: build the packages and test them (packaging/packagetest): the .deb's files and
## scripts, the packaged collector run as an unprivileged user from the unpacked .deb, the .rpm's
## files, the image against the Dockerfile and run from its root filesystem, the GitHub Action and
## the GitLab include run with a fake CI environment
package-test: package package-deps
	BUILDMON_PACKAGE_DIR=$(CURDIR)/$(PKG_DIR) BUILDMON_PACKAGE_VERSION=$(VERSION) \
	  $(GO) test -tags package -count=1 -timeout $(PKG_TEST_TIMEOUT) ./packaging/...

# rpm (to read the .rpm with rpm -qlp) comes from Debian, installed only when missing; dpkg-deb
# and setpriv are part of every Debian system.
package-deps:
	@if ! command -v rpm >/dev/null 2>&1; then \
	    echo "installing rpm from Debian"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && \
	    $$SUDO apt-get install -y -qq --no-install-recommends rpm >/dev/null; \
	  fi

## generate: regenerate mdatagen output (schema and every component)
generate:
	./internal/tools/genschema.sh
	@for d in receiver/buildmonreceiver processor/buildprogressprocessor exporter/checkpointexporter; do \
	  (cd $$d && $(GO) tool -modfile=$(CURDIR)/internal/tools/go.mod mdatagen metadata.yaml) || exit 1; \
	done

## bench: every hot path measured (Go benchmarks + the running distribution), one table of
## medians with ratios to baselines; JSON in bench/results.json (timings live here, never in
## make test). Knobs: BENCH_COUNT, BENCH_TIME, BENCH_ONLY, BENCH_IDLE_SECONDS, … (bench/README.md)
BENCH_COUNT ?= 5
bench: $(DIST) $(ROUTER)
	@set -o pipefail; BENCH_COUNT=$(BENCH_COUNT) GO=$(GO) $(GO) run ./cmd/buildmon-bench \
	  -dist $(DIST) -router $(ROUTER) -config $(CONFIG) -out bench/results.json | tee bench/last.txt

## soak: the reliability e2e tests with their long settings (50 crashes, 60 s of load)
soak: $(DIST) $(CLI) e2e-deps
	BUILDMON_SOAK=1 BUILDMON_DIST=$(CURDIR)/$(DIST) BUILDMON_CLI=$(CURDIR)/$(CLI) \
	  $(GO) test -tags e2e -count=1 -timeout 60m -run 'TestCrash|TestLoad' -v ./e2e/...

## fuzz: every Go fuzz target for FUZZTIME each (their seed corpora run in `make test`)
FUZZTIME ?= 30s
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./_build'); do \
	  pkg=./$$(dirname $${f#./}); \
	  for fn in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -d' ' -f2); do \
	    echo "== $$pkg $$fn ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf _build _build-router _build-hostagent bin var dist
