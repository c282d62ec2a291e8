# gruunet-edu: every target creates or reuses the local virtual environment .venv.
#
#   make lab      open the course (JupyterLab on notebooks/)
#   make demo     headless demo: train the tiny preset on sample data, evaluate, write figures
#   make test     the whole test suite (lint, notebook checks, unit tests, browser test, nbval)
#   make benchmarks  the speed and accuracy measurements quoted in the README
#   make figures  the README's architecture diagrams (docs/*.png), drawn from the paper preset
#
# Torch: TORCH_SPEC picks the version, TORCH_INDEX an optional package index, e.g.
#   make lab TORCH_INDEX=https://download.pytorch.org/whl/cpu     (small CPU-only build)
#   make lab TORCH_INDEX=https://download.pytorch.org/whl/cu128   (CUDA 12.8 build for NVIDIA GPUs)

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv lab demo test benchmarks figures check-notebooks notebooks lint format clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

# JupyterLab refuses to run as root unless told to (containers, cloud machines).
lab: venv
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

demo: venv
	$(VENV)/bin/gruunet-edu demo --force  # replaces the previous demo in runs/demo

# The pretrained tiny model that the evaluation and hidden-state notebooks share is cached here
# during the test run (trained once, deterministically, on the first use).
TEST_CACHE ?= $(CURDIR)/.cache/test-models

test: venv
	$(PY) -m ruff check .
	$(PY) -m gruunet_edu.course check
	GRUUNET_CACHE=$(TEST_CACHE) $(PY) -m pytest tests -m "not browser"
	GRUUNET_CACHE=$(TEST_CACHE) $(PY) -m pytest --nbval solutions/
	GRUUNET_CACHE=$(TEST_CACHE) $(PY) -m pytest --nbval-lax notebooks/
	bash scripts/install-browser.sh
	GRUUNET_CACHE=$(TEST_CACHE) $(PY) -m pytest tests -m browser

benchmarks: venv
	$(PY) benchmarks/bench_model.py
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_notebooks.py

figures: venv
	$(PY) -m gruunet_edu.viz.diagrams docs

check-notebooks: venv
	$(PY) -m gruunet_edu.course check

notebooks: venv
	$(PY) -m gruunet_edu.course build

lint: venv
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

format: venv
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

clean-venv:
	rm -rf $(VENV)
