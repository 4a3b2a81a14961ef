# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export PYTHONPATH := layers/shared:.

.PHONY: run build test lint bench clean i18n

$(INSTALLED): requirements-dev.txt layers/shared/requirements.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(INSTALLED)

# The SAM CLI lives in a venv of its own: its pinned dependencies clash with the dev ones.
BUILD_VENV := .venv-build
BUILD_INSTALLED := $(BUILD_VENV)/.installed
SAM := $(BUILD_VENV)/bin/sam
export SAM_CLI_TELEMETRY := 0

$(BUILD_INSTALLED): requirements-build.txt constraints-build.txt
	test -x $(BUILD_VENV)/bin/python || $(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BUILD_VENV)/bin/python -m pip install --quiet -r requirements-build.txt -c constraints-build.txt
	touch $(BUILD_INSTALLED)

## build: sam validate --lint, then sam build into .aws-sam/build for the template's runtime and
## architecture (wheels for Lambda's platform, no Docker; settings in samconfig.toml)
build: $(BUILD_INSTALLED)
	$(SAM) validate --lint --template template.yaml
	BUILD_PYTHON="$(CURDIR)/$(BUILD_VENV)/bin/python" $(SAM) build --template template.yaml

## run: start the local stack (moto on :5000, pages and API on :3000, console on /_dev/)
run: $(INSTALLED)
	$(BIN)/python -m devstack

CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

## test: lint and build, then unit, integration (incl. the built artifacts) and end-to-end tests
## (browser tests use Debian's chromium)
test: lint build $(CHROMIUM)
	$(BIN)/python -m pytest

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

## lint: ruff and mypy
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	for handler in functions/*/app.py; do $(BIN)/mypy "$$handler" || exit 1; done

## bench: print the benchmark figures (calls per request, cold start ratio, review reads and cost,
## answer times of the address forms for known and unknown addresses, the import of 1,000 rows against 100)
bench: $(INSTALLED)
	$(BIN)/python bench/bench_api.py
	$(BIN)/python bench/bench_review.py
	$(BIN)/python bench/bench_audience.py
	$(BIN)/python bench/bench_pages.py
	$(BIN)/python bench/bench_enumeration.py
	$(BIN)/python bench/bench_import.py

clean:
	rm -rf $(VENV) $(BUILD_VENV) .aws-sam test-artifacts

## i18n: extract page texts and update the German catalog (then translate the new entries)
i18n: $(INSTALLED)
	$(BIN)/pybabel extract --sort-output --no-location --omit-header -F babel.cfg -k N_ -k translate -k InvalidInput:2 -o templates/pages/locale/messages.pot .
	$(BIN)/pybabel update --ignore-obsolete --no-fuzzy-matching -i templates/pages/locale/messages.pot -d templates/pages/locale -l de
