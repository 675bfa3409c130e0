# Every command a user or CI needs. Each target installs what it uses on first run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NODE_MAJOR := $(shell node -p "process.versions.node.split('.')[0]" 2>/dev/null)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := $(NODE_MAJOR)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := $(NODE_MAJOR)
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := $(NODE_MAJOR)

.PHONY: setup browser demo test synth bench lint sandbox-start sandbox-stop clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## Debian's Chromium for the dashboard's browser test, installed only when it is missing.
## The package lists are refreshed only when the first install attempt fails. apt-get needs
## root: run `sudo make browser` as another user.
CHROMIUM_INSTALL := apt-get install -y --no-install-recommends chromium
browser:
	@test -x /usr/bin/chromium || $(CHROMIUM_INSTALL) || { apt-get update && $(CHROMIUM_INSTALL); } \
		|| { echo "installing Chromium failed; run \`sudo make browser\`" >&2; exit 1; }

## Full deployment of the sample app (v1 then v2) through the state machine in the sandbox.
demo: setup
	$(VENV)/bin/control-plane demo

## The whole test suite: unit, functional, infra and workflow scenarios. Each test file runs
## in one worker process, because a sandbox (moto's state) is one per process; the scenario
## files are split over four test files (tests/workflow/scenario_shards.py) to share the workers.
test: setup browser
	$(PY) -m pytest -q -n auto --dist loadfile

## Synthesize the CloudFormation templates with the CDK CLI (offline). Pass CDK options in
## CDK_ARGS, for example: make synth CDK_ARGS="-c environmentsFile=environments.prod.yaml".
synth: setup node_modules/.installed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npx --no-install cdk synth --quiet $(CDK_ARGS)

## The benchmark: the current configuration against the shell scripts' baseline in the
## sandbox, with import, synth and scenario suite times (bench/README.md).
bench: setup node_modules/.installed
	$(PY) bench/run.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

sandbox-start: setup
	$(VENV)/bin/control-plane sandbox start

sandbox-stop: setup
	$(VENV)/bin/control-plane sandbox stop

clean:
	rm -rf cdk.out .cdk-staging .sandbox .pytest_cache
