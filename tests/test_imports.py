"""The layer rules of docs/architecture.md, checked over every import in the source tree.

Every project import counts: at module level, inside functions and under ``TYPE_CHECKING``.
A module belongs to the most specific layer whose package contains it (`LAYERS`, most specific
first); it may import its own layer and the layers `MAY_IMPORT` names, nothing else; and no
module reaches itself through a chain of imports (a cycle), within a layer or across layers.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ROOT

PACKAGES = ("warehouse", "ingest", "queries")

# layer -> the packages it is made of (a module is in the layer of its longest matching package)
LAYERS = {
    "core": ["warehouse.core"],
    "store": ["warehouse.store"],
    "ingest": ["ingest"],
    "queries": ["queries"],
    "surface": ["warehouse"],
    "cli": ["warehouse.cli"],
}
# layer -> the other layers it may import (data flows forward: sources -> ingest -> store -> surface)
MAY_IMPORT = {
    "core": set(),
    "store": {"core"},
    "queries": {"core"},
    "ingest": {"core", "store"},
    "surface": {"core", "store", "queries"},
    "cli": {"core", "store", "queries", "ingest", "surface"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def layer_of(module: str) -> str:
    best = max(((pkg, layer) for layer, pkgs in LAYERS.items() for pkg in pkgs
                if module == pkg or module.startswith(pkg + ".")), key=lambda t: len(t[0]))
    return best[1]


def _known(name: str) -> str:
    """The project module `name` refers to: itself, or the package holding the attribute it names."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports(module: str) -> dict[str, int]:
    """Project modules `module` imports, anywhere in the file, each with the first line doing so."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for t in targets:
            if t.split(".")[0] in PACKAGES:
                out.setdefault(_known(t), node.lineno)
    out.pop(module, None)
    return out


GRAPH = {m: imports(m) for m in sorted(MODULES)}


def test_every_layer_is_named():
    assert set(LAYERS) == set(MAY_IMPORT)
    assert all(layer_of(m) in LAYERS for m in MODULES)


def test_layers_import_only_what_their_rules_allow():
    broken = [f"{MODULES[m].relative_to(ROOT)}:{line}: {layer_of(m)} imports {t} ({layer_of(t)})"
              for m, targets in GRAPH.items() for t, line in targets.items()
              if layer_of(t) != layer_of(m) and layer_of(t) not in MAY_IMPORT[layer_of(m)]]
    assert broken == [], "\n".join(broken)


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm;
    written here because the standard library has none and this test must not need networkx)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert find_cycles(GRAPH) == []


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert find_cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize(("module", "layer"), [
    ("warehouse.core.schema", "core"), ("warehouse.store.arrays.store", "store"), ("warehouse.api", "surface"),
    ("warehouse", "surface"), ("warehouse.cli.core", "cli"), ("ingest.runner", "ingest"), ("queries", "queries"),
])
def test_modules_fall_in_their_layer(module, layer):
    assert layer_of(module) == layer


def test_architecture_doc_names_every_layer():
    doc = (ROOT / "docs/architecture.md").read_text()
    missing = [f"{layer}: {pkg}" for layer, pkgs in LAYERS.items() for pkg in pkgs if f"`{pkg}`" not in doc]
    assert missing == [], "docs/architecture.md does not name these layers' packages"


def test_import_warehouse_is_light():
    code = ("import sys; from warehouse import Warehouse; import warehouse.cli; "
            "print(sorted(m for m in ('torch', 'monai', 'ingest', 'ray', 'vllm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
