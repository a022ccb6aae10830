# One command per habit. Every target creates what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
STAMP := $(VENV)/.installed
# Where the suite's processes keep their bytecode. On a machine that sets
# PYTHONDONTWRITEBYTECODE, every process the suite starts (six xdist workers, each CLI
# and lab child) would compile the project's modules and rewrite the tests' asserts
# again: about 4 s of CPU per worker (docs/BENCHMARKS.md). The cache goes under .venv,
# outside the source tree, which such a setting keeps clean.
PYCACHE := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(CURDIR)/$(VENV)/pycache

.PHONY: test fuzz demo demo-terminal lint build bench venv clean function node-check
.DEFAULT_GOAL := test

venv: $(STAMP)

# uv (from PyPI, into the venv) resolves and installs in parallel: about half of pip's time
# from a clean clone, and no pip self-upgrade first. The venv gets no pip of its own: nothing
# here runs it, and ensurepip's copy took 6 s of a clean clone's 8 s to get uv (3.9 s with
# the interpreter's pip and --python, pip >= 22.3); an older or missing pip falls back to
# ensurepip. No --compile-bytecode: every target
# that runs Python here runs it under $(PYCACHE), whose prefix Python reads instead of the
# __pycache__ folders beside the sources, so the 8 000 files uv would compile (6 s) would
# never be read; each process compiles what it imports into the prefix, once.
# A collection then writes pytest's assert-rewritten test modules (its own .pyc files, which
# compileall does not make): otherwise the six workers of a first `make test` each rewrite
# every test module, about 6 s of CPU apiece. Two collections at once, the unit tests and
# the rest, each rewriting its half: 6 s instead of 10 s on two cores. Beside them,
# tests/bytecode.py compiles what only the suite's running processes import (moto's server
# and CloudFormation, cfn-lint): a first make test otherwise compiled it in several
# processes at once.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(PY) install -q --disable-pip-version-check 'uv>=0.5,<1' \
		|| { $(PY) -m ensurepip -q && $(PY) -m pip install -q --disable-pip-version-check 'uv>=0.5,<1'; }
	$(VENV)/bin/uv pip install -q --python $(PY) -e '.[dev]'
	$(PYCACHE) $(PY) -m compileall -q -j 0 backfill_worker edge_origin_request edgefill prewarm_worker shared tests
	@set -e; $(PYCACHE) $(PY) -m pytest -q -p no:cacheprovider -n0 --collect-only tests/unit > /dev/null & \
		unit=$$!; \
		$(PYCACHE) $(PY) -m tests.bytecode & \
		warm=$$!; \
		$(PYCACHE) $(PY) -m pytest -q -p no:cacheprovider -n0 --collect-only tests --ignore=tests/unit > /dev/null; \
		wait $$unit; wait $$warm
	@touch $(STAMP)

# The CloudFront Function's tests run it in Node.js: without node, stop and say so (a
# skipped test would pass a suite that never ran the code the distribution runs).
node-check:
	@command -v node >/dev/null 2>&1 || { echo "make test: node not found; install Node.js 18 or later (apt-get install nodejs, brew install node, or https://nodejs.org)" >&2; exit 1; }

test: node-check $(STAMP)
	$(PYCACHE) $(PY) -m pytest -q $(PYTEST_ARGS)

# The Hypothesis properties at four times their deep counts (tests/budget.py); make test runs
# a quarter of the deep count to stay within three minutes on two cores.
fuzz: $(STAMP)
	EDGEFILL_FUZZ=1 $(PYCACHE) $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests/unit

demo: $(STAMP)
	$(PYCACHE) $(VENV)/bin/edgefill demo

# CI's demo: the whole of it in a pseudo-terminal of 80 columns, as an operator sees it; the
# story only, every expectation met (tests/demo_terminal.py).
demo-terminal: $(STAMP)
	$(PYCACHE) $(PY) -m tests.demo_terminal

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	@set -e; for script in bench/bench_*.py; do \
		echo "== $$script"; $(PYCACHE) $(PY) $$script; done

# The SAM CLI lives in its own virtual environment: its pins clash with the
# test environment's (moto, cfn-lint).
$(SAM):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --upgrade pip
	$(SAM_VENV)/bin/pip install -q 'aws-sam-cli>=1.170,<2'  # Fn::GetStackOutput: cfn-lint >= 1.58

