# Developer entry points. Everything runs from the project's virtualenv, created on demand.
SHELL := /bin/bash
.DEFAULT_GOAL := check

PYTHON ?= python3
VENV ?= .venv
PY = $(VENV)/bin/python
SAM = $(VENV)/bin/sam
STAMP = $(VENV)/.installed-dev
REGION ?= us-east-1
PORT ?= 3000
AWS_PORT ?= 5000

# Local tools never talk to AWS: a region for the validators, no telemetry.
export AWS_DEFAULT_REGION ?= $(REGION)
export SAM_CLI_TELEMETRY = 0

# `sam build` needs a Python of the runtime's version (3.12) on PATH. Prefer one that runs;
# else a pyenv installation of 3.12 (a pyenv shim alone does not count).
PY312_PATH := $(shell \
  if python3.12 --version >/dev/null 2>&1; then echo "$$PATH"; exit 0; fi; \
  root="$$(pyenv root 2>/dev/null)"; \
  for dir in "$$root"/versions/3.12*/bin; do \
    if [ -x "$$dir/python3.12" ]; then echo "$$dir:$$PATH"; exit 0; fi; \
  done; \
  echo "$$PATH")

.PHONY: lock install node-deps test test-fast lint typecheck validate-config config validate-template check build demo bench serve webhook replay rebuild preview calibrate inbox

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install -c constraints.txt -e '.[dev]'
	touch $@

install: $(STAMP) ## create the virtualenv and install the package with its dev tools

NODE_DEPS = tests/e2e/node/node_modules/.package-lock.json

$(NODE_DEPS): tests/e2e/node/package.json tests/e2e/node/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the Segment Node SDK test: install Node.js >= 18"; exit 1; }
	npm ci --prefix tests/e2e/node --no-audit --no-fund
	touch $@

# The browser test's packages: analytics.js, RudderStack's SDK, playwright-core (which never
# downloads a browser: the test drives Debian's chromium).
BROWSER_DEPS = tests/e2e/browser/node_modules/.package-lock.json

$(BROWSER_DEPS): tests/e2e/browser/package.json tests/e2e/browser/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the browser test: install Node.js >= 20"; exit 1; }
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/e2e/browser --no-audit --no-fund
	touch $@

node-deps: $(NODE_DEPS) $(BROWSER_DEPS) ## the SDKs the e2e tests drive: Segment's Node SDK, the browser test's packages (npm ci)

# One pytest-xdist worker per core; a file's tests stay on one worker (--dist loadfile), so a
# module's local stack and the e2e servers start once. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= auto

test: install node-deps ## the whole test suite on every core, slowest tests and total time at the end (pytest exits non-zero when no test ran)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

test-fast: install ## the suite without the tests marked slow (bench, demo, e2e, the 2,000-contact cost test)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not slow"

lint: install ## ruff, the layer package's imports (no upward import, no circle: python -m local.layers; docs/DESIGN.md "Layout"), the evidence state machine against its function (python -m local.statemachine --check)
	$(VENV)/bin/ruff check .
	$(PY) -m local.layers
	$(PY) -m local.statemachine --check

typecheck: install ## mypy on the layer, local/ and bench/ (pyproject.toml lists them)
	$(PY) -m mypy

validate-config: install ## the shipped rules files, and that config/compiled.json is up to date with them
	$(PY) -m leadscore.rulesfiles validate config

config: install ## after editing config/*.yaml: validate the rules files and write config/compiled.json
	$(PY) -m leadscore.rulesfiles validate --write config

validate-template: install ## sam validate --lint and cfn-lint
	$(SAM) validate --lint --template-file template.yaml --region $(AWS_DEFAULT_REGION)
	$(VENV)/bin/cfn-lint template.yaml

check: lint typecheck validate-config validate-template test ## everything CI runs

lock: install ## re-pin constraints.txt to the virtualenv (after changing pyproject.toml), then shared/requirements.txt (the layer) from it
	{ echo '# Exact versions CI and developers install (make install uses it as pip constraints).'; \
	  echo '# Refresh after changing pyproject.toml: make lock'; \
	  $(PY) -m pip freeze --exclude-editable | grep -v -E '^(leadscore|py-spy)=='; } > constraints.txt
	$(PY) -m local.lock

