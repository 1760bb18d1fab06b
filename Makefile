# Entry points of the README. Each target creates .venv when missing and installs with constraints.txt,
# so a CPU machine keeps the CPU build of torch 2.13.0 instead of pulling several GB of CUDA wheels.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
export PIP_CONSTRAINT := $(abspath constraints.txt)
export OMP_NUM_THREADS ?= 2

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,bench]"
	touch $@

demo: install
	$(PY) bench/bench_ssm.py --quick --output bench/results/bench_ssm_quick.json

test: install
	$(PY) -m pytest -q tests

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

bench: install
	$(PY) bench/bench_ssm.py
	$(PY) bench/bench_mambavision.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
