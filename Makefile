# Simpsons character study. `make` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.DELETE_ON_ERROR:

PYTHON_BASE ?= python3
VENV        := .venv
# Which Python runs the study (docs/platforms.md), first match wins:
# - PY=/path/to/python (and STAMP=file, made once that Python has the library) given on the command line;
# - the platform's Python on Kaggle Notebooks and Colab (KAGGLE_KERNEL_RUN_TYPE or COLAB_RELEASE_TAG set), or
#   anywhere with USE_SYSTEM_PYTHON=1: $(PYTHON_BASE) as it is, its torch and torchvision kept, never replaced;
# - an active conda environment (other than base), as it is;
# - otherwise .venv, made here.
SYSTEM_PYTHON := $(filter-out 0,$(or $(USE_SYSTEM_PYTHON),$(if $(or $(KAGGLE_KERNEL_RUN_TYPE),$(COLAB_RELEASE_TAG)),1)))
ifneq ($(SYSTEM_PYTHON),)
ifeq ($(origin PY),undefined)
PY          := $(shell $(PYTHON_BASE) -c 'import sys; print(sys.executable)')
endif
STAMP       ?= .system-python-setup-complete
else ifneq ($(and $(CONDA_PREFIX),$(filter-out base,$(CONDA_DEFAULT_ENV))),)
PY          ?= $(CONDA_PREFIX)/bin/python
STAMP       ?= $(CONDA_PREFIX)/.simpsons-setup-complete
else
PY          ?= $(VENV)/bin/python
STAMP       ?= $(VENV)/.setup-complete
endif
DATA        := $(or $(SIMPSONS_DATA_DIR),data)

PROFILE     ?= full
# A profile is a plain name (letters, digits, _ and -): it names folders and make's targets.
empty       :=
PLAIN_CHARS := a b c d e f g h i j k l m n o p q r s t u v w x y z A B C D E F G H I J K L M N O P Q R S T U V W X Y Z \
	0 1 2 3 4 5 6 7 8 9 _ -
not_plain    = $(if $(2),$(call not_plain,$(subst $(firstword $(2)),$(empty),$(1)),$(wordlist 2,99,$(2))),$(1))
ifneq ($(call not_plain,$(subst $(empty) $(empty),=,$(value PROFILE)),$(PLAIN_CHARS)),)
$(error PROFILE must be a plain name (letters, digits, _ and -), the name of a folder in params/)
endif
OUTPUTS     := $(or $(SIMPSONS_OUTPUTS_DIR),outputs)
OUT         := $(OUTPUTS)/$(PROFILE)
NB          := $(OUT)/notebooks
PLAN        := $(OUT)/.plan/plan.mk
# The parameter files' root travels to every process (the notebooks' kernels resolve the same files).
PARAMS_ROOT ?= params
export SIMPSONS_PARAMS_DIR := $(abspath $(PARAMS_ROOT))
PIPELINE    := $(PY) -m simpsons_lib.pipeline
# What a user types (PROFILE, RUN, A, B, SWEEP, TTA, DEMO_SCALE, TB_ARGS, LAB_ARGS, the folders) reaches a
# recipe's shell only quoted: $(call q,NAME) is NAME's value as one shell word, in single quotes with each '
# written as '\'' (nothing in it is run: not ;, $$(...) nor backticks); $(call qw,NAME) quotes each word.
q  = '$(subst ','\'',$($(1)))'
qw = $(foreach w,$($(1)),'$(subst ','\'',$(w))')

.PHONY: help setup test test-fast lab data demo-data demo all pipeline study predict submit clean bench FORCE \
	sweep status compare pair pair-from-py tracking-ui figures

# Colour only on a terminal: piped or redirected, the list is plain text.
help: ## List the targets
	@echo "Simpsons character study — make <target>"
	@if [ -t 1 ]; then on=$$'\033[36m' off=$$'\033[0m'; else on= off=; fi; \
	grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*?## "}; {printf "  %s%-10s%s %s\n", on, $$1, off, $$2}'

setup: $(STAMP) ## Create .venv (plain venv + pip) with the library and Jupyter; on Kaggle/Colab: the platform's Python

$(STAMP): pyproject.toml
ifneq ($(SYSTEM_PYTHON),)
	$(PY) -m simpsons_lib.pipeline.platform install --extras dev --stamp $@
