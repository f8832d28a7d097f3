# annlab — two commands on a fresh clone:
#   make run    install into .venv and serve on http://127.0.0.1:8000 (SQLite under ./data)
#   make test   install with the dev and mlflow extras, then ruff, mypy and the whole pytest suite
# The stamp files make pip run again whenever pyproject.toml changes. `make test` installs
# the `mlflow` extra too (MLflow's own scoring client, for tests/e2e/test_mlflow_client.py).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= ./data

.PHONY: run test lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,mlflow]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	mkdir -p $(DATA_DIR)
	ANNLAB_DATA_DIR=$(DATA_DIR) $(BIN)/annlab serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy app core
	$(BIN)/pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check app tests/api migrations

format: $(VENV)/.installed-dev
	$(BIN)/ruff format app tests/api migrations

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
