"""The test tree mirrors the source tree: ``tests/<package path>/test_<module>[_<aspect>].py`` tests
``<package path>/<module>.py``, and every source module with functions or classes has one.

`NO_TEST_MODULE` names the modules tested only through others, each with where; a new module
with logic must get its own test module or a line there.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests import ROOT

MIRRORED = ("warehouse", "ingest", "queries", "benchmarks")
# Folders of tests that span layers or tiers, not one module.
NOT_MIRRORED = {"integration", "fixtures", "llm"}
NO_TEST_MODULE = {
    "ingest/sources/demo_case.py": "tests/ingest/sources/test_demo.py",
    "ingest/sources/demo_paint.py": "tests/ingest/sources/test_demo.py",
    "ingest/sources/demo_report.py": "tests/ingest/sources/test_demo.py",
    "ingest/sources/demo_volume.py": "tests/ingest/sources/test_demo.py",
    "ingest/segment/base.py": "tests/ingest/segment/test_imported.py (region_for_name, make_segmenter)",
    "ingest/structure/ray_stage.py": "tests/ingest/structure/test_llm.py and tests/llm/test_ray_stage.py",
    "warehouse/__init__.py": "tests/test_imports.py (a lazy `Warehouse`: importing the package stays light)",
    "ingest/sources/demo_vocab.py": "tests/ingest/sources/test_demo.py",
    "queries/errors.py": "error classes; tests/warehouse/core/test_errors.py pickles them",
    "benchmarks/ingest.py": "a benchmark script", "benchmarks/loader.py": "a benchmark script",
    "benchmarks/masks.py": "a benchmark script", "benchmarks/pipeline.py": "a benchmark script",
    "benchmarks/release_text.py": "a benchmark script", "benchmarks/structure.py": "a benchmark script",
    "benchmarks/vqa_counts.py": "a benchmark script",
    "benchmarks/_paper/generate.py": "tests/benchmarks/test_paper_scale.py",
    "benchmarks/_paper/pandas_answers.py": "tests/benchmarks/test_paper_scale.py",
    "benchmarks/_paper/tables.py": "tests/benchmarks/test_paper_scale.py",
}


def _test_stem(module: Path) -> str:
    """What a module's test file is named after: its name, ``main``/``init`` for ``__main__``/``__init__``,
    a private module without its underscore (``_output`` -> ``output``)."""
    return {"__main__": "main", "__init__": "init"}.get(module.stem, module.stem.lstrip("_"))


def _has_logic(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in tree.body)


def _tested_by(source: Path) -> list[Path]:
    folder, stem = ROOT / "tests" / source.relative_to(ROOT).parent, _test_stem(source)
    return sorted(folder.glob(f"test_{stem}.py")) + sorted(folder.glob(f"test_{stem}_*.py"))


def test_every_test_module_names_its_source_module():
    orphans = []
    for test in (ROOT / "tests").rglob("test_*.py"):
        rel = test.relative_to(ROOT / "tests")
        if len(rel.parts) == 1 or rel.parts[0] in NOT_MIRRORED:
            continue
        name = test.stem.removeprefix("test_")
        stems = {_test_stem(m) for m in (ROOT / rel.parent).glob("*.py")}
        if not any(name == s or name.startswith(s + "_") for s in stems):  # test_<module>[_<aspect>]
            orphans.append(str(rel))
    assert not orphans, f"test modules that mirror no source module: {orphans}"


def test_every_module_with_logic_has_its_test_module():
    sources = [p for pkg in MIRRORED for p in (ROOT / pkg).rglob("*.py") if _has_logic(p)]
    missing = [str(p.relative_to(ROOT)) for p in sources
               if not _tested_by(p) and str(p.relative_to(ROOT)) not in NO_TEST_MODULE]
    assert not missing, f"give these modules a test module (or say in NO_TEST_MODULE where they are tested): {missing}"


def test_modules_said_to_have_no_test_module_still_have_none():
    stale = [m for m in NO_TEST_MODULE if not (ROOT / m).is_file() or _tested_by(ROOT / m)]
    assert not stale, f"NO_TEST_MODULE names modules that are gone or now have their own tests: {stale}"
