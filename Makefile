# One entry point for newcomers, CI and operators. Tools are installed into git-ignored
# project folders (.venv, node_modules) from pinned project files.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
RECORDINGS := target/contract-recordings.jsonl

.PHONY: help deps chromium dev test fuzz fmt lint build deploy bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The console's browser test drives Debian's Chromium (Playwright cannot download its own here).
# CI runs as root on a fresh machine; elsewhere, sudo if it is there.
chromium: ## install Debian's Chromium for the console's browser test, if it is missing
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Debian's chromium (the console's browser test) ..."; \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; \
	fi

deps: node_modules/.installed $(VENV)/.installed ## install DynamoDB Local and the Python tools

dev: ## the whole service on localhost (DynamoDB Local, Graph API stub, functions); Ctrl-C or SIGTERM stops it
	tools/dev.sh

fmt: ## format the code
	cargo fmt --all

lint: ## rustfmt and clippy, warnings are errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test: deps chromium lint ## everything CI checks: lint, all tests (DynamoDB Local is started by the tests), contract fuzzing
	TZ=UTC node --test console/test/
	rm -f $(RECORDINGS)
	CONTRACT_RECORDINGS=$(CURDIR)/$(RECORDINGS) cargo test --workspace
	$(PY) tools/check_openapi.py openapi.yaml $(RECORDINGS)
	tools/fuzz.sh
	tools/check-template.sh

fuzz: deps ## contract fuzzing alone: the service as `make dev` runs it, schemathesis against openapi.yaml
	tools/fuzz.sh

build: deps ## sam build for this machine's CPU (x86_64): the Lambda zips, as a deploy builds them
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} sam build --parameter-overrides Architecture=x86_64

deploy: build ## sam deploy of the default (dev) environment; `sam deploy --config-env prod` for prod
	SAM_CLI_TELEMETRY=0 sam deploy

bench: deps ## cold starts, warm latency, peak RSS and binary size of the release binaries vs a hello-world floor, and each of our pieces vs the maintained code
	tools/bench-variants.sh
	cargo build --release -p create -p list -p revoke -p webhook -p send -p messages -p webhooks -p events -p phone -p reply -p console -p floor
	cargo run --release -p e2e --example bench
	cargo run --release -p e2e --example bench-events

clean: ## remove build outputs
	cargo clean
	rm -rf .aws-sam
