# Entry points of the README. install/demo/test/lint/bench use .venv, which holds exactly requirements/lock.txt (the
# tested set, fully pinned) plus the project (`pip install --no-deps -e .`). test-oldest runs the suite on every lower
# bound of pyproject.toml (requirements/lock-oldest.txt), test-latest on the newest releases with the caps removed.
# Every install goes through constraints.txt (PIP_CONSTRAINT, which pip's build subprocesses see too), so a CPU
# machine keeps the CPU build of torch 2.13.0 instead of pulling several GB of CUDA wheels.
VENV ?= .venv
VENV_OLDEST ?= .venv-oldest
VENV_LATEST ?= .venv-latest
VENV_TORCH_FLOOR ?= .venv-torch-floor
VENV_CUDA_STANDIN ?= .venv-cuda-standin
VENV_LMMS_EVAL ?= .venv-lmms-eval
VENV_SPACE ?= .venv-space
VENV_DEEPSPEED ?= .venv-deepspeed
PYTHON ?= python3
PY := $(VENV)/bin/python
LOCK := requirements/lock.txt
LOCK_OLDEST := requirements/lock-oldest.txt
export PIP_CONSTRAINT := $(abspath constraints.txt)
export OMP_NUM_THREADS ?= 2

# What a test run got, printed before pytest.
SHOW_VERSIONS = -c 'import importlib.metadata as m; print("versions:", ", ".join(f"{p} {m.version(p)}" for p in \
	("torch", "transformers", "peft", "accelerate", "datasets", "huggingface_hub", "tokenizers", "safetensors", "numpy")))'

# $(call install_lock,VENV,LOCK): the venv holds exactly the lock (anything else is removed) and the project.
define install_lock
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(PYTHON) tools/lock.py sync $(1)/bin/python $(2)
	$(1)/bin/python -m pip install --no-deps -e .
	$(1)/bin/python -m pip check
	touch $(1)/.installed
endef

.PHONY: install demo test-browser test test-slow test-upstream test-oldest test-latest test-torch-floor test-cuda-standin test-lmms-eval test-deepspeed lock check-lock lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: $(LOCK) pyproject.toml constraints.txt
	$(call install_lock,$(VENV),$(LOCK))

$(VENV_OLDEST)/.installed: $(LOCK_OLDEST) pyproject.toml constraints.txt
	$(call install_lock,$(VENV_OLDEST),$(LOCK_OLDEST))

# LoRA fine-tunes the shipped VLM-Mamba base on easy-VQA: accuracy before / after, examples.png, a folder to push
# (training/demo.py; under 10 min on 2 cores). DEMO_ARGS=--quick: the same path in seconds.
demo: install
	$(PY) -m mamba_multimodal.training.demo $(DEMO_ARGS)

test: install
	$(PY) $(SHOW_VERSIONS)
	$(PY) -m pytest -q tests

# Checks marked slow (multi-process runs through accelerate launch; the full demo with its accuracy target): CI runs
# them after the suite.
test-slow: install
	$(PY) -m pytest -q -m slow tests

# transformers' own model tests (ModelTesterMixin, BackboneTesterMixin, PipelineTesterMixin) over every model class,
# from transformers' sdist for the installed version, fetched through pip into .upstream/ (tools/upstream_tests.py
# reports what the sdist holds and what it lacks). UPSTREAM_VENV=.venv-oldest runs them on the oldest set.
UPSTREAM_VENV ?= $(VENV)
test-upstream: $(UPSTREAM_VENV)/.installed
	$(UPSTREAM_VENV)/bin/python tools/upstream_tests.py
	UPSTREAM_TESTS=1 $(UPSTREAM_VENV)/bin/python -m pytest -q tests/upstream

test-oldest: $(VENV_OLDEST)/.installed
	$(VENV_OLDEST)/bin/python $(SHOW_VERSIONS)
	$(VENV_OLDEST)/bin/python -m pytest -q tests

# Newest releases of every direct requirement, upper bounds removed (torch stays pinned by constraints.txt): run it
# before raising transformers' cap. Re-resolved on every run; the project goes in without its own (capped) deps.
test-latest:
	test -x $(VENV_LATEST)/bin/python || $(PYTHON) -m venv $(VENV_LATEST)
	$(PYTHON) tools/lock.py latest-requirements > $(VENV_LATEST)/requirements-latest.txt
	$(VENV_LATEST)/bin/python -m pip install -q --upgrade --upgrade-strategy eager -r $(VENV_LATEST)/requirements-latest.txt
	$(VENV_LATEST)/bin/python -m pip install -q --no-deps -e .
	$(VENV_LATEST)/bin/python $(SHOW_VERSIONS)
	$(VENV_LATEST)/bin/python -m pytest -q tests

