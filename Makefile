# scimgate developer commands. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help run build test check services browser lint fmt unit compliance deploy-check openapi schemathesis openapi-client fuzz load load-activity fault bench bench-peers clean

help: ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

run: ## Run the gateway on 127.0.0.1:8080 with the embedded SQLite database (scimgate.db)
	$(CARGO) build --release -p scimgate-edge
	./target/release/scimgate serve

build: ## Build the release binary target/release/scimgate
	$(CARGO) build --release -p scimgate-edge

test: services browser lint deploy-check unit compliance schemathesis openapi-client ## The whole suite: formatting, lints, deployment checks, unit + integration tests on SQLite and PostgreSQL, compliance, the OpenAPI document
	@echo "make test: all checks passed"

services: ## Report which backing services the suite can use (fails under CI=true if one is missing)
	@scripts/check-services.sh

browser: ## Install Debian's chromium and chromium-driver for the browser test if missing (fails under CI=true without them)
	@scripts/setup-browser.sh

lint: ## cargo fmt --check, clippy with warnings denied, and the Rust versions against Cargo.lock
	scripts/check-rust-version.py
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: ## Unit, store and HTTP integration tests (SQLite and PostgreSQL)
	$(CARGO) test --workspace

compliance: ## scim2-tester against a live gateway on SQLite and PostgreSQL
	scripts/compliance.sh all

openapi: ## Validate openapi/scimgate.yaml against the OpenAPI specification
	scripts/schemathesis.sh validate

schemathesis: ## The OpenAPI document validated, then schemathesis against a live gateway on SQLite and PostgreSQL
	scripts/schemathesis.sh all

openapi-client: ## A Python client generated from the OpenAPI document (openapi-python-client), driving a live gateway on SQLite and PostgreSQL
	scripts/openapi-client.sh all

deploy-check: ## Render the Kubernetes overlays and the Helm chart; schema, invariant, alert-rule and checkov checks of them and the Dockerfile
	scripts/check-deploy.sh

fuzz: ## Fuzz crates/proto (filter, PATCH path, PATCH application), FUZZ_SECONDS (default 60) per target; by hand, not in `test`
	scripts/fuzz.sh

load: ## Mixed IdP workload on PostgreSQL and SQLite: requests/s, p50/p99, memory (WORKLOAD_SECONDS, WORKLOAD_CLIENTS); by hand
	$(CARGO) bench -p scimgate-edge --bench workload -- load

load-activity: ## The workload with the activity log on and off, alternately, and the throughput it keeps (docs/benchmarks.md); by hand
	$(CARGO) bench -p scimgate-edge --bench workload -- activity

fault: ## The workload at a steady rate while Redis stops and PostgreSQL restarts: no lost write, only 503s, quick recovery; by hand
	$(CARGO) bench -p scimgate-edge --bench workload -- fault

bench: ## Large groups and authentication benchmarks (docs/benchmarks.md); by hand
	$(CARGO) bench -p scimgate-edge --bench large_groups
	scripts/bench-auth

bench-peers: ## scimgate beside BoxyHQ Polis and scim2-server (installed into target/peers), W1-W4 on PostgreSQL and SQLite, with ratios; by hand
	scripts/bench-peers compare

fmt: ## Format the code
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
