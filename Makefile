# Sluice. Two commands for a new user:
#   make dev    run the whole pipeline locally (installs what it needs)
#   make test   run every test (installs what it needs)
# Everything the targets use is installed here: rust wasm target, worker-build, the
# wasm-bindgen-cli matching Cargo.lock, npm packages (wrangler, binaryen), a Python venv
# with moto. docs/development.md says why each piece is pinned.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO_HOME ?= $(HOME)/.cargo
CARGO_BIN := $(CARGO_HOME)/bin
export PATH := $(CARGO_BIN):$(CURDIR)/node_modules/.bin:$(PATH)

WORKER_BUILD_VERSION := 0.8.7
# wasm-bindgen-cli must equal the wasm-bindgen crate in Cargo.lock.
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/{getline; gsub(/"/,"",$$3); print $$3; exit}' Cargo.lock)
PYTHON ?= python3

# worker-build would download these from GitHub; point it at local copies instead.
export WASM_BINDGEN_BIN := $(CARGO_BIN)/wasm-bindgen
export WASM_OPT_BIN := $(CURDIR)/node_modules/.bin/wasm-opt
export ESBUILD_BIN := $(CURDIR)/node_modules/.bin/esbuild
export WRANGLER_SEND_METRICS := false
export WRANGLER_HIDE_BANNER := true
export CLOUDFLARE_CF_FETCH_ENABLED := false
export SAM_CLI_TELEMETRY := 0

.PHONY: help dev test bench tools rust-tools node-tools python-tools edge build lint unit e2e clean \
	template-lint edge-dry-run sam-build

help:
	@echo "make dev    run the whole pipeline locally (edge :8787, moto :4566, consumer, demo destination)"
	@echo "make test   run every test: lint, unit, consumer against moto, end to end"
	@echo "make edge   build the Worker (edge/build)"
	@echo "make lint   formatting, clippy, and template.yaml through cfn-lint, sam validate --lint, checkov"
	@echo "make sam-build  build the arm64 consumer as \`sam deploy\` ships it (slow: release AWS SDKs)"
	@echo "make fuzz   fuzz the protocol parsers, FUZZ_SECONDS (30) per target; not part of make test"
	@echo "make bench  benchmarks: edge pure path vs HMAC floor, wasm size, edge load, consumer cold start/CPU"

## ---- tools ----------------------------------------------------------------

tools: rust-tools node-tools python-tools

rust-tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
	@if ! $(CARGO_BIN)/worker-build --version 2>/dev/null | grep -q "$(WORKER_BUILD_VERSION)"; then \
		echo "installing worker-build $(WORKER_BUILD_VERSION) (a few minutes, once)"; \
		cargo install worker-build --version $(WORKER_BUILD_VERSION) --locked; fi
	@# Not --locked: its lockfile pins a webpki-roots version the registry no longer serves.
	@if ! $(CARGO_BIN)/wasm-bindgen --version 2>/dev/null | grep -q "$(WASM_BINDGEN_VERSION)"; then \
		echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) (a few minutes, once)"; \
		cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); fi

node-tools: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

python-tools: .venv/.installed .venv-lint/.installed .venv-sam/.installed
.venv-lint/.installed: infra/requirements-lint.txt
	$(PYTHON) -m venv .venv-lint
	.venv-lint/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-lint.txt
	@touch $@

.venv/.installed: infra/requirements.txt
	$(PYTHON) -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	@touch $@

# The AWS SAM CLI, alone: it pins boto3 versions moto and checkov do not share.
.venv-sam/.installed: infra/requirements-sam.txt
	$(PYTHON) -m venv .venv-sam
	.venv-sam/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-sam.txt
	@touch $@

# The Powertools for AWS Lambda (Python) baseline of `make bench` (bench/powertools/), alone:
# the packages a Python Lambda function ships, and awslambdaric to run it.
.venv-bench/.installed: infra/requirements-bench.txt
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-bench.txt
	@touch $@

## ---- build ----------------------------------------------------------------

# The Worker: wasm32 release build, wasm-bindgen, wasm-opt, esbuild shim -> edge/build/.
edge: rust-tools node-tools
	cd edge && worker-build --release
	@printf 'edge wasm: %s bytes, %s bytes gzip -9\n' \
		"$$(wc -c < edge/build/index_bg.wasm)" "$$(gzip -9c edge/build/index_bg.wasm | wc -c)"

# Native binaries the local stack runs (local poller, CLI, sluice-dev), and the Lambda
# `bootstrap` built the way `cargo lambda watch` builds it (its own feature set).
build:
	cargo build --workspace --bins
	cargo build -p sluice-lambda-worker --bin bootstrap

## ---- run ------------------------------------------------------------------

dev: tools edge build
	target/debug/sluice-dev

## ---- test -----------------------------------------------------------------

lint: rust-tools python-tools template-lint
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy -p sluice-edge --target wasm32-unknown-unknown -- -D warnings
	cargo check -p sluice-protocol --target wasm32-unknown-unknown

# template.yaml three ways, all offline: cfn-lint (CloudFormation schemas and best
# practices), `sam validate --lint` (the SAM transform, then cfn-lint on its output) and
# checkov (security defaults; every check it skips says why in the resource's Metadata).
template-lint: .venv-lint/.installed .venv-sam/.installed
	.venv-lint/bin/cfn-lint template.yaml
	.venv-sam/bin/sam validate --lint --template-file template.yaml
	.venv-lint/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet

# `wrangler deploy --dry-run` of each environment, offline: checks wrangler.toml and bundles
# the Worker as a deploy uploads it, then prints the upload size. `edge` has just built
# edge/build; SLUICE_EDGE_PREBUILT=1 keeps wrangler.toml's [build] command from building it
# a second time (it would run `make -s edge` again: same result, 15 s more).
edge-dry-run: node-tools edge
	@for env in dev production; do \
		out=dist/$$env; rm -rf $$out; mkdir -p $$out; \
		if ! SLUICE_EDGE_PREBUILT=1 wrangler deploy --dry-run --env $$env --outdir $$out > $$out.log 2>&1; then \
			cat $$out.log; exit 1; fi; \
		printf 'wrangler deploy --dry-run --env %s: %s\n' $$env "$$(grep -o 'Total Upload: .*' $$out.log)"; \
	done

# The consumer as `sam deploy` ships it: BuildMethod rust-cargolambda builds the arm64
# release `bootstrap` with cargo lambda (and zig) from .venv into .aws-sam/build. Slow the
# first time (a release build of the AWS SDKs, about 10 minutes on 2 cores): not part of
# `make test`. nice: it shares the machine with everything else.
sam-build: .venv/.installed .venv-sam/.installed
	PATH="$(CURDIR)/.venv/bin:$$PATH" nice -n 10 .venv-sam/bin/sam build --beta-features --template-file template.yaml
	@ls -l .aws-sam/build/ConsumerFunction/bootstrap

test: tools lint edge build edge-dry-run fuzz-check
	cargo test --workspace --exclude sluice-edge

## ---- fuzz -----------------------------------------------------------------

# Coverage-guided fuzzing of sluice-protocol's parsers (fuzz/: cargo-fuzz layout, its own
# workspace). `make fuzz` runs every target for FUZZ_SECONDS each, one after the other;
# `make fuzz-check` (part of `make test`) builds the targets natively and replays the
# committed seeds and crash regressions through them. See docs/reliability.md.
.PHONY: fuzz fuzz-tools fuzz-check
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_SECONDS ?= 30

fuzz-tools: rust-tools
	@if ! $(CARGO_BIN)/cargo-fuzz --version 2>/dev/null | grep -q "$(CARGO_FUZZ_VERSION)"; then \
		echo "installing cargo-fuzz $(CARGO_FUZZ_VERSION) (about a minute, once)"; \
		cargo install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked; fi

fuzz: fuzz-tools
	nice -n 10 fuzz/run.sh $(FUZZ_SECONDS)

fuzz-check: rust-tools
	cd fuzz && cargo fmt -- --check
	cd fuzz && cargo clippy --all-targets -- -D warnings
	cd fuzz && cargo test

## ---- bench ----------------------------------------------------------------

bench: tools edge build .venv-bench/.installed
	@echo "edge pure path vs HMAC-SHA256 floor, native, CPU SHA extensions (the harshest floor):"
	cargo bench -p sluice-protocol --bench ingest -- --noplot
	@python3 bench/ratios.py target/criterion/edge_pure_path | tee target/bench-hw.txt
	@echo "the same with SHA-256 in software, as on wasm32 where the edge runs:"
	cargo bench -p sluice-protocol --features soft-sha --bench ingest -- --noplot
	@python3 bench/ratios.py target/criterion/edge_pure_path | tee target/bench-soft.txt
	@echo "route filters: match, and parse + match, on a Stripe event (ns per event):"
	cargo bench -p sluice-protocol --bench filter -- --noplot
	@echo
	@command -v wrk >/dev/null || (apt-get update -q && apt-get install -y -q wrk)
	@echo "edge: Sluice vs the same job as a TypeScript Worker (bench/ts-worker), both under wrangler dev, SQS/S3 stubbed (wrk, 16 connections, 5 x 5 s per Worker and case; about 5 min):"
	target/debug/sluice-edge-load --seconds 5 --repeats 5 --json target/bench-edge.json
	@echo
	@echo "consumer: the release bootstrap vs Powertools for AWS Lambda (Python) under a local Lambda Runtime API (moto, local destination), a source with 1 and with 3 destinations:"
	cargo build --release -p sluice-lambda-worker --bin bootstrap
	target/debug/sluice-consumer-bench --bootstrap target/release/bootstrap \
		--baseline '.venv-bench/bin/python -m awslambdaric handler.handler' --baseline-dir bench/powertools \
		--destinations 1,3 --repeats 5 --json target/bench-consumer.json
	@echo
	@echo "the whole local pipeline under load (moto is the bottleneck; its own ceiling is printed last):"
	target/debug/sluice-pipeline-load --events 1000
	@echo
	@echo "cost per million webhooks from list prices and the consumer figures above (docs/cost.md):"
	python3 bench/cost.py target/bench-consumer.json

clean:
	rm -rf edge/build .dev