# Two stacks, each validated and built into its own directory: the edge stack
# (template.yaml, us-east-1) and the regional stack (regional.yaml, linted for one of its
# regions). --build-in-source: SAM would otherwise copy the whole checkout (virtual
# environments included) to a scratch directory once per function before calling the
# build-* targets. The artifact check then zips each artifact and fails if the edge one is
# too big or holds anything besides its package and the light parts of shared/.
# `sam deploy --config-env edge|regional` (samconfig.toml) deploys what this built.
build: $(SAM)
	@$(PYTHON) .ci/inline_function.py --check
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --template template.yaml --region us-east-1
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --template regional.yaml --region ap-southeast-1
	SAM_CLI_TELEMETRY=0 $(SAM) build --config-env edge
	SAM_CLI_TELEMETRY=0 $(SAM) build --config-env regional
	$(PYTHON) .ci/check_artifacts.py .aws-sam/build-edge .aws-sam/build-regional

# The viewer-request function is deployed inline (AWS::CloudFront::Function takes no
# file): copy edge_viewer_request/select_origin.js into template.yaml after editing it.
function:
	$(PYTHON) .ci/inline_function.py

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache

# ---- per-function artifacts (called by `sam build`, BuildMethod: makefile) ----
# Each artifact holds its own package, the parts of shared/ it imports, and its
# third-party dependencies built for Lambda (manylinux x86_64, CPython 3.13),
# so `sam build` needs neither Python 3.13 nor Docker on this machine.
# pip from the SAM environment when it exists (make build creates it), else $(PYTHON)'s.
LAMBDA_PYTHON ?= $(if $(wildcard $(SAM_VENV)/bin/python),$(SAM_VENV)/bin/python,$(PYTHON))
LAMBDA_PIP := $(LAMBDA_PYTHON) -m pip install --quiet --no-compile --disable-pip-version-check \
	--platform manylinux2014_x86_64 --implementation cp --python-version 3.13 \
	--only-binary=:all: --upgrade

# The edge artifact installs no third-party package: boto3 comes with the runtime,
# and every KB is paid on each cold start at every edge.
EDGE_SHARED := __init__.py messages.py keys.py queues.py redact.py

build-EdgeOriginRequestFunction:
	mkdir -p $(ARTIFACTS_DIR)/edge_origin_request $(ARTIFACTS_DIR)/shared
	cp edge_origin_request/*.py $(ARTIFACTS_DIR)/edge_origin_request/
	cd shared && cp $(EDGE_SHARED) $(ARTIFACTS_DIR)/shared/

# Workers take all of shared/ (files and any subpackage), never a stale __pycache__.
build-BackfillWorkerFunction:
	mkdir -p $(ARTIFACTS_DIR)/backfill_worker $(ARTIFACTS_DIR)/shared
	cp -R shared/. $(ARTIFACTS_DIR)/shared/
	cp -R backfill_worker/. $(ARTIFACTS_DIR)/backfill_worker/
	$(LAMBDA_PIP) --target $(ARTIFACTS_DIR) -r backfill_worker/requirements.txt
	rm -rf $(ARTIFACTS_DIR)/bin  # console scripts of dependencies: never run in Lambda
	find $(ARTIFACTS_DIR) -name __pycache__ -prune -exec rm -rf {} +

# The sweep is packaged with the backfill worker (its handler is backfill_worker/sweep.py).
build-RevalidationSweepFunction: build-BackfillWorkerFunction

build-PrewarmWorkerFunction:
	mkdir -p $(ARTIFACTS_DIR)/prewarm_worker $(ARTIFACTS_DIR)/shared
	cp -R shared/. $(ARTIFACTS_DIR)/shared/
	cp -R prewarm_worker/. $(ARTIFACTS_DIR)/prewarm_worker/
	$(LAMBDA_PIP) --target $(ARTIFACTS_DIR) -r prewarm_worker/requirements.txt
	rm -rf $(ARTIFACTS_DIR)/bin  # console scripts of dependencies: never run in Lambda
	find $(ARTIFACTS_DIR) -name __pycache__ -prune -exec rm -rf {} +
