"""The lock (lock/requirements.txt) agrees with pyproject.toml, and the test environment is the lock."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests import ROOT

_spec = importlib.util.spec_from_file_location("lock_tool", ROOT / "lock" / "lock.py")
lock_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock_tool)
MAIN_LOCK = ROOT / "lock" / "requirements.txt"
PROJECT = "radgenome-warehouse"


def _requirements(extras: tuple[str, ...] = ("dev",)) -> list[Requirement]:
    """pyproject's core dependencies and those of `extras`, self-references expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = [Requirement(d) for d in project["dependencies"]]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for d in project["optional-dependencies"][extra]:
            req = Requirement(d)
            if lock_tool.normalise(req.name) == PROJECT:
                todo.extend(req.extras)
            else:
                out.append(req)
    return out


@pytest.mark.parametrize("lock", ["requirements.txt", "spark.txt", "llm.txt", "llm-model.txt"])
def test_locks_were_made_from_the_current_dependency_lists(lock):
    first = (ROOT / "lock" / lock).read_text().splitlines()[0]
    assert first == lock_tool.DIGEST_PREFIX + lock_tool.dependency_digest(), (
        f"lock/{lock} was made before pyproject.toml's dependencies last changed: run `make lock`")


def test_every_dependency_is_locked_within_its_range():
    pins = lock_tool.pins(MAIN_LOCK)
    problems = []
    for req in _requirements():
        version = pins.get(lock_tool.normalise(req.name))
        if version is None:
            problems.append(f"{req.name} is not in the lock")
        elif not req.specifier.contains(Version(version).public if req.name == "torch" else version,
                                        prereleases=True):
            problems.append(f"{req.name}=={version} is outside pyproject's {req.specifier}")
    assert not problems, "; ".join(problems) + " — run `make lock`"


def test_the_cpu_torch_is_locked():
    assert lock_tool.pins(MAIN_LOCK)["torch"].endswith("+cpu")


def test_the_running_environment_is_the_lock():
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip(f"not the project's .venv ({sys.prefix}): the lock check is for `make test`")
    installed = {lock_tool.normalise(d.metadata["Name"]): d.version for d in md.distributions()}
    wrong = {name: (version, installed.get(name)) for name, version in lock_tool.pins(MAIN_LOCK).items()
             if installed.get(name) != version}
    assert not wrong, f"installed versions differ from lock/requirements.txt (locked, installed): {wrong}"


def test_the_viewer_lock_pins_every_package_with_its_hash():
    """lock/js: npm's lock for the vendored viewer; every package pinned with a sha512, and (once `make web`
    ran) the vendored licences name each one the module may bundle."""
    import json

    lock = json.loads((ROOT / "lock" / "js" / "package-lock.json").read_text())
    wanted = json.loads((ROOT / "lock" / "js" / "package.json").read_text())["dependencies"]
    packages = {k.removeprefix("node_modules/"): v for k, v in lock["packages"].items() if k}
    assert {k: packages[k]["version"] for k in wanted} == wanted  # exact versions, no ranges
    assert all(v["integrity"].startswith("sha512-") for v in packages.values())
    licences = ROOT / "warehouse" / "web" / "static" / "vendor" / "LICENSES.txt"
    if licences.is_file():
        text = licences.read_text()
        assert "BSD 2-Clause" in text
        assert all(f"== {k} {v['version']}" in text for k, v in packages.items() if not v.get("optional"))