else
	test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name simpsons-study --display-name "Python (simpsons-study)" >/dev/null
	touch $@
endif

# The tests also cover opt-in tracking: they install the tracking extra (TensorBoard), which setup leaves out.
TRACKING_STAMP ?= $(dir $(STAMP)).tracking-installed
$(TRACKING_STAMP): $(STAMP)
ifneq ($(SYSTEM_PYTHON),)
	$(PY) -m simpsons_lib.pipeline.platform install --extras dev,tracking --stamp $@
else
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev,tracking]'
	touch $@
endif

# One pytest worker per core (pytest-xdist); the tests of one study fixture share a worker (xdist_group).
PYTEST_WORKERS ?= auto
test: $(STAMP) $(TRACKING_STAMP) ## Run the test suite
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

test-fast: $(STAMP) $(TRACKING_STAMP) ## The quick tests (no end-to-end pipeline runs), in about a minute
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not slow"

# As root (containers), Jupyter needs --allow-root; LAB_ARGS adds any other option (e.g. --no-browser).
LAB_ARGS ?=
lab: $(STAMP) ## JupyterLab at the repository root (notebooks/, outputs/) with the project kernel (LAB_ARGS=...)
	$(PY) -m jupyter lab --notebook-dir=. $(if $(filter 0,$(shell id -u)),--allow-root) $(call qw,LAB_ARGS)

data: ## Download the Kaggle data into data/kaggle (needs your Kaggle credentials)
	$(PYTHON_BASE) -m simpsons_lib.pipeline.kaggle --check-credentials --out $(call q,DATA)/kaggle
	$(MAKE) --no-print-directory $(STAMP)
	$(PY) -m simpsons_lib.pipeline.kaggle --out $(call q,DATA)/kaggle

demo-data: $(STAMP) ## Generate the drawn demo data the profile reads (PROFILE=demo; DEMO_SCALE=1.0 for full size)
	$(PIPELINE) demo-data --profile $(if $(filter full,$(PROFILE)),demo,$(call q,PROFILE)) $(if $(DEMO_SCALE),--scale $(call q,DEMO_SCALE))

demo: ## Set up and run the whole study on the demo data (CPU is enough): outputs/demo/reports/index.html
	$(MAKE) --no-print-directory $(STAMP)
	$(PIPELINE) demo-data --profile demo --if-needed
	$(MAKE) --no-print-directory pipeline PROFILE=demo

all: ## Run the whole study on the Kaggle data (data/kaggle, or mounted in a Kaggle Notebook; profile full)
	@grep -qs '^data_dir:' "$$SIMPSONS_PARAMS_DIR/full/_common.yaml" || $(PYTHON_BASE) -m simpsons_lib.pipeline.kaggle --check-data
	$(MAKE) --no-print-directory pipeline PROFILE=full

# With several GPUs, the runs that do not read each other run at the same time, one per GPU (docs/multi-gpu.md).
pipeline: $(STAMP) ## Run the notebooks of PROFILE (full, demo, smoke, or your own) and render the reports
	$(PIPELINE) locked --plan --gpu-jobs --profile $(call q,PROFILE) -- $(MAKE) --no-print-directory study PROFILE=$(call q,PROFILE)
	@echo "Reports: "$(call q,OUT)"/reports/index.html"

# `study` runs inside the profile's lock, after the plan (the preflight: every run validated, the data
# found), which rewrites a run's key file only when the run's inputs changed, and writes $(PLAN).
ifeq ($(MAKECMDGOALS),study)
include $(PLAN)
endif

study: $(OUT)/reports/index.html

$(NB)/%.ipynb: $(OUT)/.plan/%.key | $(STAMP)
	$(PIPELINE) run --profile $(call q,PROFILE) --run $(call q,*)

