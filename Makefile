# The two commands of rehabflow: `make up` runs the engine, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: up test install lint histories clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The stamps re-run pip whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

up: $(VENV)/.installed
	$(PY) -m deploy.local

test: $(VENV)/.installed-dev
	$(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

histories: $(VENV)/.installed-dev
	$(PY) -m tests.histories.regenerate
	$(PY) -m tests.histories.scenarios_programme

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
