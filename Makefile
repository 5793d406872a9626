# The two commands of the README: `make run` (set up, rebuild the pipeline) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

# Quiet, local runs: no telemetry, no usage statistics, caches in the project.
export RAY_USAGE_STATS_ENABLED := 0
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false
export STREAMLIT_BROWSER_GATHER_USAGE_STATS := false
export DVC_NO_ANALYTICS := 1
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export PATH := $(CURDIR)/$(BIN):$(PATH)
API_PORT ?= 8000
APP_PORT ?= 8501

.PHONY: setup run stop serve app test lint replay manifest repro real real-app-only bench-generate bench-serve clean

# The venv is created only when absent: a changed lock file updates the existing one in place. uv (its version in
# requirements.lock, like every other) installs the lock file's exact pins, compiled to bytecode (dvc starts in half
# the time): ~30 s against pip's ~2.5 minutes.
setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
		test -n "$(PYTHON)" || { echo "Python 3.11 is required (python3.11 not found)"; exit 1; }; \
		echo "$(PYTHON) -m venv $(VENV)"; $(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/pip install --quiet "$$(grep '^uv==' requirements.lock)"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

repro: setup
	dvc repro

run: repro
	@echo
	@echo "Pipeline outputs:"
	@echo "  validation report reports/validation.md"
	@echo "  metrics           reports/metrics.json (dvc metrics show)"
	@echo "  model card        reports/evaluate/model_card.md"
	@echo "  drift report      reports/drift/drift_report.html"
	@echo "  deck              reports/deck.pptx"
	@echo "  MLflow            .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1"
	python -m serve.stack up --api-port $(API_PORT) --app-port $(APP_PORT)

# The real-data lane (tests and measurements only): the visible real Kaggle rows of ../shared in data/raw, the
# pipeline on them as a DVC experiment (dvc.lock records the files), its figures. real-app-only: no history.
# `dvc repro raw` records the files first: `dvc exp run` checks every output out as dvc.lock has it, data/raw too.
# REAL_TARGET: the stage to run up to (default: the whole pipeline).
REAL_TARGET ?=
real: setup
	python -m tools.real_data assemble
	dvc repro raw
	dvc exp run $(REAL_TARGET) -S data.source=kaggle
	python -m tools.real_data figures

real-app-only: setup
	python -m tools.real_data assemble --application-only
	dvc repro raw
	dvc exp run $(REAL_TARGET) -S data.source=kaggle
	python -m tools.real_data figures

stop:
	python -m serve.stack down

serve: setup
	python -m serve.run --port $(API_PORT)

app: setup
	SCORING_API_URL=http://127.0.0.1:$(API_PORT) streamlit run app/streamlit_app.py --server.headless true \
		--server.address 127.0.0.1 --server.port $(APP_PORT)

test: setup
	pytest

lint: setup
	ruff check .
	actionlint

replay: setup
	python -m serve.replay --url http://127.0.0.1:$(API_PORT)

.PHONY: loop
loop: setup  # after `make run`: replay drifted applicants, drift, their outcomes, performance verdict (bench/loop.py)
	python bench/loop.py --url http://127.0.0.1:$(API_PORT)

manifest: setup
	python -m serve.manifest
	python -m serve.manifest --pipeline

bench-generate: setup
	python bench/generate.py

bench-serve: setup
	python bench/serve.py

clean:
	rm -rf $(VENV) .cache
