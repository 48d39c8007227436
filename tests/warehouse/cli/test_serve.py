"""`radgenome serve`: binds this machine only by default, says where it serves, warns where it serves others."""

from __future__ import annotations

import pytest
import uvicorn

from ingest.runner import build
from ingest.sources.demo import DemoSource
from tests.fixtures.cli import run
from warehouse.web import app as web_app


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve") / "wh"
    build(DemoSource(n=2), root, runner="local", progress=False)
    return root


@pytest.fixture
def served(monkeypatch):
    """What `uvicorn.Server.run` was asked to serve, instead of serving it."""
    seen = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.update(config=self.config))
    return seen


def test_binds_localhost_by_default(root, served, capsys):
    code, out, err = run(capsys, "serve", "-w", root)
    assert code == 0, err
    assert (served["config"].host, served["config"].port) == ("127.0.0.1", 8000)
    assert "at http://127.0.0.1:8000" in out and "snapshot 00001-" in out and "warning: serving" not in err


def test_another_host_is_served_with_a_warning(root, served, capsys, monkeypatch):
    monkeypatch.setattr(web_app, "VIEWER", root / "no-viewer.js")  # as an installation without `make web`
    code, out, err = run(capsys, "serve", "-w", root, "--host", "0.0.0.0", "--port", "8123")
    assert code == 0, err
    assert (served["config"].host, served["config"].port) == ("0.0.0.0", 8123)
    assert "anyone who can reach it can read this warehouse" in err and "make web" in err


def test_a_missing_warehouse_is_one_line(tmp_path, served, capsys):
    code, _, err = run(capsys, "serve", "-w", tmp_path / "nowhere")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "config" not in served
    code, _, err = run(capsys, "serve", "-w", tmp_path, "--port", "70000")
    assert code != 0 and "--port" in err
