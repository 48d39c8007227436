"""The LLM backends without a model: the OpenAI backend against a fake OpenAI-compatible server on
localhost (its 'model' is the rules backend), the prompt and schema, the Ray Data stage's row functions.
The real engine and server are tested in tests/llm (make test-llm)."""

from __future__ import annotations

import importlib.util
import json
import pickle
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pytest

from ingest.structure import get_backend
from ingest.structure.backend import ReportInput, RulesBackend
from ingest.structure.interchange import to_json
from ingest.structure.llm import (
    EXAMPLE_ANSWER,
    Answer,
    OpenAIBackend,
    VLLMBackend,
    parse_answer,
    region_names,
    request_schema,
    system_prompt,
    to_request,
)
from ingest.structure.ray_stage import postprocess, preprocess
from warehouse.core import schema
from warehouse.core.errors import WarehouseError

NODULE = "Trachea and both main bronchi are open. A 4 mm nodule is seen in the left lung lower lobe."
EFFUSION = "There is a right pleural effusion. No pericardial effusion."


class FakeServer(ThreadingHTTPServer):
    """Answers /v1/chat/completions with the rules backend's JSON, or the failure a report asks for
    (FLAKY503: 503 the first time, then the answer)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.paths: list[str] = []
        self.retry_counts: list[str | None] = []  # the SDK's x-stainless-retry-count of each request
        self.flaked: set[str] = set()
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.requests.append(body)
            self.server.paths.append(self.path)
            self.server.retry_counts.append(self.headers.get("x-stainless-retry-count"))
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        try:
            time.sleep(0.2)  # long enough for concurrent requests to overlap
            user = body["messages"][-1]["content"]
            if "HTTP500" in user:
                return self._send(500, b'{"error": "engine died"}')
            if "HTTP400" in user:
                return self._send(400, b'{"error": "bad request"}')
            if "FLAKY503" in user:
                with self.server.lock:
                    first = user not in self.server.flaked
                    self.server.flaked.add(user)
                if first:
                    return self._send(503, b'{"error": "warming up"}')
            findings = user.removeprefix("Findings: ").split("\nImpressions: ")[0]
            content = json.dumps(to_json(RulesBackend.parse(findings)))
            if "GARBLED" in user:
                content = content[: len(content) // 2]
            if "MOON" in user:
                content = json.dumps({"sentences": [{"text": user, "regions": ["the moon"], "findings": []}]})
            answer = {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                      "model": body["model"]}
            self._send(200, json.dumps(answer).encode())
        finally:
            self._leave()

    def _leave(self) -> None:
        with self.server.lock:
            if not getattr(self, "_left", False):
                self._left = True
                self.server.in_flight -= 1

    def _send(self, code: int, data: bytes) -> None:
        # Out of flight before the client can read the answer and send its next request.
        self._leave()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    srv = FakeServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_requests_carry_model_messages_and_json_schema(server):
    backend = get_backend("openai", base_url=server.url, model="fake-model")
    assert isinstance(backend, OpenAIBackend) and backend.url == server.url + "/v1"
    (res,) = backend.structure([ReportInput("c1", NODULE, "Nodule.")])
    assert res.ok, res.error
    (body,) = server.requests
    assert server.paths == ["/v1/chat/completions"]
    assert body["model"] == "fake-model" and body["temperature"] == 0 and body["max_tokens"] == 2048
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "left lung lower lobe" in body["messages"][0]["content"]
    assert body["messages"][1]["content"] == f"Findings: {NODULE}\nImpressions: Nodule."
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    sentence = fmt["json_schema"]["schema"]["properties"]["sentences"]["items"]
    assert sentence["properties"]["regions"]["items"]["enum"] == list(region_names())


def test_rows_match_the_rules_backend_and_record_the_extractor(server):
    reports = [ReportInput("c1", NODULE), ReportInput("c2", EFFUSION)]
    got = get_backend("openai", base_url=server.url + "/v1", model="fake-model").structure(reports)
    want = RulesBackend().structure(reports)
    for g, w in zip(got, want, strict=True):
        assert g.ok and g.region_report_rows() == w.region_report_rows()
        assert g.label_values() == w.label_values()
        for table, rows in (("sentences", g.sentences), ("findings", g.findings), ("case_labels", g.labels)):
            assert schema.to_table(table, rows).num_rows == len(rows) > 0
        assert {r["extractor"] for r in g.sentences + g.findings} == {"openai:fake-model@llm-0.1"}
        assert {r["source"] for r in g.labels} == {"openai:fake-model@llm-0.1"}


def test_a_batch_goes_out_concurrently_and_keeps_its_order(server):
    backend = OpenAIBackend(server.url, "fake-model", concurrency=4)
    reports = [ReportInput(f"c{k}", NODULE if k % 2 else EFFUSION) for k in range(8)]
    results = backend.structure(reports)
    assert len(server.requests) == 8 and 2 <= server.max_in_flight <= 4
    assert [r.case_id for r in results] == [f"c{k}" for k in range(8)]
    assert all(r.ok for r in results)
    assert ("lung/lung/left lung/left lung lower lobe" in dict(results[1].region_report_rows()))
    again = pickle.loads(pickle.dumps(backend))  # the SDK client it made stays behind, made again on use
    assert again._client is None and again.structure([ReportInput("c9", NODULE)])[0].ok


def test_bad_answers_become_per_report_errors(server):
    reports = [ReportInput("ok", NODULE), ReportInput("cut", "GARBLED " + NODULE), ReportInput("moon", "MOON"),
               ReportInput("down", "HTTP500 " + NODULE), ReportInput("empty", "Not given."),
               ReportInput("ok2", EFFUSION)]
    res = {r.case_id: r for r in OpenAIBackend(server.url, "m").structure(reports)}
    assert res["ok"].ok and res["ok2"].ok
    assert res["cut"].error.startswith("model answer is not valid JSON") and not res["cut"].sentences
    assert "'the moon'" in res["moon"].error and "sentence 1" in res["moon"].error
    assert "answered HTTP 500 (3 attempts)" in res["down"].error and "engine died" in res["down"].error
    assert res["empty"].error.startswith("empty findings")
    assert len(server.requests) == 7  # 4 once, the 500 three times (two retries); the empty report never


def test_transient_failures_are_retried_and_bad_requests_are_not(server):
    reports = [ReportInput("flaky", "FLAKY503 " + NODULE), ReportInput("bad", "HTTP400 " + NODULE)]
    res = {r.case_id: r for r in OpenAIBackend(server.url, "m", max_retries=2).structure(reports)}
    assert res["flaky"].ok, res["flaky"].error
    flaky = [c for b, c in zip(server.requests, server.retry_counts, strict=True)
             if "FLAKY503" in b["messages"][-1]["content"]]
    assert flaky == ["0", "1"]  # a 503, then the retry that succeeded
    assert res["bad"].error.startswith(f"{server.url}/v1 answered HTTP 400: ") and "bad request" in res["bad"].error
    assert len(server.requests) == 3  # the 400 was not retried: asking again cannot change it


def test_a_server_that_never_answers_is_a_clear_one_line_error():
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        (res,) = OpenAIBackend(url, "m", timeout=0.5, max_retries=1).structure([ReportInput("c", NODULE)])
    assert time.monotonic() - started < 10
    assert res.error.startswith(f"no answer from {url}/v1 within 0.5 s (2 attempts)"), res.error
    assert "\n" not in res.error and "raise the timeout" in res.error


def test_unreachable_server_and_missing_options_are_clear():
    with ThreadingHTTPServer(("127.0.0.1", 0), _Handler) as probe:
        port = probe.server_address[1]  # closed when the block ends: nothing listens there
    (res,) = OpenAIBackend(f"http://127.0.0.1:{port}", "m", timeout=5).structure([ReportInput("c", NODULE)])
    assert res.error.startswith(f"cannot reach http://127.0.0.1:{port}/v1")
    with pytest.raises(WarehouseError, match="needs a model"):
        get_backend("openai", base_url="http://127.0.0.1:1")
    with pytest.raises(WarehouseError, match="needs a server URL"):
        get_backend("openai", model="m")


def test_cli_structure_with_the_openai_backend(server, tmp_path):
    from typer.testing import CliRunner

    from warehouse.cli import app

    src = tmp_path / "reports.csv"
    src.write_text(f'VolumeName,Findings_EN\nv_1.nii.gz,"{NODULE}"\nv_2.nii.gz,"{EFFUSION}"\n')
    out = tmp_path / "regions.csv"
    result = CliRunner().invoke(app, ["structure", str(src), "-o", str(out), "--backend", "openai",
                                      "--base-url", server.url, "--model", "fake-model"])
    assert result.exit_code == 0, result.output
    assert "2 of 2 reports structured by openai:fake-model@llm-0.1" in result.output
    assert "v_1.nii.gz,lung/lung/left lung/left lung lower lobe," in out.read_text()


def test_answer_parsing_names_the_problem():
    with pytest.raises(WarehouseError, match="cut off at max_tokens"):
        parse_answer(Answer('{"sentences": [{"text": "Lungs', "length"))
    with pytest.raises(WarehouseError, match="does not fit the schema: answer: 'sentences' is a required"):
        parse_answer(Answer('{"regions": ["lung"]}'))
    with pytest.raises(WarehouseError, match=r"does not fit the schema: answer: \['lung'\] is not of type 'object'"):
        parse_answer(Answer('["lung"]'))
    with pytest.raises(WarehouseError, match="does not fit the schema: sentence 1: 'lung' is not of type 'object'"):
        parse_answer(Answer('{"sentences": ["lung"]}'))
    (p, *_) = parse_answer(Answer(json.dumps(EXAMPLE_ANSWER)))
    assert p.grounding.top_levels == ("trachea and bronchie",)


def test_the_worked_example_fits_the_request_schema():
    jsonschema.validate(EXAMPLE_ANSWER, request_schema(8))
    too_many = {"sentences": EXAMPLE_ANSWER["sentences"] * 3}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(too_many, request_schema(8))
    bad_region = json.loads(json.dumps(EXAMPLE_ANSWER).replace('"pleura"', '"the moon"'))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad_region, request_schema(8))
    assert json.dumps(EXAMPLE_ANSWER) in system_prompt()


def test_sentence_bound_grows_with_the_report_in_few_steps():
    bounds = {to_request(ReportInput("c", " ".join(["Lungs are clear."] * n)), 100).schema["properties"][
        "sentences"]["maxItems"] for n in range(1, 60)}
    assert bounds == {4, 8, 16, 32, 64, 128}


def test_vllm_backend_is_lazy_picklable_and_reports_a_missing_engine(monkeypatch):
    monkeypatch.setenv("RADGENOME_VLLM_ENGINE", '{"max_model_len": 4096, "enforce_eager": false}')
    backend = get_backend("vllm", model="/models/SmolLM2-135M-Instruct", enforce_eager=True)
    assert isinstance(backend, VLLMBackend) and backend._llm is None
    assert backend.extractor.startswith("vllm:/models/SmolLM2-135M-Instruct@llm-0.1")
    options = {"max_model_len": 4096, "enforce_eager": True}
    assert pickle.loads(pickle.dumps(backend)).engine_options == options
    if importlib.util.find_spec("vllm") is None:
        results = backend.structure([ReportInput("a", NODULE), ReportInput("b", EFFUSION)])
        assert [r.error.split(" (")[0] for r in results] == ["vLLM is not installed"] * 2
    with pytest.raises(WarehouseError, match="needs a model"):
        get_backend("vllm")
    with pytest.raises(WarehouseError, match="--base-url is for --backend openai"):
        get_backend("vllm", model="m", base_url="http://127.0.0.1:8000")
    monkeypatch.setenv("RADGENOME_VLLM_ENGINE", "max_model_len=4096")
    with pytest.raises(WarehouseError, match="RADGENOME_VLLM_ENGINE is not JSON"):
        get_backend("vllm", model="m")


def test_ray_stage_rows_in_and_out():
    row = {"case_id": "v_1", "findings": NODULE, "impressions": None, "AccessionNo": 7}
    pre = preprocess(row, max_tokens=512)
    assert pre["AccessionNo"] == 7 and pre["messages"][1]["content"] == f"Findings: {NODULE}"
    params = pre["sampling_params"]
    assert params["max_tokens"] == 512 and json.loads(params["structured_outputs"]["json"])["required"] == [
        "sentences"]
    answer = json.dumps(to_json(RulesBackend.parse(NODULE)))
    rec = postprocess({**pre, "generated_text": answer, "num_generated_tokens": 90}, "vllm:m@llm-0.1", 512)
    assert rec["error"] is None and rec["extractor"] == "vllm:m@llm-0.1"
    sentences = json.loads(rec["sentences"])
    assert schema.to_table("sentences", sentences).num_rows == len(sentences) > 1
    cut = postprocess({**pre, "generated_text": answer[:50], "num_generated_tokens": 512}, "vllm:m@llm-0.1", 512)
    assert "cut off at max_tokens" in cut["error"] and json.loads(cut["findings"]) == []
    empty = preprocess({"case_id": "v_2", "findings": "Not given."})
    assert empty["sampling_params"]["max_tokens"] == 1
    assert postprocess({**empty, "generated_text": "{"}, "x")["error"].startswith("empty findings")


def test_ray_stage_builds_its_processor_config():
    try:
        import ray.data.llm  # noqa: F401
    except ImportError as e:
        pytest.skip(f"ray.data.llm is not importable here ({e}); the LLM tier (make test-llm) runs this")
    from ingest.structure.ray_stage import processor_config

    config = processor_config("/models/m", batch_size=16, engine_kwargs={"max_model_len": 4096})
    assert config.model_source == "/models/m" and config.batch_size == 16
    assert config.engine_kwargs["max_model_len"] == 4096
