# Two commands for a fresh clone: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test test-reference lint format bench docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Each extra set is installed once; the stamp file records it.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PIP) install --quiet -e ".[$*]"
	touch $@

# The main job: batch, stochastic and mini-batch gradient descent compared on the digits 0-3,
# written to runs/demo (table, figures, report.html) by the descend command.
demo: $(VENV)/.installed-cli
	$(VENV)/bin/descend compare digits:0-3 --out runs/demo
	@echo ""
	@echo "Open the report in a browser: $(CURDIR)/runs/demo/report.html"

test: $(VENV)/.installed-dev
	$(PY) -m pytest -q -n 2 --doctest-modules src/descend tests

# The comparisons against PyTorch (gradients, costs, layers, optimizer steps), which `make test`
# skips when torch is not installed: installs the reference extra (PyTorch, CPU) and runs them.
REFERENCE_TESTS := tests/test_autodiff.py tests/test_autodiff_edges.py tests/test_losses.py \
	tests/test_nn.py tests/test_optim_torch.py
test-reference: $(VENV)/.installed-dev $(VENV)/.installed-reference
	$(PY) -c "import torch; print('PyTorch', torch.__version__)"
	$(PY) -m pytest -q -n 2 -rs $(REFERENCE_TESTS)

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check src tests benchmarks examples docs/hooks.py
	$(PY) -m ruff format --check src tests benchmarks examples docs/hooks.py

format: $(VENV)/.installed-dev
	$(PY) -m ruff format src tests benchmarks examples docs/hooks.py
	$(PY) -m ruff check --fix src tests benchmarks examples docs/hooks.py

# Under 8 minutes on a 2-core machine; e.g. BENCH_ARGS="--markdown benchmarks/RESULTS.md".
BENCH_ARGS ?=
bench: $(VENV)/.installed-bench
	$(PY) benchmarks/bench_mlp.py $(BENCH_ARGS)

# The documentation site (the guide and the reference), built offline into site/ (open
# site/index.html). The guide's code runs during the build; its output and figures go in the pages.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
