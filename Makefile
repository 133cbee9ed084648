# echod: every target a developer runs is the one CI runs (.ci/run calls make test).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
# What serving needs, then the development tools on top of it: each is installed once.
SERVE_INSTALLED := $(VENV)/.installed-serve
INSTALLED := $(VENV)/.installed-dev
# The benchmarks' reference services and load generators are built here.
REFERENCE := build/reference
# sslyze pins a cryptography older than echod's: it gets a virtualenv of its own.
SSLYZE_VENV := build/tools/sslyze
SSLYZE := $(SSLYZE_VENV)/bin/sslyze
# Debian packages the tests use; scripts/debian-packages installs the missing ones as root.
# nginx and nodejs run the documents' proxy and JavaScript examples (tests/integration/test_docs.py);
# nginx and caddy run the forward-auth configurations of deploy/proxies/forward-auth.
# redis-server keeps the scenarios' state in the tests of --state redis://
# (tests/integration/test_state_stores.py, test_scenarios.py).
TEST_PACKAGES := curl jq prometheus nginx nodejs caddy redis-server

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-24s %s\n", $$1, $$2}'

$(SERVE_INSTALLED): pyproject.toml constraints.txt
	@echo "make: installing echod and what it needs to serve into $(VENV) (once)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --progress-bar on -c constraints.txt -e .
	@touch $@

$(INSTALLED): $(SERVE_INSTALLED)
	@echo "make: installing the development tools into $(VENV) (once)"
	$(PIP) install --progress-bar on -c constraints.txt -e '.[dev]'
	@touch $@

.PHONY: install
install: $(INSTALLED) ## create .venv and install echod with its development tools

.PHONY: run
run: $(SERVE_INSTALLED) ## serve on 3000 (HTTP) and 10000 (HTTPS); ARGS="--workers 2" adds flags
	$(BIN)/echod $(ARGS)

.PHONY: stack
stack: $(INSTALLED) ## echod (3000, 10000) and Prometheus (9000) as local processes; Ctrl-C stops both
	@scripts/debian-packages prometheus
	$(BIN)/python scripts/stack.py $(ARGS)

# Containers. ENGINE is docker where a Docker engine answers, and podman otherwise; it is
# found once, when first used. With podman, the engine target installs these Debian
# packages when they are missing: podman with runc (see deploy/podman/containers.conf),
# the CNI plugins with name resolution for compose networks, iptables for published
# ports, and mmdebstrap, which makes base images that cannot be pulled.
ENGINE = $(eval ENGINE := $$(shell docker info >/dev/null 2>&1 && echo docker || echo podman))$(ENGINE)
PODMAN_PACKAGES := podman runc containernetworking-plugins \
  golang-github-containernetworking-plugin-dnsname iptables mmdebstrap
# podman's settings for hosts that refuse setrlimit (see the file); docker ignores them.
export CONTAINERS_CONF ?= $(CURDIR)/deploy/podman/containers.conf
VERSION = $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' src/echod/version.py)
# The OCI source label: origin's URL when it is a web or SSH address; set it to publish.
IMAGE_SOURCE ?= $(shell git config --get remote.origin.url | grep -E '^(https://|git@)' || true)
# The wheels the image installs, made on this machine where the package index is.
WHEELS := build/wheels
# The images the Dockerfile starts from (stage names have no tag).
BASE_IMAGES = $(shell sed -n 's/^FROM \([^ ]*:[^ ]*\).*/\1/p' Dockerfile | sort -u)
# The images compose runs besides echod's, named in full: Prometheus (pulled, or made from
# Debian's package) and Envoy (pulled, or nothing: there is no recipe for it).
COMPOSE_PROMETHEUS = $(shell sed -n 's/^ *image: .*PROMETHEUS_IMAGE:-\([^}]*\)}$$/\1/p' deploy/compose.yaml)
ENVOY_IMAGE = $(shell sed -n 's/^FROM \([^ ]*envoy:[^ ]*\)$$/\1/p' deploy/envoy/Dockerfile)
COMPOSE = $(if $(filter docker,$(ENGINE)),docker compose,$(BIN)/podman-compose) -f deploy/compose.yaml
# compose is given the name under which Prometheus's image is in the store.
COMPOSE_ENV = PROMETHEUS_IMAGE=$$(ENGINE=$(ENGINE) scripts/base-image $(COMPOSE_PROMETHEUS))