# The suite on torch's lower bound in pyproject.toml, with everything else from the lock: how that bound was found
# (README: The torch you have). The registry's older torch is a CUDA build (~4.5 GB with its nvidia packages), which
# runs on a CPU too: a one-off check in its own venv, outside constraints.txt, not a CI step.
test-torch-floor:
	test -x $(VENV_TORCH_FLOOR)/bin/python || $(PYTHON) -m venv $(VENV_TORCH_FLOOR)
	env -u PIP_CONSTRAINT $(VENV_TORCH_FLOOR)/bin/python -m pip install -q "torch==$$($(PYTHON) tools/lock.py lower-bound torch)"
	grep -v '^torch==' $(LOCK) > $(VENV_TORCH_FLOOR)/lock-without-torch.txt
	env -u PIP_CONSTRAINT $(VENV_TORCH_FLOOR)/bin/python -m pip install -q --no-deps -r $(VENV_TORCH_FLOOR)/lock-without-torch.txt
	env -u PIP_CONSTRAINT $(VENV_TORCH_FLOOR)/bin/python -m pip install -q --no-deps -e .
	$(VENV_TORCH_FLOOR)/bin/python $(SHOW_VERSIONS)
	$(VENV_TORCH_FLOOR)/bin/python -m pytest -q tests

# The "cuda" dispatch on CPU tensors (tests/test_cuda_standin.py, README: GPU kernels): a copy of .venv (the lock and
# the project, so .venv itself stays exactly the lock) plus mamba-ssm and causal-conv1d from their sources with the
# CUDA builds skipped (FORCE_BUILD: their setup.py would otherwise try to download a prebuilt wheel) and the triton
# and einops their Python imports; their own reference functions stand in for the compiled kernels. Pinned: the
# versions whose kernel checks tests/cuda_standin.py mirrors. CUDA_STANDIN_REQUIRED turns the test's skip (packages
# missing) into a failure. About 4 minutes on CI's 2 cores, most of it copying .venv and installing triton.
CUDA_STANDIN_PACKAGES := triton==3.9.0 einops==0.8.2 wheel
CUDA_STANDIN_KERNELS := mamba-ssm==2.3.2.post1 causal-conv1d==1.7.0
$(VENV_CUDA_STANDIN)/.installed: $(VENV)/.installed
	rm -rf $(VENV_CUDA_STANDIN)
	cp -a $(VENV) $(VENV_CUDA_STANDIN)
	rm $(VENV_CUDA_STANDIN)/.installed  # .venv's, copied: this one is touched once all is in
	$(VENV_CUDA_STANDIN)/bin/python -m pip install -q --no-deps -e .
	$(VENV_CUDA_STANDIN)/bin/python -m pip install -q --no-deps $(CUDA_STANDIN_PACKAGES)
	MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE CAUSAL_CONV1D_SKIP_CUDA_BUILD=TRUE CAUSAL_CONV1D_FORCE_BUILD=TRUE \
		$(VENV_CUDA_STANDIN)/bin/python -m pip install -q --no-deps --no-build-isolation $(CUDA_STANDIN_KERNELS)
	touch $@

test-cuda-standin: $(VENV_CUDA_STANDIN)/.installed
	CUDA_STANDIN_REQUIRED=1 $(VENV_CUDA_STANDIN)/bin/python -m pytest -q tests/test_cuda_standin.py

# lmms-eval's generic chat model on a saved VLM folder (tests/test_lmms_eval.py, README: At scale): a copy of .venv
# plus lmms-eval 0.7.3 without its dependencies (they include torchvision, whose registry build is for CUDA torch and
# does not load with the CPU torch here: "operator torchvision::nms does not exist"; nothing on this path imports it)
# and the modules it imports on this path, pinned; filelock < 4 because lmms-eval patches `filelock._api`, which
# filelock 4 removed. LMMS_EVAL_REQUIRED turns the test's skip into a failure. 1.5 minutes on 2 idle cores, measured (the
# copy, the installs, and the test: it fine-tunes the shipped base 10 steps, then runs lmms-eval and `evaluate vqa` on
# 32 questions, 54 s idle; 92-143 s on cores shared with other jobs).
LMMS_EVAL_PACKAGE := lmms-eval==0.7.3
LMMS_EVAL_IMPORTS := filelock==3.32.7 loguru==0.7.3 sacrebleu==2.6.0 portalocker==4.4.2 tabulate==0.10.0 \
	colorama==0.4.6 lxml==6.2.0 evaluate==0.4.6 requests==2.34.2 urllib3==2.8.0 certifi==2026.10.19.post1 \
	charset-normalizer==3.5.3 pytz==2026.6 tenacity==9.2.1 aiohttp==3.14.5 aiohappyeyeballs==2.7.1 \
	aiosignal==1.4.0 attrs==26.1.0 frozenlist==1.8.0 multidict==7.2.1 propcache==0.5.4 yarl==1.25.1 \
	pytablewriter==1.2.1 DataProperty==1.1.1 mbstrdecoder==1.1.5 pathvalidate==3.3.1 tabledata==1.3.5 \
	tcolorpy==0.1.7 typepy==2.0.0 chardet==7.7.0
