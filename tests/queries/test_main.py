"""`python -m queries`: the library's `snapshots` and `list [--markdown]` commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import queries.__main__ as cli
from queries import list_queries
from queries.library import library_markdown
from tests import ROOT


def test_list_names_each_query_with_its_parameters():
    res = CliRunner().invoke(cli.app, ["list"])
    assert res.exit_code == 0
    lines = res.output.splitlines()
    assert len(lines) == 2 * len(list_queries())
    q = list_queries()[0]
    assert lines[:2] == [f"{q.name}({', '.join(p.signature() for p in q.params)})", f"    {q.description}"]


def test_list_markdown_is_the_readme_table():
    res = CliRunner().invoke(cli.app, ["list", "--markdown"])
    assert res.exit_code == 0 and res.output == library_markdown() + "\n"


def test_snapshots_says_what_it_rewrote(monkeypatch):
    monkeypatch.setattr(cli, "write_snapshots", lambda: [Path("queries/snapshots/x.spark.sql")])
    res = CliRunner().invoke(cli.app, ["snapshots"])
    assert res.exit_code == 0
    assert res.output == "wrote queries/snapshots/x.spark.sql\n1 snapshot file(s) changed\n"


def test_python_dash_m_has_help_and_refuses_an_unknown_command():
    run = [sys.executable, "-m", "queries"]
    ok = subprocess.run([*run, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and "snapshots" in ok.stdout and "list" in ok.stdout
    bad = subprocess.run([*run, "nope"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "No such command" in bad.stderr
