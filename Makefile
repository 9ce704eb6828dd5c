# The two entry points of the README. Each creates .venv/ on first use (idempotent: the
# stamp file is rebuilt only when pyproject.toml changes), then runs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

# Use the shared offline copies of BEIR and its embeddings when they sit beside the checkout.
ifneq ($(wildcard ../shared/data/beir),)
export DIVE_DATA ?= $(abspath ../shared/data/beir)
endif
ifneq ($(wildcard ../shared/data/embeddings),)
export DIVE_EMBEDDINGS ?= $(abspath ../shared/data/embeddings)
endif
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: demo test lint setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# pip as a module: a venv stopped while it was made has pip but no bin/pip, which a
	# rerun of venv does not put back (every later make then failed: No such file)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dive demo

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
