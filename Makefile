# vector-operator: developer entry points (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
DEVENV_DIR  := .devenv
# The built kubectl, helm and control-plane binaries are linked here by cluster-up; put them first.
export PATH := $(CURDIR)/$(DEVENV_DIR)/bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONPATH := $(CURDIR)/devenv
# Pytest options for `make test`, e.g. make test PYTEST_ARGS='-k node_agent -x'
PYTEST_ARGS ?=

.PHONY: help install system-packages binaries s3-server cluster-up cluster-down cluster-status demo demo-down test test-unit lint clean \
	manifests manifests-check bench test-compat bench-operator bench-tune bench-migration bench-sync \
	bench-backup bench-scale chaos

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS=":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@echo ">>> creating $(VENV) and installing vector-operator with its dev tools (first time: torch and" \
	      "sentence-transformers are large downloads, a few minutes; pip's cache makes later runs fast)"
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e '.[dev,compat]'
	touch $@

install: $(VENV)/.installed ## a .venv with the package, its dependencies and the dev tools

system-packages: ## Debian's postgresql and prometheus (promtool), which the tests run; installs what is missing
	devenv/system-packages.sh

binaries: s3-server ## build (once, then cached in ~/.cache/vector-operator) kubectl, helm, the control plane and SeaweedFS
	devenv/build.sh

s3-server: ## build (once, then cached in ~/.cache/vector-operator) SeaweedFS, the tests' S3 server
	devenv/build-seaweedfs.sh

cluster-up: install ## start the local control plane + node agent; writes .devenv/kubeconfig
	$(PY) -m localcluster up

cluster-down: demo-down ## stop exactly the processes cluster-up started and remove their state
	@if [ -x $(PY) ]; then $(PY) -m localcluster down; else echo "no .venv: nothing was started by cluster-up"; fi

cluster-status: install ## show whether the local cluster runs, and where
	$(PY) -m localcluster status

demo: cluster-up ## the quickstart end to end: Milvus Lite + operator + a 200-row migration, then its status
	$(PY) -m localcluster.demo up

demo-down: ## stop the demo's operator and Milvus Lite (the cluster keeps running)
	@if [ -x $(PY) ]; then $(PY) -m localcluster.demo down; fi

manifests: install ## regenerate crds/ and the Helm chart's CRD copies from the pydantic models
	$(PY) -m vector_operator.api.manifests crds charts/vector-operator/crds

manifests-check: install ## fail when the committed CRDs differ from what the models generate
	@generated=$$(mktemp -d); trap 'rm -rf "$$generated"' EXIT; \
	$(PY) -m vector_operator.api.manifests "$$generated/crds" "$$generated/chart" >/dev/null; \
	if ! diff -r "$$generated/crds" crds || ! diff -r -x 'kopf.dev_*' "$$generated/chart" charts/vector-operator/crds; then \
	  echo "The committed CRDs differ from the models in operator/vector_operator/api: run make manifests" >&2; \
	  exit 1; \
	fi

lint: install manifests-check ## ruff, mypy (strict), import-linter's layer contracts and manifests-check
	$(PY) -m ruff check operator devenv tests bench
	$(PY) -m ruff format --check operator devenv tests bench
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

test-unit: install ## unit tests only (no cluster, no Milvus)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test: install system-packages binaries lint image ## the whole suite, what CI runs: lint, unit, integration, e2e, compat, the image in the cluster
	$(PY) -m pytest $(PYTEST_ARGS)

test-compat: install binaries ## the operator against a real Milvus standalone 2.3 (about 30 s)
	$(PY) -m pytest tests/compat $(PYTEST_ARGS)

bench: install ## worker throughput vs bare encode and a naive loop (5,000 texts, SQLite -> Milvus Lite)
	$(PY) bench/worker_throughput.py $(BENCH_ARGS)

bench-tune: install ## re-index copy vs embedding rate, and a 20-trial tuning study vs the seed's defaults (20,000 MiniLM vectors)
	$(PY) bench/index_tuning.py $(BENCH_ARGS)

bench-operator: install binaries ## VectorCollection apply -> Ready latency (50 at once) and operator peak RSS
	$(PY) bench/vectorcollection_readiness.py $(BENCH_ARGS)

bench-migration: install binaries ## migration (10,000 rows, SQLite -> Milvus Lite, real Jobs) vs bare encode: migration/encode and where the time went
	$(PY) bench/migration_throughput.py $(BENCH_ARGS)

bench-sync: install binaries ## continuous sync: 20 changes/s for 5 min into a 20,000-row table; lag commit -> searchable p50/p95, sync/encode
	$(PY) bench/sync_lag.py $(BENCH_ARGS)

bench-backup: install binaries ## backup export, verify and import (20,000 vectors, to a directory and to S3) vs embedding the same rows
	$(PY) bench/backup_rates.py $(BENCH_ARGS)

bench-scale: install binaries ## 500 VectorCollections at once; a 100,000-batch plan's first 1,000 Jobs (API requests per Job, sizes, RSS); ten plans at once vs one (about 25 minutes)
	$(PY) bench/plan_scale.py $(BENCH_ARGS)

chaos: install binaries ## migrations of awkward rows while seeded faults hit the operator, a worker, Milvus, the API server, the node agent; invariants table (CHAOS_ARGS='--seed N' replays)
	$(PY) -m chaos $(CHAOS_ARGS)

.PHONY: image image-base
image: system-packages ## the container image (buildah, no Docker, nothing pulled): ghcr.io/vectors-aios/vector-operator:<version>
	devenv/image/build.sh

image-base: system-packages ## the Dockerfile's base, debian:bookworm-slim, bootstrapped from Debian's packages (mmdebstrap)
	devenv/image/base.sh

clean: cluster-down ## remove the venv and local state (the binary cache in ~/.cache stays)
	rm -rf $(VENV) $(DEVENV_DIR) .pytest_cache .mypy_cache .ruff_cache
