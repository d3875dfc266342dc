# hprobust — every target creates .venv if missing and installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
DATA_DIR ?= ./hprobust-data
# A machine without an NVIDIA GPU: `make up TORCH_INDEX=https://download.pytorch.org/whl/cpu`
# installs the CPU-only build of torch first (no CUDA libraries: about 4 GB less).
TORCH_INDEX ?=
TORCH_PINS := $(shell sed -n 's/^ *"\(torch[a-z]*==[^";]*\)".*/\1/p' pyproject.toml)

.PHONY: install dev up study check test compose-test lint format docs bench clean

# Two stamps: the runtime (what `make up`, `make study` need: torch, Ray, MLflow, the API) and
# the developer tools on top of it (pytest, hypothesis, schemathesis, ruff, playwright: the
# `dev` extras of pyproject.toml), which only the targets that test or lint install.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing hprobust and its runtime dependencies into $(VENV) (torch, ray, mlflow: a few minutes the first time) ..."
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install --progress-bar on --index-url $(TORCH_INDEX) $(TORCH_PINS))
	$(BIN)/python -m pip install --progress-bar on -e .
	touch $(STAMP)
	@echo ""
	@echo "hprobust is installed in $(VENV). Use the CLI as $(BIN)/hprobust --help,"
	@echo "or activate the environment first: source $(BIN)/activate, then hprobust --help."
	@echo ""

$(DEV_STAMP): $(STAMP)
	@echo "installing the developer tools (the dev extras: pytest, ruff, playwright, ...) into $(VENV) ..."
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	touch $(DEV_STAMP)

install: $(STAMP)

dev: $(DEV_STAMP)

up: install
	@echo "starting hprobust; in another terminal: $(BIN)/hprobust submit examples/digits-quick.yaml --wait"
	$(BIN)/hprobust serve --data-dir $(DATA_DIR)

study: install
	$(BIN)/hprobust run examples/digits-quick.yaml --data-dir $(DATA_DIR)
	@echo "browse it: $(BIN)/hprobust ui --data-dir $(DATA_DIR)"

# The inner loop: lint, and every test that needs no Ray, no server and no browser (those
# marked neither slow nor server), under 3 min on a quiet 2-core machine.
check: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -m "not slow and not server" $(PYTEST_ARGS)

# The whole suite (what CI runs: .ci/run). Most of its time is spent waiting on Ray, servers
# and studies, so it runs in TEST_WORKERS processes (pytest-xdist), each taking whole test
# files (module fixtures stay in one process; every Ray, server and store is private to its
# test). About 20 min on a quiet 2-core machine with 2 workers; TEST_WORKERS=0 runs it in one
# process (about 30 min).
TEST_WORKERS ?= 2
test: dev
	$(BIN)/python -m pytest -q $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

# The GPU-host deployment built and run for real under Docker (CPU override): needs root;
# installs and starts Docker if missing. 10 GB of disk; 11-30 min on a fresh 2-core machine,
# about 7 min with the images of an earlier run (see tests/compose/run.py).
compose-test: dev
	$(BIN)/python -m tests.compose.run $(COMPOSE_TEST_ARGS)

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: install  # docs/spec.md and the README's tables from the code: rerun after changing the
	# spec, an optimizer, a model or a dataset
	$(BIN)/python -m study.spec.docs

bench: install
	$(BIN)/python bench/step_overhead.py

clean:
	rm -rf $(VENV) $(DATA_DIR) .pytest_cache
