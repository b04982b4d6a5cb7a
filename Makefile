# The Makefile is the interface: CI calls the same targets (.ci/run → make lint test).
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
RUN := $(UV) run --frozen
PYTEST_ARGS ?=

export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv
# The console's browser tests drive Debian's Chromium; nothing downloads a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
CONSOLE_SOURCES := $(shell find console/src console/index.html console/vite.config.ts console/tsconfig.json -type f 2>/dev/null)

.PHONY: help install console chromium run test test-unit bench lint fmt schemas migration topics kafka-up kafka-down kafka-status \
	db-up db-down db-status manifests demo clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(UV):
	@command -v python3 >/dev/null || { echo "python3 (3.11+) is required"; exit 1; }
	@python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
		|| { echo "Python 3.11+ is required, found $$(python3 --version)"; exit 1; }
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV) console chromium ## Create .venv from uv.lock (all services, dev tools), fetch the Kafka jars and Keycloak, build the console, install promtool
	$(UV) sync --frozen --all-packages
	@# kcat: an independent Kafka client the ACL tests check the broker with (Debian/Ubuntu package)
	@command -v kcat >/dev/null || { command -v apt-get >/dev/null && (apt-get update -qq && apt-get install -y -qq kcat) >/dev/null \
		|| echo "kcat is not installed (apt-get install kcat); the kcat ACL tests need it"; }
	$(RUN) fundtrail-devstack kafka jars
	@# promtool checks deploy/monitoring (tests/test_monitoring.py); Debian ships it in package prometheus.
	@command -v promtool >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends prometheus >/dev/null; } \
		|| echo "promtool not found: install Prometheus 2.x (Debian/Ubuntu: apt-get install prometheus)"
	$(RUN) fundtrail-devstack keycloak dist

console: console/dist/index.html ## Build the web console (npm ci + vite build; skipped when up to date)

console/node_modules/.package-lock.json: console/package-lock.json
	@command -v npm >/dev/null || { echo "Node.js 20.19+ with npm is required to build the console"; exit 1; }
	cd console && npm ci --no-audit --no-fund

console/dist/index.html: console/node_modules/.package-lock.json console/package.json $(CONSOLE_SOURCES)
	cd console && npm run build

chromium: ## Debian's Chromium and CJK fonts for the console's browser tests (apt, as root)
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium fonts-noto-cjk)

run: install ## Start Kafka, PostgreSQL and the three services, load the demo, print where to look
	$(RUN) fundtrail-devstack run

test: install ## Run the whole suite (starts its own Kafka and PostgreSQL on free ports)
	$(RUN) pytest $(PYTEST_ARGS)

test-unit: install ## Only the tests that need no broker or database
	$(RUN) pytest -m "not integration and not e2e" $(PYTEST_ARGS)

bench: install ## Run the benchmarks and write docs/benchmarks.md
	$(RUN) fundtrail-devstack bench --out docs/benchmarks.md

lint: install ## ruff + mypy + schema drift check
	$(RUN) ruff check .
	$(RUN) mypy schemas/src packages/verify/src packages/publish/src packages/runtime/src packages/demo/src deploy/devstack/src services/fund-tracker/src services/compliance/src services/gateway/src witness/src
	$(RUN) fundtrail schemas --check

fmt: install ## Fix what ruff can fix
	$(RUN) ruff check --fix .

schemas: install ## Export JSON Schema files and golden examples from the models
	$(RUN) fundtrail schemas

migration: install ## Generate the next alembic revision from the models: make migration MESSAGE="..."
	$(RUN) fundtrail-devstack migration "$(MESSAGE)"

manifests: install ## Regenerate deploy/k8s topic and user (ACL) resources from the registries
	$(RUN) python deploy/k8s/gen_topics.py

topics: install ## Create the registry's topics on the local broker (as the operator when it has SASL)
	@if [ -f .devstack/kafka/users/operator.password ] && [ -z "$${KAFKA_SECURITY_PROTOCOL:-}" ]; then \
		export KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT KAFKA_SASL_USERNAME=operator \
			KAFKA_SASL_PASSWORD_FILE=$(CURDIR)/.devstack/kafka/users/operator.password; fi; \
	KAFKA_BOOTSTRAP_SERVERS=$${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092} $(RUN) fundtrail topics

kafka-up: install ## Start the local Kafka broker (127.0.0.1:9092)
	$(RUN) fundtrail-devstack kafka up
kafka-down: $(UV) ## Stop the local Kafka broker
	$(RUN) fundtrail-devstack kafka down
kafka-status: $(UV)
	$(RUN) fundtrail-devstack kafka status

db-up: install ## Start the local PostgreSQL (127.0.0.1:55432) and apply migrations
	$(RUN) fundtrail-devstack db up
	DATABASE_URL=$${DATABASE_URL:-postgresql+psycopg://fundtrail@127.0.0.1:55432/fundtrail} $(RUN) fundtrail db upgrade
db-down: $(UV) ## Stop the local PostgreSQL
	$(RUN) fundtrail-devstack db down
db-status: $(UV)
	$(RUN) fundtrail-devstack db status

demo: install ## Write a generated demo year to out/demo.jsonl
	mkdir -p out && $(RUN) fundtrail demo generate --seed 7 --size 1 --out out/demo.jsonl --expected out/demo-expected.json

clean: ## Remove local state (stops nothing: run kafka-down / db-down first)
	rm -rf .devstack out .pytest_cache .mypy_cache .ruff_cache
