# One-command entry points; see README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup browser demo demo-alternatives demo-xtreme-r demo-robustness slurm-profile test lint bench clean-demo

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

demo-alternatives: setup  ## after `make demo`: add the MLM-mixed and translated-data rows and the untrained control
	snakemake --profile profiles/demo --configfile config.yaml profiles/demo/demo-config.yaml \
	  profiles/demo/alternatives.yaml

demo-xtreme-r: setup  ## the XTREME-R grid plus the shifted targets on the demo (4 rows, 120 jobs), in results-xtreme-r/
	snakemake --profile profiles/demo --configfile config.yaml profiles/demo/demo-config.yaml \
	  profiles/demo/xtreme-r.yaml

demo-robustness: setup  ## after `make demo`: perturbed evaluation, the adversarial attack and the alignment probes
	snakemake --profile profiles/demo --configfile config.yaml profiles/demo/demo-config.yaml \
	  profiles/demo/robustness.yaml

slurm-profile: setup  ## install profiles/slurm as your Snakemake profile `slurm` (~/.config/snakemake/slurm), if you have none
	@$(BIN)/python profiles/install.py

# tests/test_report.py renders results/report.html in headless Chromium (Debian's `chromium`): installed
# here when missing and possible (root with apt-get, as on CI's fresh Debian machine); else that test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	  || echo "chromium could not be installed (needs root and apt-get): the report rendering test will skip"

test: setup browser  ## every test, the SLURM integration tests included
	$(BIN)/python -m pytest -q

lint: setup
	ruff check .
	snakemake --lint

bench: setup
	$(BIN)/python benchmarks/dag_build.py

clean-demo:
	rm -rf results results-xtreme-r .snakemake
