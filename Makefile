# The two commands of rehabflow: `make up` runs the engine, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: up test install lint histories clean browser

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

test: $(VENV)/.installed-dev browser
	$(PY) -m pytest

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
