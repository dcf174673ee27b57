# Set-up is automatic: every target creates .venv and installs the project from its own
# files (pyproject.toml) on first use. Needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install lint fmt typecheck test test-fast test-reliability demo bench server clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check --no-cache src tests
	$(BIN)/ruff format --no-cache --check src tests

fmt: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

typecheck: install
	$(BIN)/mypy

# The whole gate: lint, types, every test (unit, cluster, reliability) in parallel,
# coverage 100% lines and branches, HTML report in htmlcov/.
test: lint typecheck
	rm -rf htmlcov .coverage .coverage.*
	$(BIN)/pytest -n auto --dist loadgroup --cov=fullon_cache --cov-branch \
		--cov-report=term-missing:skip-covered --cov-report=html --cov-fail-under=100

test-fast: install
	$(BIN)/pytest -n auto -m "not cluster and not reliability"

test-reliability: install
	$(BIN)/pytest -n auto -m reliability

demo: install
	$(BIN)/python -m fullon_cache.demo

bench: install
	$(BIN)/python -m fullon_cache.bench

server: install
	$(BIN)/fullon-cache server

clean:
	rm -rf $(VENV) htmlcov .coverage .coverage.* .pytest_cache .mypy_cache .ruff_cache
