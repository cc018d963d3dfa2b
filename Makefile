# Everything a newcomer needs, from a fresh machine with Python 3.11+ and Node.js 20+:
#   make synth   synthesize every environment into cdktf.out/ (no AWS account needed)
#   make test    lint, type-check and run the whole test suite, including the checkov gate
# CDK=cdktn runs synth and pytest on CDK Terrain (the maintained cdktf fork) from .venv-cdktn, installed
# from the hash-pinned requirements-cdktn.txt (+ requirements-cdktn-dev.txt for tests); the default
# CDK=cdktf uses Pipfile.lock's .venv. lint and typecheck always run in .venv (they check our code).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
PIPENV_VERSION := 2026.10.3
TOOLS := .venv-tools
PIPENV := $(TOOLS)/bin/pipenv

export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_NOSPIN := 1
export PIPENV_YES := 1
export PIPENV_IGNORE_VIRTUALENVS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# jsii warns loudly on Node 20 (end of life); the bindings still work with it. Prefer Node 22+.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

LINTED := stacks lambdas main.py tests tools
TYPED := stacks lambdas main.py

CDK ?= cdktf
ifeq ($(CDK),cdktf)
CDK_VENV := .venv/.synced
CDK_TEST_VENV := .venv/.synced
CDK_RUN := $(PIPENV) run
else ifeq ($(CDK),cdktn)
CDK_VENV := .venv-cdktn/.installed
CDK_TEST_VENV := .venv-cdktn/.dev-installed
CDK_RUN := TAP_CDK=cdktn PATH="$(CURDIR)/.venv-cdktn/bin:$$PATH"
else
$(error CDK=$(CDK): expected cdktf or cdktn)
endif

.PHONY: help synth test bench simulate deploy-local smoke lint typecheck pytest deps checkov cdktn eject check-tools clean

help:
	@echo "make synth   - synthesize every environment (ENVIRONMENT_SUFFIX=pr123 adds an ad-hoc one)"
	@echo "make test    - ruff, mypy and the whole pytest suite (synthesis, terraform validate, checkov)"
	@echo "make bench   - benchmarks with targets (writes BENCHMARKS.md; not part of make test)"
	@echo "make simulate ARGS='...' - run the data path locally on moto (python -m tools.local.simulate --help)"
	@echo "make deploy-local - terraform plan/apply/re-plan/destroy of every environment against moto's server"
	@echo "make synth CDK=cdktn / make test CDK=cdktn - the same on CDK Terrain (.venv-cdktn)"
	@echo "make eject ENV=dev OUT=DIR - plain Terraform folders (no CDK, no Python) for one environment"
	@echo "make smoke ENV=dev - smoke test of a deployed environment (after cdktf deploy; see docs/operations.md)"
	@echo "make clean   - remove virtual environments and build output"

check-tools:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required, found " + sys.version)'
	@command -v node >/dev/null || { echo "Node.js 20+ is required (cdktf runs on the jsii runtime)"; exit 1; }
	@node -e 'process.exit(parseInt(process.versions.node) >= 20 ? 0 : (console.error("Node.js 20+ is required, found " + process.version), 1))'

$(PIPENV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet pipenv==$(PIPENV_VERSION)

.venv/.synced: Pipfile.lock | $(PIPENV)
	$(PIPENV) sync --dev
	@touch $@

.venv-checkov/.installed: requirements-checkov.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet -r requirements-checkov.txt
	@touch $@

.venv-cdktn/.installed: requirements-cdktn.txt
	$(PYTHON) -m venv .venv-cdktn
	.venv-cdktn/bin/pip install --quiet --require-hashes --no-deps -r requirements-cdktn.txt
	@touch $@

.venv-cdktn/.dev-installed: requirements-cdktn-dev.txt .venv-cdktn/.installed
	.venv-cdktn/bin/pip install --quiet --require-hashes --no-deps -r requirements-cdktn-dev.txt
	@touch $@

deps: check-tools .venv/.synced
checkov: .venv-checkov/.installed
cdktn: check-tools .venv-cdktn/.installed

synth: check-tools $(CDK_VENV)
	$(CDK_RUN) python main.py

bench: deps
	$(PIPENV) run python -m tools.bench --output BENCHMARKS.md $(ARGS)

simulate: deps
	$(PIPENV) run python -m tools.local.simulate $(ARGS)

deploy-local: deps
	$(PIPENV) run python -m tools.local.deploy_local $(ARGS)

ENV ?= dev
smoke: deps
	$(PIPENV) run python -m tools.smoke --env $(ENV) $(ARGS)

lint: deps
	$(PIPENV) run ruff check $(LINTED)
	$(PIPENV) run ruff format --check $(LINTED)

typecheck: deps
	$(PIPENV) run mypy $(TYPED)

# The cdktf/cdktn equivalence gate synthesizes with both, so both environments are installed.
pytest: deps checkov cdktn $(CDK_TEST_VENV)
	$(CDK_RUN) pytest

test: lint typecheck pytest

OUT ?=
eject: check-tools $(CDK_VENV)
	@test -n "$(OUT)" || { echo "usage: make eject ENV=<environment> OUT=<folder>"; exit 2; }
	$(CDK_RUN) python -m tools.eject --env $(ENV) --out $(OUT) $(ARGS)

clean:
	rm -rf .venv .venv-tools .venv-checkov .venv-cdktn .build cdktf.out .mypy_cache .pytest_cache .ruff_cache
