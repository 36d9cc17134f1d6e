# Simpsons character study. `make` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.DELETE_ON_ERROR:

PYTHON_BASE ?= python3
VENV        := .venv
# An active conda environment (other than base) is used as it is; otherwise .venv is made and used.
ifneq ($(and $(CONDA_PREFIX),$(filter-out base,$(CONDA_DEFAULT_ENV))),)
PY          ?= $(CONDA_PREFIX)/bin/python
STAMP       ?= $(CONDA_PREFIX)/.simpsons-setup-complete
else
PY          ?= $(VENV)/bin/python
STAMP       ?= $(VENV)/.setup-complete
endif
DATA        := $(or $(SIMPSONS_DATA_DIR),data)

PROFILE     ?= full
OUTPUTS     := $(or $(SIMPSONS_OUTPUTS_DIR),outputs)
OUT         := $(OUTPUTS)/$(PROFILE)
NB          := $(OUT)/notebooks
PLAN        := $(OUT)/.plan/plan.mk
# The parameter files' root travels to every process (the notebooks' kernels resolve the same files).
PARAMS_ROOT ?= params
export SIMPSONS_PARAMS_DIR := $(abspath $(PARAMS_ROOT))
PIPELINE    := $(PY) -m simpsons_lib.pipeline

.PHONY: help setup test test-fast lab data demo-data demo all pipeline study predict submit clean bench FORCE \
	sweep status compare pair pair-from-py tracking-ui

# Colour only on a terminal: piped or redirected, the list is plain text.
help: ## List the targets
	@echo "Simpsons character study — make <target>"
	@if [ -t 1 ]; then on=$$'\033[36m' off=$$'\033[0m'; else on= off=; fi; \
	grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*?## "}; {printf "  %s%-10s%s %s\n", on, $$1, off, $$2}'

setup: $(STAMP) ## Create .venv (plain venv + pip) with the library, Jupyter and the project kernel

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name simpsons-study --display-name "Python (simpsons-study)" >/dev/null
	touch $@

# The tests also cover opt-in tracking: they install the tracking extra (TensorBoard), which setup leaves out.
TRACKING_STAMP ?= $(dir $(STAMP)).tracking-installed
$(TRACKING_STAMP): $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev,tracking]'
	touch $@

# One pytest worker per core (pytest-xdist); the tests of one study fixture share a worker (xdist_group).
PYTEST_WORKERS ?= auto
test: $(STAMP) $(TRACKING_STAMP) ## Run the test suite
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

test-fast: $(STAMP) $(TRACKING_STAMP) ## The quick tests (no end-to-end pipeline runs), in about a minute
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not slow"

# As root (containers), Jupyter needs --allow-root; LAB_ARGS adds any other option (e.g. --no-browser).
LAB_ARGS ?=
lab: $(STAMP) ## JupyterLab at the repository root (notebooks/, outputs/) with the project kernel (LAB_ARGS=...)
	$(PY) -m jupyter lab --notebook-dir=. $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

data: ## Download the Kaggle data into data/kaggle (needs your Kaggle credentials)
	$(PYTHON_BASE) -m simpsons_lib.pipeline.kaggle --check-credentials --out $(DATA)/kaggle
	$(MAKE) --no-print-directory $(STAMP)
	$(PY) -m simpsons_lib.pipeline.kaggle --out $(DATA)/kaggle

demo-data: $(STAMP) ## Generate the drawn demo data the profile reads (PROFILE=demo; DEMO_SCALE=1.0 for full size)
	$(PIPELINE) demo-data --profile $(if $(filter full,$(PROFILE)),demo,$(PROFILE)) $(if $(DEMO_SCALE),--scale $(DEMO_SCALE))

demo: ## Set up and run the whole study on the demo data (CPU is enough): outputs/demo/reports/index.html
	$(MAKE) --no-print-directory $(STAMP)
	$(PIPELINE) demo-data --profile demo --if-needed
	$(MAKE) --no-print-directory pipeline PROFILE=demo

all: ## Run the whole study on the Kaggle data (profile full; a GPU is advised)
	@test -d $(DATA)/kaggle || grep -qs '^data_dir:' $(PARAMS_ROOT)/full/_common.yaml || { echo "error: no Kaggle data in $(DATA)/kaggle: run \`make data\` first (or \`make demo\` for the drawn demo data)" >&2; exit 2; }
	$(MAKE) --no-print-directory pipeline PROFILE=full

