"""Portable SQL: the library's DuckDB queries transpiled to Spark and Trino with sqlglot, checked.

sqlglot translates what it knows and passes the rest through unchanged, silently. This
module reports, instead of emitting silently:

* functions sqlglot does not know (`exp.Anonymous`: DuckDB macros, DuckDB-only functions);
* constructs that do not survive translation, from the `UNSAFE` table (lambdas, list
  comprehensions, ordered aggregates, `* EXCLUDE`/`REPLACE`, `COLUMNS(...)`, ...);
* anything sqlglot itself flags as unsupported while generating;
* generated SQL that does not parse back in the target dialect;
* every function in the generated SQL that is not a built-in of the target engine, read
  from `catalogs/<dialect>_functions.txt` (this catches DuckDB-only functions that sqlglot
  knows and emits unchanged, e.g. `COLUMNS`, `PERCENTILE_CONT(x, 0.5)` for Trino).

Parameters: DuckDB's ``$name`` becomes ``:name`` for Spark (``spark.sql(q, args={...})``)
and ``?`` for Trino, whose prepared statements are positional; `TranspileResult.parameters`
lists the names in the order they are bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel

from queries.errors import QueryLibraryError
from queries.library import get_query, list_queries

DIALECTS: tuple[str, ...] = ("spark", "trino")
CATALOG_DIR = Path(__file__).with_name("catalogs")
# Rendered like a call but parsed as syntax by the engines (not in their function lists).
_SYNTAX = frozenset({"cast", "try_cast", "extract", "case", "exists", "interval", "row"})
_MARK = "__rgw_param_{}__"


class TranspileError(QueryLibraryError):
    """SQL that cannot be transpiled at all (it does not parse, or names an unknown dialect)."""


@dataclass(frozen=True)
class Problem:
    """One construct that would not run, or would mean something else, in the target engine."""

    kind: str  # unknown-function, unsafe, unsupported, not-builtin, reparse
    message: str
    sql: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}" + (f" [{self.sql}]" if self.sql else "")


@dataclass(frozen=True)
class TranspileResult:
    """The transpiled SQL, what is wrong with it, and the parameter order it binds."""

    dialect: str
    sql: str
    problems: tuple[Problem, ...]
    parameters: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Rule:
    """A construct that sqlglot would pass through or change: its test, the dialects, the reason."""

    name: str
    matches: Callable[[exp.Expression], bool]
    dialects: frozenset[str]
    message: str


def _ordered_aggregate(node: exp.Expression) -> bool:
    if isinstance(node, exp.WithinGroup):
        return True
    return isinstance(node, exp.AggFunc) and any(isinstance(a, exp.Order) for a in node.iter_expressions())


def _star_modifier(node: exp.Expression) -> bool:
    return isinstance(node, exp.Star) and any(node.args.get(k) for k in node.args if k != "this")


_BOTH = frozenset(DIALECTS)
_PERCENTILES = (exp.PercentileCont, exp.PercentileDisc, exp.Quantile, exp.Median, exp.ApproxQuantile)
UNSAFE: tuple[Rule, ...] = (
    Rule("lambda", lambda n: isinstance(n, exp.Lambda), _BOTH,
         "lambda (list_transform / list_filter ...): array functions differ in names, indexing and nulls"),
    Rule("list-comprehension", lambda n: isinstance(n, exp.Comprehension), _BOTH,
         "DuckDB list comprehension [x FOR x IN l] has no Spark or Trino form"),
    Rule("ordered-aggregate", _ordered_aggregate, _BOTH,
         "aggregate with ORDER BY: Spark's collect_list drops the order, the others are written differently"),
    Rule("percentile", lambda n: isinstance(n, _PERCENTILES), _BOTH,
         "exact percentiles differ: Spark wants WITHIN GROUP, Trino has only approx_percentile"),
    Rule("star-modifier", _star_modifier, _BOTH,
         "* EXCLUDE / REPLACE / RENAME is DuckDB syntax: list the columns"),
    Rule("columns-expression", lambda n: isinstance(n, exp.Columns), _BOTH,
         "COLUMNS(...) is DuckDB-only: list the columns"),
    Rule("positional-column", lambda n: isinstance(n, exp.PositionalColumn), _BOTH,
         "#n positional columns are DuckDB-only"),
    Rule("macro", lambda n: isinstance(n, exp.Create) and (n.args.get("kind") or "").upper() == "MACRO",
         _BOTH, "DuckDB macros do not exist elsewhere: inline the expression"),
    Rule("string-contains", lambda n: isinstance(n, exp.Contains), frozenset({"trino"}),
         "Trino's contains() tests array membership, not substrings: use strpos(...) > 0"),
    Rule("string-agg", lambda n: isinstance(n, exp.GroupConcat), frozenset({"trino"}),
         "Trino's listagg needs WITHIN GROUP (ORDER BY ...); sqlglot leaves it out"),
    Rule("group-by-all", lambda n: isinstance(n, exp.Group) and bool(n.args.get("all")), frozenset({"trino"}),
         "GROUP BY ALL means something else in Trino: list the grouping columns"),
    Rule("table-function", lambda n: isinstance(n, exp.Table) and isinstance(n.this, exp.Func), _BOTH,
         "DuckDB table functions (read_parquet, range, ...) are not portable"),
)


@cache
def catalog(dialect: str) -> frozenset[str]:
    """Built-in function names of the target engine (lower case), from its catalog file."""
    path = CATALOG_DIR / f"{dialect}_functions.txt"
    names = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return frozenset(names)


def _emitted_name(node: exp.Func, dialect: str) -> str | None:
    """The name a function call is written with in `dialect`, or None where it renders as syntax."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(", node.sql(dialect))
    return m.group(1).lower() if m else None


