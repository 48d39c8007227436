"""The Ray Data stage builds its processor around the tier's model (make test-llm). Running it needs
a cluster with GPUs (Ray Data's vLLM stage asks for GPU bundles), so it is built, not run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = [pytest.mark.llm, pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                                  reason="vllm is not installed: run make test-llm")]


def test_processor_builds_with_the_stage_functions(smollm2: Path):
    pytest.importorskip("ray.data.llm", reason="ray.data.llm is not importable (pip install 'ray[data]')")
    import ray

    from ingest.structure.ray_stage import build_structuring_processor

    try:
        processor = build_structuring_processor(str(smollm2), batch_size=8, max_tokens=256,
                                                engine_kwargs={"max_model_len": 4096, "enforce_eager": True})
        stages = [type(s).__name__ for s in processor.stages.values()]
        assert "vLLMEngineStage" in stages and "ChatTemplateStage" in stages
    finally:
        ray.shutdown()