build: install ## sam build (the layer and the functions, for arm64), then their bytecode for Python 3.12
	PATH="$(PY312_PATH)" $(SAM) build --template-file template.yaml
	@# /opt and /var/task are read-only in Lambda: without shipped bytecode every cold start
	@# compiles the whole layer (collect's first invocation ~2x the boto3 floor instead of ~1.3x).
	@# unchecked-hash: never compared with the sources' mtimes; -s/-p: tracebacks name the paths Lambda uses.
	@for dir in .aws-sam/build/*/; do \
	  case "$$(basename "$$dir")" in *Layer) dest=/opt ;; *) dest=/var/task ;; esac; \
	  PATH="$(PY312_PATH)" python3.12 -m compileall -q -j 0 --invalidation-mode unchecked-hash \
	    -s "$$dir" -p "$$dest" "$$dir" >/dev/null || exit 1; \
	done; echo "bytecode (Python 3.12) written into .aws-sam/build"

demo: install ## replay the sample journeys (events/journeys) on the local stack (moto) and show what an SDR would get
	$(PY) -m local.demo

bench: install ## measure the PRODUCT budgets on the local stack (counted AWS calls); exit 1 if one fails
	$(PY) -m bench.run

serve: install ## the local stack, long-running: the API on PORT (3000), moto (every resource of template.yaml) on AWS_PORT (5000); INGEST=function-url serves the collection routes as the collect function's Function URL would; SLACK_WEBHOOK_URL=... posts the Slack notifications there
	$(PY) -m local.server --port $(PORT) --aws-port $(AWS_PORT) $(if $(INGEST),--ingest $(INGEST)) $(if $(SLACK_WEBHOOK_URL),--parameter SlackWebhookUrl=$(SLACK_WEBHOOK_URL))

WEBHOOK_PORT ?= 9000
webhook: install ## a local Slack incoming webhook on WEBHOOK_PORT (9000): prints each message `make serve SLACK_WEBHOOK_URL=http://127.0.0.1:9000/slack` posts, checked against Slack's format
	$(PY) -m local.webhook --port $(WEBHOOK_PORT) $(ARGS)

STACK ?= leadscore
replay: install ## replay a failure queue: make replay QUEUE=BusDeadLetterQueue [STACK=leadscore] [ARGS=--dry-run] (docs/OPERATIONS.md)
	@test -n "$(QUEUE)" || { echo "usage: make replay QUEUE=<logical id or queue URL> [STACK=leadscore] [ARGS=--dry-run]"; exit 2; }
	$(PY) -m local.replay --queue "$(QUEUE)" --stack "$(STACK)" $(ARGS)

# STACK=<stack> given on the command line: the run goes to that stack's evidence state machine on
# AWS (local/evidence_aws.py); without it, processes on this machine read the table.
ON_AWS = $(if $(filter command line,$(origin STACK)),--on-aws)

calibrate: install ## which rules raise the chance of closing, from outcomes (CRM events, feedback, a file): make calibrate [DATA=<outcomes.csv|.jsonl>] [TARGET=0.10-0.15] [STACK=<stack>: on its state machine on AWS] [ARGS=--json]
	$(PY) -m local.calibrate $(if $(DATA),--data "$(DATA)") $(if $(TARGET),--target "$(TARGET)") --stack "$(STACK)" $(ON_AWS) $(ARGS) $(if $(HTML),--html "$(HTML)") $(if $(CANDIDATE),--candidate "$(CANDIDATE)")

preview: install ## what a rules change would do, writing nothing: make preview RULES=<candidate scoring.yaml> [ROUTING=<routing.yaml>] [DAYS=90] [STACK=<stack>: on its state machine on AWS] [ARGS=--json]
	@test -n "$(RULES)" || { echo "usage: make preview RULES=<candidate scoring.yaml> [STACK=<stack>] [ARGS=--json]"; exit 2; }
	$(PY) -m local.preview --rules "$(RULES)" $(if $(ROUTING),--routing "$(ROUTING)") $(if $(DAYS),--days "$(DAYS)") --stack "$(STACK)" $(ON_AWS) $(ARGS) $(if $(HTML),--html "$(HTML)")

rebuild: install ## rebuild a contact (or every contact an account tracks) from its stored events: make rebuild CONTACT=<id> | ACCOUNT=<id> [STACK=leadscore] [ARGS=--dry-run]
	@test -n "$(CONTACT)$(ACCOUNT)" || { echo "usage: make rebuild CONTACT=<userId or email> | ACCOUNT=<accountId> [STACK=leadscore] [ARGS=--dry-run]"; exit 2; }
	$(PY) -m local.rebuild $(if $(CONTACT),--contact "$(CONTACT)",--account "$(ACCOUNT)") --stack "$(STACK)" $(ARGS)

inbox: install ## what an SDR was given (their assignments) and what the routed queue holds, changing no delivery: make inbox SDR=ana [STACK=leadscore] [ARGS=--json]
	@test -n "$(SDR)" || { echo "usage: make inbox SDR=<sdr id> [STACK=leadscore] [ARGS=\"--json --limit 100\"]"; exit 2; }
	$(PY) -m local.inbox --sdr "$(SDR)" --stack "$(STACK)" $(ARGS)