# Building the wheels takes pip alone: a virtualenv, without echod or its dependencies.
$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(WHEELS)/.made: $(VENV)/bin/python scripts/image-wheels pyproject.toml constraints.txt README.md $(shell find src -type f -not -name '*.pyc')
	scripts/image-wheels $(BIN)/python $(WHEELS)
	touch $@

.PHONY: engine
engine:
	@$(if $(filter podman,$(ENGINE)),scripts/debian-packages $(PODMAN_PACKAGES),true)

.PHONY: image
image: $(WHEELS)/.made engine ## build the image echod:latest (and echod:VERSION), with docker or else podman
	ENGINE=$(ENGINE) scripts/base-image $(BASE_IMAGES) >/dev/null
	$(ENGINE) build $(if $(filter podman,$(ENGINE)),--format docker) \
	  --build-arg VERSION=$(VERSION) --build-arg REVISION=$$(git rev-parse HEAD) \
	  $(if $(IMAGE_SOURCE),--build-arg SOURCE=$(IMAGE_SOURCE)) \
	  --tag echod:latest --tag echod:$(VERSION) .
	@$(ENGINE) image inspect echod:latest --format 'echod:latest is {{.Size}} bytes'

.PHONY: compose-images
compose-images: image ## the images compose runs: echod's, and Prometheus's (pulled, or from Debian)
	ENGINE=$(ENGINE) scripts/base-image $(COMPOSE_PROMETHEUS) >/dev/null