$(VENV_LMMS_EVAL)/.installed: $(VENV)/.installed
	rm -rf $(VENV_LMMS_EVAL)
	cp -a $(VENV) $(VENV_LMMS_EVAL)
	rm $(VENV_LMMS_EVAL)/.installed  # .venv's, copied: this one is touched once all is in
	$(VENV_LMMS_EVAL)/bin/python -m pip install -q --no-deps -e .
	$(VENV_LMMS_EVAL)/bin/python -m pip install -q --no-deps $(LMMS_EVAL_PACKAGE) $(LMMS_EVAL_IMPORTS)
	touch $@

test-lmms-eval: $(VENV_LMMS_EVAL)/.installed
	LMMS_EVAL_REQUIRED=1 $(VENV_LMMS_EVAL)/bin/python -m pytest -q -m slow tests/test_lmms_eval.py

# DeepSpeed ZeRO-2 and ZeRO-3 through `accelerate launch` and the train CLI on 2 CPU processes (tests/training/
# test_deepspeed.py, README: At scale): a copy of .venv plus the [deepspeed] extra at the version tested, through
# constraints.txt (CPU torch kept; deepspeed's wheel builds no ops, DS_BUILD_OPS=0 says so). On first use its CPU
# accelerator JIT-builds one C++ op (the shared-memory allreduce) with g++ into ~/.cache/torch_extensions: about
# 3 minutes on 2 shared cores, once. DEEPSPEED_REQUIRED turns the test's skip into a failure.
DEEPSPEED_PACKAGES := deepspeed==0.19.8
$(VENV_DEEPSPEED)/.installed: $(VENV)/.installed
	rm -rf $(VENV_DEEPSPEED)
	cp -a $(VENV) $(VENV_DEEPSPEED)
	rm $(VENV_DEEPSPEED)/.installed  # .venv's, copied: this one is touched once all is in
	$(VENV_DEEPSPEED)/bin/python -m pip install -q --no-deps -e .
	DS_BUILD_OPS=0 $(VENV_DEEPSPEED)/bin/python -m pip install -q $(DEEPSPEED_PACKAGES)
	touch $@

test-deepspeed: $(VENV_DEEPSPEED)/.installed
	DEEPSPEED_REQUIRED=1 $(VENV_DEEPSPEED)/bin/python -m pytest -q -m slow tests/training/test_deepspeed.py

# The Space app in a real browser (tests/test_browser.py, README: Share): `serve` on 127.0.0.1 with the shipped demo
# base, driven by Debian's headless Chromium through Playwright (never a browser Playwright downloads). A copy of .venv
# plus the [space] extra (gradio, not in the locks) and playwright, through constraints.txt; Chromium from apt (as
# root, once; skipped where it is already there). BROWSER_TEST_REQUIRED turns the test's skip into a failure.
# The test itself takes about 25 s (measured on 2 cores shared with other jobs); the copy and the installs come first.
SPACE_PACKAGES := gradio==6.31.0 playwright==1.65.3
$(VENV_SPACE)/.installed: $(VENV)/.installed
	rm -rf $(VENV_SPACE)
	cp -a $(VENV) $(VENV_SPACE)
	rm $(VENV_SPACE)/.installed  # .venv's, copied: this one is touched once all is in
	$(VENV_SPACE)/bin/python -m pip install -q --no-deps -e .
	$(VENV_SPACE)/bin/python -m pip install -q $(SPACE_PACKAGES)
	touch $@

/usr/bin/chromium:
	apt-get update -q  # a fresh machine's package lists are empty or old
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

test-browser: $(VENV_SPACE)/.installed /usr/bin/chromium
	BROWSER_TEST_REQUIRED=1 $(VENV_SPACE)/bin/python -m pytest -q -s -m slow tests/test_browser.py

# Rewrites both locks from pyproject.toml (needs the package index; README: Reproducible installs).
lock:
	$(PYTHON) tools/lock.py lock

# No network: fails if a lock no longer matches pyproject.toml (lower bounds, ranges, transformers' cap).
check-lock:
	$(PYTHON) tools/lock.py check

lint: install
	$(VENV)/bin/ruff check src tests bench tools
	$(VENV)/bin/ruff format --check src tests bench tools

bench: install
	$(PY) bench/bench_ssm.py
	$(PY) bench/bench_mambavision.py
	$(PY) bench/bench_coupled.py
	$(PY) bench/bench_vlm.py

# Decoding and prefill against llama.cpp and transformers' Mamba on the same weights (bench/bench_decode.py): llama.cpp
# is built once from the llama-cpp-python sdist into ~/.cache/mamba_multimodal/ (minutes on 2 cores).
# BENCH_DECODE_ARGS="--shape demo", "--skip-llama-cpp" or "--quick" (seconds) narrow it.
.PHONY: bench-decode
bench-decode: install
	$(PY) bench/bench_decode.py --build-llama-cpp $(BENCH_DECODE_ARGS)

clean:
	rm -rf $(VENV) $(VENV_OLDEST) $(VENV_LATEST) $(VENV_TORCH_FLOOR) $(VENV_CUDA_STANDIN) $(VENV_LMMS_EVAL) $(VENV_SPACE) $(VENV_DEEPSPEED) build dist src/*.egg-info .pytest_cache .upstream
