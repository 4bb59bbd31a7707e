# Two commands for a fresh clone: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test lint format bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Each extra set is installed once; the stamp file records it.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PIP) install --quiet -e ".[$*]"
	touch $@

demo: $(VENV)/.installed-datasets
	$(PY) examples/variants_digits.py

test: $(VENV)/.installed-dev
	$(PY) -m pytest -q -n 2 --doctest-modules src/descend tests

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples

format: $(VENV)/.installed-dev
	$(PY) -m ruff format src tests benchmarks examples
	$(PY) -m ruff check --fix src tests benchmarks examples

bench: $(VENV)/.installed-bench
	$(PY) benchmarks/bench_mlp.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
