# incidentflow: the commands a developer and CI run. Everything installs into .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The whole pipeline with demo traffic on embedded PostgreSQL and broker (Ctrl-C to stop).
run: $(STAMP)
	$(BIN)/incidentflow dev --demo

## Unit, integration and end-to-end tests (embedded infrastructure unless configured).
test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Publishes 300,000 events and prints the worker's events/s against a raw aiokafka consume.
bench: $(STAMP)
	$(BIN)/python -m bench.ingest_bench --events 300000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
