"""`import warehouse` stays light, and data flows forward: no package imports a later stage."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_warehouse_is_light():
    code = ("import sys; from warehouse import Warehouse; import warehouse.cli; "
            "print(sorted(m for m in ('torch', 'monai', 'ingest', 'ray', 'vllm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_ingest_never_imports_the_engine_or_exports():
    later = re.compile(r"^\s*(from|import) warehouse\.(api|engine|exports|torch|viewer|cli)\b", re.MULTILINE)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "ingest").rglob("*.py") if later.search(p.read_text())]
    assert offenders == []


def test_store_modules_import_ingest_only_in_the_cli():
    ingest = re.compile(r"^\s*(from|import) ingest\b", re.MULTILINE)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "warehouse").rglob("*.py")
                 if "cli" not in p.parts and ingest.search(p.read_text())]
    assert offenders == []
