# annlab — two commands on a fresh clone:
#   make run    install into .venv and serve on http://127.0.0.1:8000 (SQLite under ./data)
#   make test   install with the dev, mlflow and bench extras, then ruff, mypy and the whole pytest suite
# The stamp files make pip run again whenever pyproject.toml changes. `make test` installs
# the `mlflow` extra too (MLflow's own scoring client, for tests/e2e/test_mlflow_client.py) and
# `bench` (PyTorch 2.13.0 CPU and scikit-learn: the engine's cross-checks in tests/core run
# against them instead of skipping).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= ./data
# pytest-xdist workers of `make test` (tests/conftest.py keeps the groups that share
# ports, queues or the container engine on one of them); 0 runs it in one process.
TEST_WORKERS ?= 2

.PHONY: run test lint format clean lock image-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,mlflow,bench]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	mkdir -p $(DATA_DIR)
	MALLOC_ARENA_MAX=$${MALLOC_ARENA_MAX:-2} ANNLAB_DATA_DIR=$(DATA_DIR) $(BIN)/annlab serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy app core
	$(BIN)/pytest -q -n $(TEST_WORKERS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check app tests/api migrations

format: $(VENV)/.installed-dev
	$(BIN)/ruff format app tests/api migrations

# The locked build (requirements.lock, installed by the Dockerfile): exact versions
# with hashes for Linux/CPython 3.11, from pyproject's dependencies and its
# build-system requirements. Keeps today's pins where they still fit;
# `make lock UPGRADE=1` moves everything to the newest.
UV_VERSION := 0.13.9
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
	  | $(BIN)/uv pip compile pyproject.toml - --quiet --native-tls --generate-hashes \
	      --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	      --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade) -o requirements.lock

# Build the image and run the README's "Running it for a lab" against it
# (docker if its daemon answers, else podman, prepared by shared/tools/container-env).
image-test: $(VENV)/.installed-dev
	$(BIN)/pytest -q -m container tests/container

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
