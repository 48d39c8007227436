"""The LLM backends through a real engine (make test-llm): vLLM's offline engine and its
OpenAI-compatible server, with SmolLM2-135M-Instruct on the CPU. These check the plumbing
(schema-constrained answers, valid rows, the extractor recorded, per-report errors), not
accuracy: a 135M model grounds poorly."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ingest.structure import get_backend
from ingest.structure.backend import ReportInput
from ingest.structure.llm import engine_version
from warehouse.core import schema

pytestmark = [pytest.mark.llm, pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                                  reason="vllm is not installed: run make test-llm")]

REPORTS = [
    ReportInput("valid_1_a_1.nii.gz", "A 6 mm nodule is seen in the right lung upper lobe."),
    ReportInput("valid_2_a_1.nii.gz", "No pleural effusion was detected.", "Normal chest CT."),
    ReportInput("valid_3_a_1.nii.gz", "Not given."),
]
MAX_TOKENS = 768
# vLLM on the CPU: no torch.compile warm-up (minutes on two cores), a small context, the worker in process.
ENGINE = {"enforce_eager": True, "max_model_len": 4096, "distributed_executor_backend": "uni"}
SERVER_START_S = 420


def check_rows(results, extractor: str) -> None:
    """Every report has a result, in order; structured ones have valid rows that name `extractor`, the
    others a readable per-report error."""
    assert [r.case_id for r in results] == [r.case_id for r in REPORTS]
    assert results[2].error.startswith("empty findings")
    done = [r for r in results[:2] if r.ok]
    for r in results[:2]:
        if not r.ok:  # a tiny model may fail a report; the failure must be a clear per-report error
            assert r.error.startswith(("model answer", "no anatomy or finding")), r.error
    assert done, [r.error for r in results]
    for r in done:
        for table, rows in (("sentences", r.sentences), ("findings", r.findings), ("case_labels", r.labels)):
            assert schema.to_table(table, rows).num_rows == len(rows)
        assert r.sentences and r.labels and {row["extractor"] for row in r.sentences + r.findings} == {extractor}
        assert {row["source"] for row in r.labels} == {extractor}


def test_offline_engine_answers_in_one_batch_within_the_schema(smollm2: Path):
    jsonschema = pytest.importorskip("jsonschema")
    backend = get_backend("vllm", model=str(smollm2), max_tokens=MAX_TOKENS, **ENGINE)
    engine, chats, seen = backend.engine(), [], []
    chat, generate = engine.chat, backend.generate
    engine.chat = lambda convs, *a, **k: chats.append(len(convs)) or chat(convs, *a, **k)
    backend.generate = lambda requests: seen.append((requests, answers := generate(requests))) or answers
    try:
        results = backend.structure(REPORTS)
    finally:
        backend.close()
    assert chats == [2]  # one generate call for the batch; the report without findings is not sent
    ((requests, answers),) = seen
    for request, answer in zip(requests, answers, strict=True):
        if answer.finish_reason == "stop":  # constrained decoding: a finished answer fits the schema
            jsonschema.validate(json.loads(answer.text), request.schema)
        else:
            assert answer.finish_reason == "length"
    assert backend.extractor == f"vllm:SmolLM2-135M-Instruct.Q4_1@llm-0.1+vllm-{engine_version()}"
    check_rows(results, backend.extractor)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen, url: str, log: Path, limit_s: float) -> None:
    """Poll `url` until it answers 200; fail with the server's log tail if it exits or takes too long."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vLLM server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(2)
    pytest.fail(f"vLLM server not ready after {limit_s:.0f} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left after 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_openai_compatible_server(smollm2: Path, tmp_path: Path):
    port = free_port()
    log = tmp_path / "server.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(smollm2),
           "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port),
           "--max-model-len", str(ENGINE["max_model_len"]), "--enforce-eager",
           "--distributed-executor-backend", "uni"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}/health", log, SERVER_START_S)
        backend = get_backend("openai", base_url=f"http://127.0.0.1:{port}", model="smollm2",
                              max_tokens=MAX_TOKENS)
        results = backend.structure(REPORTS)
        check_rows(results, "openai:smollm2@llm-0.1")
        requests = log.read_text().count("POST /v1/chat/completions")
        assert requests == 2, log.read_text()[-3000:]
    finally:
        stop(proc)