pipeline: $(STAMP) ## Run the notebooks of PROFILE (full, demo, smoke, or your own) and render the reports
	$(PIPELINE) locked --plan --profile $(PROFILE) -- $(MAKE) --no-print-directory study PROFILE=$(PROFILE)
	@echo "Reports: $(OUT)/reports/index.html"

# `study` runs inside the profile's lock, after the plan (the preflight: every run validated, the data
# found), which rewrites a run's key file only when the run's inputs changed, and writes $(PLAN).
ifeq ($(MAKECMDGOALS),study)
include $(PLAN)
endif

study: $(OUT)/reports/index.html

$(NB)/%.ipynb: $(OUT)/.plan/%.key | $(STAMP)
	$(PIPELINE) run --profile $(PROFILE) --run $*

$(OUT)/reports/index.html: $(foreach r,$(RUNS),$(NB)/$(r).ipynb) simpsons_lib/reporting/index_page.py \
		$(wildcard simpsons_lib/reporting/templates/*) | $(STAMP)
	$(PIPELINE) index --profile $(PROFILE)

IMAGES ?=
RUN    ?= best
# IMAGES reaches predict through the environment, never pasted into the shell line: names with spaces,
# quotes or any other character arrive as typed. PROFILE: the one given, else the one with results.
export IMAGES
predict: $(STAMP) ## Predict IMAGES="a.jpg folder/" with a run's model (PROFILE: the one with results; RUN=best; TTA=--tta)
	@test -n "$$IMAGES" || { echo "usage: make predict IMAGES='a.jpg folder/' [PROFILE=demo] [RUN=best] [TTA=--tta]" >&2; exit 2; }
	$(PY) -m simpsons_lib.inference.predict $(if $(filter file,$(origin PROFILE)),,--profile '$(PROFILE)') --run '$(RUN)' --paths-from-env IMAGES $(TTA)

submit: $(STAMP) ## Send outputs/full/submission.csv to Kaggle (refuses demo, stale or invalid files)
	$(PY) -m simpsons_lib.pipeline.kaggle submit --profile $(PROFILE)

bench: $(STAMP) ## Throughput of each model: real pipeline against the GPU-resident ceiling
	$(PY) benchmarks/throughput.py

clean: ## Remove generated outputs (never data/)
	test ! -d $(OUTPUTS) || find $(OUTPUTS) -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +

# --- sweeps, status, comparisons, paired notebooks, tracking -----------------------------------------
# GRID reaches the sweep through the environment (like IMAGES): values with spaces or quotes arrive as typed.
GRID  ?=
SWEEP ?=
export GRID
sweep: $(STAMP) ## One run over a grid (RUN=mid_cnn GRID="lr=1e-3,3e-4 epochs=6,12") or a sweep file (SWEEP=name)
	$(PIPELINE) sweep --profile '$(PROFILE)' $(if $(filter file,$(origin RUN)),,--run '$(RUN)') \
		$(if $(SWEEP),--file '$(SWEEP)') $(if $(GRID),--grid-from-env GRID)

status: $(STAMP) ## Each run of PROFILE: current, will re-run (and why), or failed; runs nothing
	@$(PIPELINE) status --profile '$(PROFILE)'

A ?=
B ?=
compare: $(STAMP) ## Parameter diff and metric deltas of two runs: make compare A=mid_cnn B=mid_cnn-3fa9c2 PROFILE=demo
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make compare A=<run> B=<run> [PROFILE=demo]" >&2; exit 2; }
	@$(PIPELINE) compare '$(A)' '$(B)' --profile '$(PROFILE)'

pair: $(STAMP) ## Write each notebook's paired percent-format .py from its .ipynb (idempotent)
	$(PY) -m simpsons_lib.pipeline.pairing write

pair-from-py: $(STAMP) ## Update each .ipynb from its edited .py (cells and sources; outputs stay none)
	$(PY) -m simpsons_lib.pipeline.pairing update

tracking-ui: $(STAMP) ## TensorBoard on PROFILE's local tracking store (outputs/<profile>/tracking; pip install -e '.[tracking]')
	$(PY) -m tensorboard.main --logdir '$(OUT)/tracking' $(TB_ARGS)
