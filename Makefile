# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m bot demo

lint: $(STAMP)
	$(VENV)/bin/ruff check bot tests bench
	$(VENV)/bin/ruff format --check bot tests bench
	$(VENV)/bin/lint-imports

# One worker per core; the reliability suite stays on one worker (its report needs the whole run).
test: lint
	$(PY) -m pytest -n auto --dist loadgroup

format: $(STAMP)
	$(VENV)/bin/ruff check --fix bot tests bench
	$(VENV)/bin/ruff format bot tests bench

clean:
	rm -rf $(VENV) out .pytest_cache