$(OUT)/reports/index.html: $(foreach r,$(RUNS),$(NB)/$(r).ipynb) simpsons_lib/reporting/index_page.py \
		$(wildcard simpsons_lib/reporting/templates/*) | $(STAMP)
	$(PIPELINE) index --profile $(call q,PROFILE)

IMAGES ?=
RUN    ?= best
# IMAGES reaches predict through the environment, never pasted into the shell line: names with spaces,
# quotes or any other character arrive as typed. PROFILE: the one given, else the one with results.
export IMAGES
predict: $(STAMP) ## Predict IMAGES="a.jpg folder/" with a run's model (PROFILE: the one with results; RUN=best; TTA=--tta)
	@test -n "$$IMAGES" || { echo "usage: make predict IMAGES='a.jpg folder/' [PROFILE=demo] [RUN=best] [TTA=--tta]" >&2; exit 2; }
	$(PY) -m simpsons_lib.inference.predict $(if $(filter file,$(origin PROFILE)),,--profile $(call q,PROFILE)) --run $(call q,RUN) --paths-from-env IMAGES $(call qw,TTA)

submit: $(STAMP) ## Send outputs/full/submission.csv to Kaggle (refuses demo, stale or invalid files)
	$(PY) -m simpsons_lib.pipeline.kaggle submit --profile $(call q,PROFILE)

bench: $(STAMP) ## Throughput of each model: real pipeline against the GPU-resident ceiling
	$(PY) benchmarks/throughput.py

clean: ## Remove what the study wrote in the outputs folder (never data/, never files it did not make)
	@$(if $(wildcard $(PY)),$(PY),$(PYTHON_BASE)) -m simpsons_lib.pipeline clean

# The figures the documents quote from the demo (docs/results/demo.csv, tests/test_figures.py), after `make demo`.
figures: $(STAMP) ## After make demo: copy its figures into docs/results/demo.csv and rewrite the documents' quotes of them
	$(PY) -m simpsons_lib.reporting.figures --write

# --- sweeps, status, comparisons, paired notebooks, tracking -----------------------------------------
# GRID reaches the sweep through the environment (like IMAGES): values with spaces or quotes arrive as typed.
GRID  ?=
SWEEP ?=
export GRID
sweep: $(STAMP) ## One run over a grid (RUN=mid_cnn GRID="lr=1e-3,3e-4 epochs=6,12") or a sweep file (SWEEP=name)
	$(PIPELINE) sweep --profile $(call q,PROFILE) $(if $(filter file,$(origin RUN)),,--run $(call q,RUN)) \
		$(if $(SWEEP),--file $(call q,SWEEP)) $(if $(GRID),--grid-from-env GRID)

status: $(STAMP) ## Each run of PROFILE: current, will re-run (and why), or failed; runs nothing
	@$(PIPELINE) status --profile $(call q,PROFILE)

A ?=
B ?=
compare: $(STAMP) ## Parameter diff and metric deltas of two runs: make compare A=mid_cnn B=mid_cnn-3fa9c2 PROFILE=demo
	@test -n $(call q,A) -a -n $(call q,B) || { echo "usage: make compare A=<run> B=<run> [PROFILE=demo]" >&2; exit 2; }
	@$(PIPELINE) compare $(call q,A) $(call q,B) --profile $(call q,PROFILE)

# The pairing is jupytext's (jupytext.toml); NOTEBOOKS: the folder (the tests pair a copy).
NOTEBOOKS ?= notebooks
pair: $(STAMP) ## Write each notebook's paired percent-format .py from its .ipynb (jupytext; idempotent)
	$(PY) -m jupytext --to py:percent $(NOTEBOOKS)/*.ipynb

pair-from-py: $(STAMP) ## Update each .ipynb from its edited .py (cell ids kept, outputs cleared; refuses a syntax error)
	$(PY) -m simpsons_lib.pipeline.pairing $(NOTEBOOKS)/*.py
	$(PY) -m jupytext --to ipynb --update $(NOTEBOOKS)/*.py
	$(PY) -m jupyter nbconvert --clear-output --inplace --log-level WARN $(NOTEBOOKS)/*.ipynb

tracking-ui: $(STAMP) ## TensorBoard on PROFILE's local tracking store (outputs/<profile>/tracking; pip install -e '.[tracking]')
	$(PY) -m tensorboard.main --logdir $(call q,OUT)/tracking $(call qw,TB_ARGS)

# TensorBoard is an extra (the tracking extra): without it, tracking-ui says how to install it in one line.
tracking-ui: | tracking-ui-check
.PHONY: tracking-ui-check
tracking-ui-check: $(STAMP)
	@$(PY) -c "import importlib.util, sys; importlib.util.find_spec('tensorboard') or sys.exit(\"error: make tracking-ui needs TensorBoard, which setup leaves out: $(PY) -m pip install -e '.[tracking]'\")"
