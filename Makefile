# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export PYTHONPATH := layers/shared:.

.PHONY: run test lint bench clean

$(INSTALLED): requirements-dev.txt layers/shared/requirements.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(INSTALLED)

## run: start the local stack (moto on :5000, pages and API on :3000, console on /_dev/)
run: $(INSTALLED)
	$(BIN)/python -m devstack

## test: lint, then unit, integration and end-to-end tests
test: lint
	$(BIN)/python -m pytest

## lint: ruff and mypy
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: print the benchmark figures (calls per request, cold start ratio)
bench: $(INSTALLED)
	$(BIN)/python bench/bench_api.py

clean:
	rm -rf $(VENV) .aws-sam test-artifacts
