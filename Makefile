# hprobust — every target creates .venv if missing and installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA_DIR ?= ./hprobust-data

.PHONY: install up study check test compose-test lint format docs bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing hprobust and its dependencies into $(VENV) (torch, ray, mlflow: a few minutes the first time) ..."
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	touch $(STAMP)
	@echo ""
	@echo "hprobust is installed in $(VENV). Use the CLI as $(BIN)/hprobust --help,"
	@echo "or activate the environment first: source $(BIN)/activate, then hprobust --help."
	@echo ""

install: $(STAMP)

up: install
	@echo "starting hprobust; in another terminal: $(BIN)/hprobust submit examples/digits-quick.yaml --wait"
	$(BIN)/hprobust serve --data-dir $(DATA_DIR)

study: install
	$(BIN)/hprobust run examples/digits-quick.yaml --data-dir $(DATA_DIR)
	@echo "browse it: $(BIN)/hprobust ui --data-dir $(DATA_DIR)"

# The inner loop: lint, and every test that needs no Ray, no server and no browser (those
# marked neither slow nor server), under 3 min on a quiet 2-core machine.
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -m "not slow and not server" $(PYTEST_ARGS)

# The whole suite (what CI runs: .ci/run), about 13 min on a quiet 2-core machine.
test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The GPU-host deployment built and run for real under Docker (CPU override): needs root;
# installs and starts Docker if missing. 10 GB of disk; 11-30 min on a fresh 2-core machine,
# about 7 min with the images of an earlier run (see tests/compose/run.py).
compose-test: install
	$(BIN)/python -m tests.compose.run $(COMPOSE_TEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: install  # docs/spec.md and the README's tables from the code: rerun after changing the
	# spec, an optimizer, a model or a dataset
	$(BIN)/python -m study.spec.docs

bench: install
	$(BIN)/python bench/step_overhead.py

clean:
	rm -rf $(VENV) $(DATA_DIR) .pytest_cache
