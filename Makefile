# Simpsons character study. `make` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.DELETE_ON_ERROR:

PYTHON_BASE ?= python3
VENV        := .venv
PY          ?= $(VENV)/bin/python
STAMP       ?= $(VENV)/.setup-complete

PROFILE     ?= full
DATA        := $(or $(SIMPSONS_DATA_DIR),data)
OUTPUTS     := $(or $(SIMPSONS_OUTPUTS_DIR),outputs)
PARAMS_ROOT ?= params
PARAMS      := $(PARAMS_ROOT)/$(PROFILE)
OUT         := $(OUTPUTS)/$(PROFILE)
NB          := $(OUT)/notebooks
LIB         := $(wildcard simpsons_lib/*.py)
COMMON      := $(wildcard $(PARAMS)/_common.yaml)
DEMO_SCALE  ?= 0.05
DEMO_STAMP  := $(DATA)/demo/DEMO_DATA.txt
# The demo and smoke profiles read data/demo: its runs depend on it (and generate it when absent).
DATA_DEP    := $(if $(filter full,$(PROFILE)),,$(DEMO_STAMP))

# Each run: notebook, params file, then what it reads. The recipe for every run is the same.
RUN = $(PY) -m simpsons_lib.pipeline run $< $(PARAMS)/$(basename $(notdir $@)).yaml $@ --profile $(PROFILE)
DEPS = $(COMMON) $(LIB) $(DATA_DEP) | $(STAMP)

.PHONY: help setup test lab data demo-data demo all pipeline clean bench

help: ## List the targets
	@echo "Simpsons character study — make <target>"
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv (plain venv + pip) with the library, Jupyter and the project kernel

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name simpsons-study --display-name "Python (simpsons-study)" >/dev/null
	touch $@

test: $(STAMP) ## Run the test suite
	$(PY) -m pytest

lab: $(STAMP) ## Open JupyterLab on notebooks/ with the project kernel
	$(PY) -m jupyter lab --notebook-dir=notebooks

data: $(STAMP) ## Download the Kaggle data into data/kaggle (needs your Kaggle token)
	$(PY) -m simpsons_lib.kaggle_download --out $(DATA)/kaggle

demo-data: $(DEMO_STAMP) ## Generate the drawn demo data in data/demo (DEMO_SCALE=0.05)

$(DEMO_STAMP): | $(STAMP)
	$(PY) -m simpsons_lib.demo_data --out $(DATA)/demo --scale $(DEMO_SCALE)

demo: ## Set up and run the whole study on the demo data (CPU is enough): outputs/demo/reports/index.html
	$(MAKE) --no-print-directory pipeline PROFILE=demo

all: ## Run the whole study on the Kaggle data (profile full; a GPU is advised)
	$(MAKE) --no-print-directory pipeline PROFILE=full

pipeline: $(OUT)/reports/index.html ## Run the notebooks of PROFILE (full, demo, smoke) and render the reports
	@echo "Reports: $(OUT)/reports/index.html"

$(NB)/eda.ipynb: notebooks/00_eda.ipynb $(PARAMS)/eda.yaml $(DEPS)
	$(RUN)
$(NB)/simple_cnn.ipynb: notebooks/01_simple_cnn.ipynb $(PARAMS)/simple_cnn.yaml $(DEPS)
	$(RUN)
$(NB)/simple_cnn_aug.ipynb: notebooks/01_simple_cnn.ipynb $(PARAMS)/simple_cnn_aug.yaml $(NB)/simple_cnn.ipynb $(DEPS)
	$(RUN)
$(NB)/mid_cnn.ipynb: notebooks/02_mid_cnn.ipynb $(PARAMS)/mid_cnn.yaml $(NB)/simple_cnn.ipynb $(DEPS)
	$(RUN)
$(NB)/resnet50.ipynb: notebooks/03_resnet50.ipynb $(PARAMS)/resnet50.yaml $(NB)/simple_cnn.ipynb $(DEPS)
	$(RUN)
$(NB)/report.ipynb: notebooks/04_report.ipynb $(PARAMS)/report.yaml $(NB)/simple_cnn.ipynb \
		$(NB)/simple_cnn_aug.ipynb $(NB)/mid_cnn.ipynb $(NB)/resnet50.ipynb $(DEPS)
	$(RUN)

RUNS := eda simple_cnn simple_cnn_aug mid_cnn resnet50 report
$(OUT)/reports/index.html: $(foreach r,$(RUNS),$(NB)/$(r).ipynb) | $(STAMP)
	$(PY) -m simpsons_lib.pipeline index $(OUT)

bench: $(STAMP) ## Throughput of each model: real pipeline against the GPU-resident ceiling
	$(PY) benchmarks/throughput.py

clean: ## Remove generated outputs (never data/)
	find $(OUTPUTS) -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +
