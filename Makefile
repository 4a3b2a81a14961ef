# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export PYTHONPATH := layers/shared:.

.PHONY: run test lint bench clean i18n

$(INSTALLED): requirements-dev.txt layers/shared/requirements.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(INSTALLED)

## run: start the local stack (moto on :5000, pages and API on :3000, console on /_dev/)
run: $(INSTALLED)
	$(BIN)/python -m devstack

CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

## test: lint, then unit, integration and end-to-end tests (browser tests use Debian's chromium)
test: lint $(CHROMIUM)
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

## bench: print the benchmark figures (calls per request, cold start ratio, review reads and cost)
bench: $(INSTALLED)
	$(BIN)/python bench/bench_api.py
	$(BIN)/python bench/bench_review.py
	$(BIN)/python bench/bench_pages.py

clean:
	rm -rf $(VENV) .aws-sam test-artifacts

## i18n: extract page texts and update the German catalog (then translate the new entries)
i18n: $(INSTALLED)
	$(BIN)/pybabel extract --no-location --omit-header -F babel.cfg -k N_ -k translate -k InvalidInput:2 -o templates/pages/locale/messages.pot .
	$(BIN)/pybabel update --no-fuzzy-matching -i templates/pages/locale/messages.pot -d templates/pages/locale -l de
