"""Report structuring as a Ray Data stage: a `ray.data.llm` processor over a vLLM engine.

For clusters with GPUs (Ray Data starts one vLLM engine per `concurrency` and streams
batches through it); on one machine `VLLMBackend` does the same job with less machinery.
The prompt, the JSON schema and the answer checks are `llm`'s, so the rows are the ones
the other backends write:

    ds = ray.data.read_parquet("snapshot/tables/reports.parquet")    # case_id, findings, impressions
    out = build_structuring_processor("/models/Qwen2.5-7B-Instruct", accelerator_type="H100")(ds)
    rows(out, "sentences").write_parquet("structured/sentences")

Each output record is one case: `case_id`, `extractor`, `error` (null when structured) and
its `sentences`, `findings` and `case_labels` rows as JSON text (nested rows do not fit
one Arrow type); `rows` expands one table. Needs `ray[data]` with Ray's LLM extras and vLLM
where the engine runs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from ingest.structure.backend import ReportInput, StructuringBackend, clean_text
from ingest.structure.llm import PROMPT_VERSION, Answer, LLMBackend, Request, engine_version, model_label, to_request
from warehouse.core.errors import WarehouseError

TABLES = ("sentences", "findings", "case_labels")


class _Replay(LLMBackend):
    """A backend whose 'model' is an answer already generated: checks and assembles it like the others."""

    name = "vllm"

    def __init__(self, extractor: str, answer: Answer) -> None:
        super().__init__(extractor)
        self._extractor, self.answer = extractor, answer

    @property
    def extractor(self) -> str:
        return self._extractor

    def generate(self, requests: list[Request]) -> list[Answer | Exception]:
        return [self.answer] * len(requests)


def _report(row: Mapping[str, Any]) -> ReportInput:
    return ReportInput(str(row["case_id"]), clean_text(row.get("findings")), clean_text(row.get("impressions")))


def preprocess(row: dict[str, Any], max_tokens: int = 2048, temperature: float = 0.0) -> dict[str, Any]:
    """A reports row plus the chat `messages` and `sampling_params` (schema-constrained JSON) for it;
    a report that cannot be structured asks for one token only (postprocess names its error)."""
    report = _report(row)
    request = to_request(report, max_tokens)
    skip = report.findings is None and not report.impressions
    return {**row, "messages": request.messages, "sampling_params": {
        "temperature": temperature, "max_tokens": 1 if skip else max_tokens,
        # JSON text, not a dict: the schema's mixed types do not fit one Arrow struct.
        "structured_outputs": {"json": json.dumps(request.schema)}}}


def postprocess(row: dict[str, Any], extractor: str, max_tokens: int = 2048) -> dict[str, Any]:
    """One case's record from the engine's `generated_text`: its rows as JSON text, or its error."""
    cut = int(row.get("num_generated_tokens") or 0) >= max_tokens
    backend: StructuringBackend = _Replay(extractor, Answer(str(row.get("generated_text") or ""),
                                                            "length" if cut else "stop"))
    result = backend.structure([_report(row)])[0]
    return {"case_id": result.case_id, "extractor": extractor, "error": result.error,
            "sentences": json.dumps(result.sentences), "findings": json.dumps(result.findings),
            "case_labels": json.dumps(result.labels)}


def processor_config(model: str, *, concurrency: int | tuple[int, int] = 1, batch_size: int = 64,
                     accelerator_type: str | None = None, engine_kwargs: Mapping[str, Any] | None = None,
                     **options: Any) -> Any:
    """The `vLLMEngineProcessorConfig`: `engine_kwargs` go to vLLM, `options` to the config."""
    try:
        from ray.data.llm import vLLMEngineProcessorConfig
    except ImportError as e:
        raise WarehouseError(f"ray.data.llm is not available ({e})", stage="structure",
                             hint="pip install 'ray[data,llm]' on the cluster") from None
    return vLLMEngineProcessorConfig(model_source=model, engine_kwargs=dict(engine_kwargs or {}),
                                     concurrency=concurrency, batch_size=batch_size,
                                     accelerator_type=accelerator_type, **options)


def build_structuring_processor(model: str, *, max_tokens: int = 2048, temperature: float = 0.0,
                                **config: Any) -> Any:
    """A Ray Data processor: reports rows (case_id, findings, impressions) in, one record per case out."""
    settings = processor_config(model, **config)  # raises if ray.data.llm is missing
    from ray.data import llm

    build = getattr(llm, "build_processor", None) or llm.build_llm_processor  # the older name
    version = engine_version()
    extractor = f"vllm:{model_label(model)}@{PROMPT_VERSION}" + (f"+vllm-{version}" if version else "")
    return build(settings,
                 preprocess=functools.partial(preprocess, max_tokens=max_tokens, temperature=temperature),
                 postprocess=functools.partial(postprocess, extractor=extractor, max_tokens=max_tokens))


def rows(records: Any, table: str) -> Any:
    """One table's rows (a Ray Dataset) from the processor's per-case records."""
    if table not in TABLES:
        raise WarehouseError(f"no table {table!r} in structured records (one of {', '.join(TABLES)})")
    return records.flat_map(lambda r: json.loads(r[table]))