def _snippet(node: exp.Expression) -> str:
    text = node.sql("duckdb")
    return text if len(text) <= 80 else text[:77] + "..."


def source_problems(tree: exp.Expression, dialect: str) -> list[Problem]:
    """Problems found in the DuckDB tree: unknown functions and the `UNSAFE` constructs."""
    out = []
    for node in tree.walk():
        if isinstance(node, exp.Anonymous | exp.AnonymousAggFunc):
            out.append(Problem("unknown-function", f"{node.name}() is not a function sqlglot knows (a DuckDB "
                               f"macro or DuckDB-only function): it would pass through untranslated",
                               _snippet(node)))
        for rule in UNSAFE:
            if dialect in rule.dialects and rule.matches(node):
                out.append(Problem("unsafe", f"{rule.name}: {rule.message}", _snippet(node)))
    return out


def target_problems(sql: str, dialect: str) -> list[Problem]:
    """Problems in the generated SQL: it must parse back, and call only the engine's built-ins."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError as e:
        return [Problem("reparse", f"the generated {dialect} SQL does not parse back: {str(e).splitlines()[0]}")]
    known, out, seen = catalog(dialect), [], set()
    for node in tree.find_all(exp.Func):
        name = _emitted_name(node, dialect)
        if name and name not in known and name not in _SYNTAX and name not in seen:
            seen.add(name)
            out.append(Problem("not-builtin", f"{name.upper()} is not a built-in function of {dialect}",
                               _snippet(node)))
    return out


def transpile(sql: str, dialect: str, *, read: str = "duckdb", pretty: bool = False) -> TranspileResult:
    """`sql` (one statement, in `read`'s dialect) written for `dialect`, with every problem found."""
    if dialect not in DIALECTS:
        raise TranspileError(f"unknown target dialect {dialect!r}", hint=f"one of: {', '.join(DIALECTS)}")
    try:
        trees = [t for t in sqlglot.parse(sql, read=read) if t is not None]
    except sqlglot.errors.ParseError as e:
        raise TranspileError(f"SQL does not parse: {str(e).splitlines()[0]}") from None
    if len(trees) != 1:
        raise TranspileError(f"expected one SQL statement, got {len(trees)}")
    tree = trees[0]
    problems = source_problems(tree, dialect)

    names: list[str] = []

    def mark(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name:
            names.append(node.name)
            return exp.Placeholder(this=_MARK.format(len(names) - 1))
        return node

    marked = tree.copy().transform(mark)
    generator = Dialect.get_or_raise(dialect).generator(unsupported_level=ErrorLevel.IGNORE, pretty=pretty)
    out = generator.generate(marked)
    problems += [Problem("unsupported", m) for m in dict.fromkeys(generator.unsupported_messages)]
    problems += target_problems(out, dialect)

    # Put the parameters back: named for Spark, positional (in text order) for Trino.
    order = sorted(range(len(names)), key=lambda i: out.find(_MARK.format(i)))
    for i in range(len(names)):
        out = out.replace(f":{_MARK.format(i)}", "?" if dialect == "trino" else f":{names[i]}")
    in_order = tuple(names[i] for i in order)
    bound = in_order if dialect == "trino" else tuple(dict.fromkeys(in_order))
    return TranspileResult(dialect, out, tuple(problems), bound)


def snapshot_text(name: str, dialect: str) -> str:
    """A library query's generated SQL as kept in `snapshots/<dialect>/<name>.sql`."""
    res = transpile(get_query(name).sql, dialect, pretty=True)
    how = "positional ? markers, in this order" if dialect == "trino" else "named :markers"
    # No generator version in the header: the SQL is the snapshot, whichever sqlglot wrote it.
    lines = [f"-- {dialect} SQL of queries/{name}.sql, generated by sqlglot.",
             "-- Regenerate with: python -m queries snapshots",
             f"-- parameters ({how}): {', '.join(res.parameters) or 'none'}"]
    lines += [f"-- PROBLEM {p}" for p in res.problems]
    return "\n".join(lines) + "\n" + res.sql + "\n"


def snapshot_path(name: str, dialect: str) -> Path:
    return Path(__file__).with_name("snapshots") / dialect / f"{name}.sql"


def write_snapshots() -> list[Path]:
    """(Re)write every library query's Spark and Trino snapshot; returns the files changed."""
    changed = []
    for q in list_queries():
        for d in DIALECTS:
            path, text = snapshot_path(q.name, d), snapshot_text(q.name, d)
            if not path.exists() or path.read_text() != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                changed.append(path)
    return changed
