# Developer entry points. `make demo` and `make test` work on a fresh clone: they create the
# virtual environment in .venv and install the project into it (editable) on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# Pinned so that pip takes the release that lies on this machine's disk instead of downloading one.
TORCH  := torch==2.14.1 torchvision==0.29.1

.DEFAULT_GOAL := help
.PHONY: help install test lint demo bench bench-gpu docs clean peer-tests peer-tests-deepinv peer-tests-ci

help:
	@echo "make install  create $(VENV) and install the project with the [test,plot,examples,geo,dask,pde] extras"
	@echo "make test     ruff + the test suite (pytest, 2 workers)"
	@echo "make demo     restore a bundled satellite tile with VBLE-xz (image + uncertainty map) into outputs/"
	@echo "make bench    run benchmarks/bench_operators.py, writing bench_output/operators.json"
	@echo "make bench-gpu  VBLE-xz scene throughput on a GPU (Mpx/s, a few minutes), bench_output/satellite_throughput_gpu.json"
	@echo "make docs     build the HTML documentation into docs/_build/html"
	@echo "make peer-tests-deepinv  deepinv's own physics/optim tests on to_deepinv(...) wrappings"
	@echo "make peer-tests  run torchsde's and deepinv's own tests against this project (peer_tests/run.py)"
	@echo "make peer-tests-ci  their CI selection (a few minutes; part of .ci/run)"
	@echo "make clean    remove build outputs (keeps $(VENV))"

$(PY):
	$(PYTHON) -m venv $(VENV)

# The stamp is newer than pyproject.toml once the install has succeeded, so re-runs are no-ops.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install $(TORCH)
	$(PIP) install -e ".[test,plot,examples,geo,dask,pde]"
	touch $@

$(VENV)/.installed-docs: pyproject.toml $(VENV)/.installed
	$(PIP) install -e ".[docs]"
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n 2

demo: install
	$(PY) examples/satellite_demo.py --out outputs

bench: install
	$(PY) benchmarks/bench_operators.py --json bench_output/operators.json

# One command, a few minutes on one GPU: the CLI's default VBLE-xz path on a 2400^2 scene
# (the eval crop mirrored), 16 tiles per network call; reports Mpx/s.
bench-gpu: install
	$(PY) benchmarks/bench_satellite_throughput.py --device cuda --modes new --scene 2400 \
		--tile-batch 16 --json bench_output/satellite_throughput_gpu.json

# deepinv's test files come from the installed wheel and are copied to a cache outside the repo.
peer-tests-deepinv: install
	OMP_NUM_THREADS=1 $(PY) peer_tests/deepinv_suite.py --json bench_output/peer_tests_deepinv.json

# Warnings are errors (-W); --keep-going reports all of them before failing. The gallery
# examples run during the build. check_offline.py fails on any script or style from the network.
docs: $(VENV)/.installed-docs
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html
	$(PY) docs/check_offline.py docs/_build/html

clean:
	rm -rf build dist *.egg-info demo_output outputs bench_output \
	       docs/_build docs/auto_examples docs/api/generated docs/sg_execution_times.rst \
	       .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# The peers' own test suites (torchsde's from its sdist on PyPI, deepinv's from its wheel) routed
# to this project; files are cached outside the repository (~/.cache/sciml-inverse/peer-tests).
peer-tests: install
	$(PY) peer_tests/run.py --suite all --mode ours --json bench_output/peer_tests.json

# The CI selection (run.py --ci; .ci/run): fails on any selected test that fails with this project
# unless it is a documented difference. The first run downloads torchsde's sdist (network).
peer-tests-ci: install
	OMP_NUM_THREADS=1 $(PY) peer_tests/run.py --suite all --mode ours --ci --workers 2 \
	    --json bench_output/peer_tests_ci.json
