# provision: set-up, tests and the offline quickstart. Everything runs from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser test lint typecheck unit quickstart schema bench clean

# torch first, by exact version: a plain "torch" requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Headless Chromium for the search page's tests: Debian's packages (no browser download), installed
# only when missing; elsewhere install Chromium and chromedriver yourself (or set CHROMIUM, CHROMEDRIVER).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		echo "installing chromium and chromium-driver (apt)"; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "warning: no chromium/chromedriver and no apt-get: the browser tests will fail" >&2; fi

lint: setup
	$(BIN)/ruff check provisioning es_sandbox synthetic_shapes tests bench models examples ansible
	$(BIN)/ruff format --check provisioning es_sandbox synthetic_shapes tests bench models examples ansible

typecheck: setup
	$(BIN)/mypy provisioning es_sandbox synthetic_shapes
	MYPYPATH=ansible $(BIN)/mypy -p ansible_collections.provision.elasticsearch

test: setup browser lint typecheck
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/pytest -q

schema: setup
	$(BIN)/provision schema > schema/stack.schema.json
	$(BIN)/provision schema --plan > schema/plan.schema.json

quickstart: setup
	SERVE="$(SERVE)" PATH="$(CURDIR)/$(BIN):$$PATH" examples/quickstart/run.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
