# yolopipe: every command a user or CI runs. `make demo` runs the main job, `make test` the tests.
# Both create what they need (.venv for the project, .venv-sam for the SAM CLI, which pins its own
# boto3 and click) on first use.

PYTHON ?= python3.11
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
# sam build needs an interpreter named like the Lambda runtime on PATH.
PY313_DIR := $(shell ls -d $$(pyenv root 2>/dev/null)/versions/3.13.*/bin 2>/dev/null | head -n 1)
export PATH := $(if $(PY313_DIR),$(PY313_DIR):,)$(PATH)
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help install demo deploy test unit training integration lint cfn-lint sam-validate sam-build render clean

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q aws-sam-cli
	touch $@

install: $(VENV)/.installed $(SAM_VENV)/.installed  ## create .venv and .venv-sam

demo: $(VENV)/.installed  ## the main job: the whole event-driven run on this machine (emulator, trigger, pipeline, Slack + email), no AWS account
	$(PY) -m pipeline.demo

deploy: $(VENV)/.installed $(SAM_VENV)/.installed  ## sam build && sam deploy --guided (needs AWS credentials)
	$(SAM) build
	$(SAM) deploy --guided

test: install lint unit training integration sam-validate sam-build  ## everything CI runs

lint: $(VENV)/.installed cfn-lint  ## ruff, mypy and cfn-lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

unit: $(VENV)/.installed  ## fast tests: moto, no network
	$(VENV)/bin/pytest -q tests/unit

training: $(VENV)/.installed  ## real Ultralytics training on tiny generated data (CPU)
	$(VENV)/bin/pytest -q tests/training

integration: $(VENV)/.installed  ## local mode end to end
	$(VENV)/bin/pytest -q tests/integration

cfn-lint: $(VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml

sam-validate: $(SAM_VENV)/.installed
	$(SAM) validate --lint --region $(AWS_DEFAULT_REGION)

sam-build: $(SAM_VENV)/.installed $(VENV)/.installed
	$(SAM) build

clean:
	rm -rf .aws-sam build dist runs .pytest_cache .mypy_cache .ruff_cache

render: $(VENV)/.installed  ## write the pipeline definition JSON (placeholders for bucket, role, region, code) to build/
	$(PY) -m pipeline.render --output build/pipeline_definition.json

local-run: $(VENV)/.installed  ## local mode on your dataset: make local-run DATASET=./my-dataset
	$(PY) -m pipeline.local run $(DATASET)

local-serve: $(VENV)/.installed  ## keep the local stack running on 127.0.0.1:5000 for `yolopipe ... --local`
	$(PY) -m pipeline.local serve

bench-local: $(VENV)/.installed  ## benchmark 6: the main command's wall time by phase (QUICK=1 for the smoke run)
	$(PY) bench/local_e2e.py $(if $(QUICK),--quick,)
