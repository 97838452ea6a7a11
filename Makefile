# memebot: install, run, test. See README.md.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint test-nbs test-py export bench clean-store

install:            ## create .venv and install everything (torch's CPU build first, see ../shared/STACK.md)
	@command -v $(PY) >/dev/null 2>&1 || { echo "error: python3.11 not found (memebot needs Python 3.11)"; exit 2; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e ".[dev]"
	$(BIN)/python -m ipykernel install --user --name memebot --display-name "memebot (.venv)" >/dev/null
	@command -v npm >/dev/null 2>&1 || { echo "error: npm not found (the EVM test node needs Node.js 20 and npm)"; exit 2; }
	cd evm && npm ci --no-audit --no-fund --loglevel=error && node compile.js
	@echo "installed: $(BIN)/memebot"

run:                ## the main job: the whole loop offline (simulated market -> backtest -> train/promote -> paper -> reports)
	$(BIN)/memebot quickstart

test: lint test-nbs test-py  ## lint (ruff), notebooks (nbdev-test), then pytest

lint:               ## ruff: one statement per line, lines <= 120, formatted (`make format` fixes most)
	$(BIN)/ruff check nbs tests flows bench deploy
	$(BIN)/ruff format --check nbs tests flows bench deploy

format:             ## ruff format the sources, re-export the library, regenerate deploy/ (ConfigMap, dashboards)
	$(BIN)/ruff format nbs tests flows bench deploy
	$(BIN)/python deploy/k8s/configmap.py && $(BIN)/python deploy/grafana/build.py
	$(BIN)/nbdev-export && $(BIN)/nbdev-clean

test-nbs:
	$(BIN)/nbdev-test --n-workers 2

test-py:
	$(BIN)/pytest tests -q -p no:cacheprovider

export:             ## regenerate memebot/ from nbs/ and clean the notebooks
	$(BIN)/nbdev-export && $(BIN)/nbdev-clean

bench:              ## run the benchmarks in bench/ (figures go into bench/README.md by hand)
	$(BIN)/python bench/bench_store.py
