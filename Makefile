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

## Ingest: 300,000 events, one then two worker processes (then with larger batches), against a
## raw aiokafka consume.
## Read API: 1,000,000 incidents, p50/p99 and requests/s per endpoint against /healthz.
## Export: the bundles of a 100,000-event incident (time, peak memory of the API process) and
## verify, against reading the events alone.
bench: $(STAMP)
	$(BIN)/python -m bench.ingest_bench --events 300000
	$(BIN)/python -m bench.ingest_bench --events 300000 --workers 2
	$(BIN)/python -m bench.ingest_bench --events 300000 --workers 2 --max-batch 20000
	$(BIN)/python -m bench.api_bench --incidents 1000000
	$(BIN)/python -m bench.export_bench --events 100000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
