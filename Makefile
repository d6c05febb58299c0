# One-command entry points; see README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo test lint bench clean-demo

setup: $(VENV)/.installed

# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: setup  ## the whole X-STILTs grid on the built-in demo (tiny model, generated data), on this machine
	snakemake --profile profiles/demo

test: setup  ## every test, the SLURM integration tests included
	$(BIN)/python -m pytest -q

lint: setup
	ruff check .
	snakemake --lint

bench: setup
	$(BIN)/python benchmarks/dag_build.py

clean-demo:
	rm -rf results .snakemake
