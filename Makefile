# The two commands of rehabflow: `make up` runs the engine, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SOURCES := workflows models activities channels core store api ingestion deploy worker.py starter.py

.PHONY: up test install lint histories clean bytecode browser

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

# These machines set PYTHONDONTWRITEBYTECODE, and the worker's sandbox imports a workflow's
# module afresh for every new workflow run (a start, a continue-as-new, a replay): compiled
# once here, it is read instead of compiled each time. Stale files are ignored by Python.
bytecode: | $(VENV)/bin/python
	$(PY) -m compileall -q $(SOURCES)

up: $(VENV)/.installed bytecode
	$(PY) -m deploy.local

# Two pytest-xdist workers, each with servers of its own, a test file at a time: measured on
# 2 cores (busy ones), 321 s against 509 s in one process. `make test TEST_WORKERS=0` runs
# the suite in one process.
TEST_WORKERS ?= 2
test: $(VENV)/.installed-dev bytecode browser
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# The browser tests drive Debian's Chromium (never a downloaded build): installed here when
# running as root, else one line that says how.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -q chromium >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
	  else \
	    echo "Chromium is missing: install Debian's package with 'sudo apt-get install -y chromium'"; \
	    exit 1; \
	  fi; }

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

histories: $(VENV)/.installed-dev
	$(PY) -m tests.histories.regenerate
	$(PY) -m tests.histories.scenarios_programme

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