# Envoy's image is pulled or not had at all; without it, say so in one line, before
# anything is built.
.PHONY: envoy-image
envoy-image: engine
	$(if $(shell ENGINE=$(ENGINE) scripts/base-image $(ENVOY_IMAGE) 2>/dev/null),,$(error \
	  make compose-up needs Envoy's image, $(ENVOY_IMAGE), which cannot be pulled here: \
	  make compose-up-without-envoy runs echod and Prometheus alone))

.PHONY: compose-up
compose-up: envoy-image compose-images ## Envoy (HTTPS on 10000), echod and Prometheus (9000) under compose
	$(COMPOSE_ENV) $(COMPOSE) up

.PHONY: compose-up-without-envoy
compose-up-without-envoy: compose-images ## echod and Prometheus (9000) under compose, without Envoy
	$(COMPOSE_ENV) $(COMPOSE) -f deploy/compose.without-envoy.yaml up

.PHONY: compose-down
compose-down: ## stop and remove what compose-up started (Prometheus's data volume stays)
	$(COMPOSE) down

.PHONY: dockerrun
dockerrun: image ## run the echod image on 3000 (HTTP) and 10000 (HTTPS), read-only
	$(ENGINE) run --rm --read-only --stop-timeout 30 --sysctl net.ipv4.tcp_migrate_req=1 \
		-p 3000:3000 -p 10000:10000 echod:latest

.PHONY: test-containers
test-containers: $(INSTALLED) ## build the images with podman and test them running, compose included
	$(MAKE) compose-images ENGINE=podman
	$(BIN)/pytest -m containers tests/containers --timeout 300

.PHONY: test
test: lint system-packages $(SSLYZE) ## lint, then the unit, integration and deployment tests
	$(BIN)/pytest

# make test-proxies: nginx, HAProxy and Caddy from Debian, each run as a local process in
# front of two echod of its own, with the configuration deploy/proxies/ ships and with its
# default one. echod audit runs through each and its results are held to the matrix in
# tests/proxies/expected.yaml; then the defects the proxies showed are tested through
# them (about a minute and a half). Each test has a deadline, and so has each audit.
PROXY_PACKAGES := nginx haproxy caddy

.PHONY: test-proxies
test-proxies: $(INSTALLED) ## nginx, HAProxy and Caddy in front of echod: the audit's matrix and the defects they showed
	@scripts/debian-packages $(PROXY_PACKAGES)
	$(BIN)/pytest -m proxies tests/proxies --timeout 240

$(SSLYZE): tests/integration/sslyze-requirements.txt
	@echo "make: installing sslyze into $(SSLYZE_VENV) (once)"
	rm -rf $(SSLYZE_VENV) && $(PYTHON) -m venv $(SSLYZE_VENV)
	$(SSLYZE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	  --no-deps -r tests/integration/sslyze-requirements.txt
	@touch $@

.PHONY: tls-audit
tls-audit: $(SERVE_INSTALLED) ## testssl.sh against echod's HTTPS listener (about a minute); report in build/
	@scripts/debian-packages testssl.sh
	$(BIN)/python -m scripts.tls_audit

.PHONY: unit
unit: $(INSTALLED) ## the unit tests only (no sockets, no processes)
	$(BIN)/pytest tests/unit

.PHONY: lint
lint: $(INSTALLED) ## ruff (lint and format), mypy strict, and the import contract (layers, no cycles)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

.PHONY: format
format: $(INSTALLED) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Missing Debian packages skip the tests that need them, with a message; with CI set,
# those tests fail instead and name the package.
.PHONY: system-packages
system-packages:
	@scripts/debian-packages $(TEST_PACKAGES) || { [ -z "$${CI:-}" ] && \
	  echo "make: continuing; the tests that need them are skipped (with CI set, they fail)" >&2; }

# The package and its top-level modules and subpackages; pdoc takes in what these hold.
DOC_MODULES = $(shell cd src && ls -d echod/*.py echod/*/__init__.py | grep -v __main__ | \
  sed 's,/__init__\.py$$,,; s,\.py$$,,; s,/,.,g')

.PHONY: doc
doc: $(INSTALLED) ## API documentation with pdoc, into build/doc (open build/doc/index.html)
	$(BIN)/pdoc --docformat google --output-directory build/doc $(DOC_MODULES)
	@echo "make: the API documentation is in build/doc; open build/doc/index.html"

.PHONY: openapi
openapi: $(INSTALLED) ## write src/echod/openapi.json (what /openapi.json serves) from docs/openapi.yaml
	$(BIN)/python -m scripts.openapi

.PHONY: fuzz
fuzz: $(INSTALLED) ## the contract tests with many more examples: schemathesis and properties (minutes)
	CONTRACT_FUZZ=1 $(BIN)/pytest tests/contract -v --timeout 1200 --hypothesis-show-statistics

# make mutation: mutmut copies the tree into mutants/ with the modules [tool.mutmut] lists
# in pyproject.toml mutated, runs tests/unit against each mutant, and the score is the share
# the tests killed. MUTATION_TARGETS are the mutants that count (mutmut's names, as globs):
# the domain and HTTP modules whole, auth.py's Authenticator included. docs/reliability.md
# has the last score and why each survivor is left.
MUTATION_TARGETS ?= echod.http.echo.* echod.http.problems.* echod.http.controls.* \
  echod.http.forwarded.* echod.http.cors.* echod.http.bodies.* echod.http.auth.*
MUTATION_BAR ?= 90
MUTATION_NAMES = $(foreach target,$(MUTATION_TARGETS),'$(target)')

.PHONY: mutation
mutation: $(INSTALLED) ## mutation testing of the domain and HTTP modules (minutes); fails under 90 % killed
	rm -rf mutants && mkdir mutants
	@echo "make: mutmut tests each mutant against tests/unit; its output goes to mutants/run.log"
	$(BIN)/mutmut run $(MUTATION_NAMES) >mutants/run.log 2>&1 || { tail -n 30 mutants/run.log; exit 1; }
	$(BIN)/mutmut results --all true \
	  | $(BIN)/python -m scripts.mutation_score --bar $(MUTATION_BAR) $(MUTATION_NAMES)

.PHONY: mutation-smoke
mutation-smoke: ## make mutation on echo.py alone, for CI (about a minute)
	$(MAKE) mutation MUTATION_TARGETS='echod.http.echo.*'

.PHONY: bench
bench: $(INSTALLED) $(REFERENCE)/wsload ## the benchmark suite: every workload, table, bench/results/<date>.json and .png
	@scripts/debian-packages wrk
	$(BIN)/python -m bench.run $(ARGS)

# make bench-compare: echod against the Go service it replaces and against a typical FastAPI
# app, side by side (bench/compare.py). The Go programs are built offline in GOPATH mode from
# Debian's Go packages into build/reference/; FastAPI gets a virtualenv of its own there.
GO_HTTP_PACKAGES := golang-go golang-github-valyala-fasthttp-dev \
  golang-github-prometheus-client-golang-dev golang-github-rs-zerolog-dev golang-github-google-uuid-dev
GO_WS_PACKAGES := golang-go golang-github-gorilla-websocket-dev
GO := GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= CGO_ENABLED=0 \
  GOCACHE=$(CURDIR)/build/go-cache go
FASTAPI_VENV := $(REFERENCE)/fastapi-venv
ECHOD_COMMAND := $(BIN)/echod --host 127.0.0.1 --port {port} --tls-port 0 --workers 1 --log-level info
GO_ECHOD_COMMAND := $(REFERENCE)/go-echod -addr 127.0.0.1:{port}
FASTAPI_COMMAND := $(FASTAPI_VENV)/bin/uvicorn --app-dir bench/reference/fastapi-echod \
  --host 127.0.0.1 --port {port} --no-access-log app:app
GO_WS_COMMAND := $(REFERENCE)/go-ws-echo -addr 127.0.0.1:{port}
# Server A of make bench-compare-ws: echod, or go (the Go reference against itself, which
# shows the noise of the machine).
WS_SERVER ?= echod

$(REFERENCE)/go-echod: bench/reference/go-echod/main.go
	@scripts/debian-packages $(GO_HTTP_PACKAGES)
	cd $(<D) && $(GO) vet . && $(GO) build -trimpath -o $(CURDIR)/$@ .

$(REFERENCE)/go-ws-echo $(REFERENCE)/wsload: $(REFERENCE)/%: bench/reference/%/main.go
	@scripts/debian-packages $(GO_WS_PACKAGES)
	cd $(<D) && $(GO) vet . && $(GO) build -trimpath -o $(CURDIR)/$@ .

$(FASTAPI_VENV)/.installed: bench/reference/fastapi-echod/requirements.txt
	$(PYTHON) -m venv $(FASTAPI_VENV)
	$(FASTAPI_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

.PHONY: bench-compare
bench-compare: $(INSTALLED) $(REFERENCE)/go-echod $(FASTAPI_VENV)/.installed ## echod against Go and FastAPI, reference workload; ARGS="--rounds 1"
	@scripts/debian-packages wrk
	$(BIN)/mypy --python-executable $(FASTAPI_VENV)/bin/python bench/reference/fastapi-echod/app.py
	$(BIN)/python -m bench.compare --name-a echod --a '$(ECHOD_COMMAND)' \
	  --name-b go --b '$(GO_ECHOD_COMMAND)' $(ARGS)
	$(BIN)/python -m bench.compare --name-a echod --a '$(ECHOD_COMMAND)' \
	  --name-b fastapi --b '$(FASTAPI_COMMAND)' $(ARGS)

.PHONY: bench-compare-ws
bench-compare-ws: $(INSTALLED) $(REFERENCE)/go-ws-echo $(REFERENCE)/wsload ## WebSocket echoes of echod against Go (WS_SERVER=go: Go against itself)
	$(BIN)/python -m bench.compare --ws \
	  --name-a $(WS_SERVER) --a '$(if $(filter echod,$(WS_SERVER)),$(ECHOD_COMMAND),$(GO_WS_COMMAND))' \
	  --name-b go-ref --b '$(GO_WS_COMMAND)' $(ARGS)

# make autobahn: the Autobahn test suite's fuzzing client (wstest) against the WebSocket on
# /api/raw, with credentials (scripts/autobahn.py). wstest needs Python 2.7, which pyenv
# provides: scripts/wstest/install makes its virtualenv in build/autobahn/venv once, from
# pinned versions, and it is reused while they stay the same (a CI that caches that folder
# reuses it too).
AUTOBAHN_VENV := build/autobahn/venv
WSTEST_INSTALLED := $(AUTOBAHN_VENV)/.installed
# The server under test: echod, or go (the Go reference, which proves the tooling).
AUTOBAHN_SERVER ?= echod
# full: every case (the compression groups included, UNIMPLEMENTED); smoke: no message over
# 64 KiB and no compression, in about half the time.
AUTOBAHN_CASES ?= full
# Seconds wstest may take; make stops the whole run a minute after that.
AUTOBAHN_TIMEOUT ?= 600
# Group 9 sends messages of up to 16 MiB: the server's limit is raised above that.
AUTOBAHN_MAX_BYTES := 20000000
AUTOBAHN_COMMAND_echod := $(ECHOD_COMMAND) --max-body-bytes $(AUTOBAHN_MAX_BYTES)
AUTOBAHN_COMMAND_go := $(GO_WS_COMMAND) -max-message-bytes $(AUTOBAHN_MAX_BYTES)

$(WSTEST_INSTALLED): scripts/wstest/install scripts/wstest/bootstrap-requirements.txt scripts/wstest/requirements.txt
	scripts/wstest/install $(AUTOBAHN_VENV)
	@touch $@

.PHONY: autobahn
autobahn: $(INSTALLED) $(WSTEST_INSTALLED) $(if $(filter go,$(AUTOBAHN_SERVER)),$(REFERENCE)/go-ws-echo) ## Autobahn's wstest against /api/raw; AUTOBAHN_SERVER=go, AUTOBAHN_CASES=smoke
	$(if $(AUTOBAHN_COMMAND_$(AUTOBAHN_SERVER)),,$(error AUTOBAHN_SERVER=$(AUTOBAHN_SERVER): echod or go))
	timeout --kill-after=10 $$(($(AUTOBAHN_TIMEOUT) + 60)) $(BIN)/python -m scripts.autobahn \
	  --name $(if $(filter go,$(AUTOBAHN_SERVER)),go-ws-echo,echod) \
	  --command '$(AUTOBAHN_COMMAND_$(AUTOBAHN_SERVER))' \
	  --wstest-python $(AUTOBAHN_VENV)/bin/python --cases $(AUTOBAHN_CASES) \
	  --timeout $(AUTOBAHN_TIMEOUT) $(ARGS)

.PHONY: autobahn-smoke
autobahn-smoke: ## make autobahn with the smoke cases only
	$(MAKE) autobahn AUTOBAHN_CASES=smoke

.PHONY: soak
soak: $(INSTALLED) ## load and fault tests, 60 s of load each (about 9 minutes); figures in build/reliability
	@scripts/debian-packages wrk
	rm -rf build/reliability
	ECHOD_SOAK_SECONDS=$${ECHOD_SOAK_SECONDS:-60} $(BIN)/pytest -m soak tests/soak -v \
	  --timeout $(SOAK_TEST_TIMEOUT)
	$(BIN)/python -m tests.soak.report

# Seconds one soak test may take in all before pytest fails it: a hang costs this, no more.
SOAK_TEST_TIMEOUT ?= 600

.PHONY: soak-smoke
soak-smoke: ## the soak tests with 3 s of load each, as CI runs them
	$(MAKE) soak ECHOD_SOAK_SECONDS=3 SOAK_TEST_TIMEOUT=120

.PHONY: bench-scenarios
bench-scenarios: $(INSTALLED) ## scenario throughput (key=) beside plain /api/inspect, runtime directory and Redis
	@scripts/debian-packages wrk redis-server
	$(BIN)/python -m bench.scenarios $(ARGS)

.PHONY: bench-memory
bench-memory: $(INSTALLED) $(REFERENCE)/go-echod ## memory of echod (default, HTTP only, --workers 2) beside Go, idle and after 100,000 requests
	@scripts/debian-packages wrk
	$(BIN)/python -m bench.memory $(ARGS)

.PHONY: microbench
microbench: $(INSTALLED) ## time the hot path without a server, then count its instructions per echo
	$(BIN)/pytest tests/microbench --benchmark-enable --benchmark-autosave \
	  $$(ls .benchmarks/*/*.json >/dev/null 2>&1 && echo --benchmark-compare)
	@scripts/debian-packages valgrind
	$(BIN)/python -m bench.instructions

.PHONY: profile
profile: $(INSTALLED) ## flame graph of echod under the reference load, into build/profile.svg
	@scripts/debian-packages wrk
	$(BIN)/python -m bench.profile

.PHONY: constraints
constraints: ## re-pin constraints.txt from a fresh install of the ranges in pyproject.toml
	rm -rf build/pin && $(PYTHON) -m venv build/pin
	build/pin/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	{ sed -n '1,2p' constraints.txt; build/pin/bin/python -m pip freeze --exclude-editable \
	  --disable-pip-version-check | grep -v '^-e'; sed -n '/^# The image/,$$p' constraints.txt; \
	} > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf build/pin

.PHONY: clean
clean: ## remove the virtualenv and build output
	rm -rf $(VENV) build mutants .pytest_cache .mypy_cache .ruff_cache
