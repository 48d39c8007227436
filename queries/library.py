"""The named query library: `queries/*.sql` loaded, checked and bound.

Each file is a header (see `queries.header`) and one read-only query in DuckDB SQL, written
in the portable subset (the hierarchy through `anatomy_closure`, no macros) so that
`queries.portable` can transpile it to Spark and Trino.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from queries.errors import ParameterError, QueryHeaderError, QueryNotApplicableError, UnknownQueryError
from queries.header import parse_example, parse_header
from queries.params import Param
from warehouse.core import schema
from warehouse.core.schema import TABLES

QUERY_DIR = Path(__file__).parent

# What an empty table means to a user, and how a warehouse gets its rows.
NEEDS_WHAT = {"region_stats": "region masks", "findings": "findings", "sentences": "grounded sentences",
              "case_labels": "case labels", "vqa": "question-answer pairs", "reports": "reports"}
NEEDS_HINT = {
    "region_stats": "ingest masks: a release's mask archives (ingest radgenome --release), or new CTs with "
                    "--segmenter (ingest folder)",
    "findings": "ingest reports: a release's region reports, CT-RATE reports (--ct-rate) or new reports "
                "(ingest folder --reports)",
    "sentences": "ingest reports: a release's region reports, CT-RATE reports (--ct-rate) or new reports",
    "case_labels": "ingest CT-RATE labels (--ct-rate), RadGenome case disorders, or reports to derive them from",
    "vqa": "ingest RadGenome's VQA files, or reports to generate pairs from",
}


@dataclass(frozen=True)
class NamedQuery:
    """One library file: header and SQL."""

    name: str
    description: str
    params: tuple[Param, ...]
    sql: str
    path: Path
    returns: tuple[str, ...] = ()
    example: Mapping[str, str] = field(default_factory=dict)
    needs: tuple[str, ...] = ()

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ParameterError(f"query {self.name!r} has no parameter {name!r}",
                             hint=f"its parameters: {', '.join(p.name for p in self.params) or 'none'}")

    def has_param(self, name: str) -> bool:
        return any(p.name == name for p in self.params)

    def bind(self, **values: Any) -> dict[str, Any]:
        """Every parameter's value: given ones converted, the others their defaults."""
        for key in values:
            self.param(key)
        return {p.name: p.convert(values[p.name]) if p.name in values else
                (p.convert(None) if p.required else p.default) for p in self.params}

    def check_applicable(self, row_counts: Mapping[str, int]) -> None:
        """Raise `QueryNotApplicableError` where a table the query needs is empty in the snapshot."""
        empty = [t for t in self.needs if not row_counts.get(t)]
        if empty:
            lacks = "; ".join(f"no {NEEDS_WHAT.get(t, t)} ({t} is empty)" for t in empty)
            raise QueryNotApplicableError(f"query {self.name!r} cannot apply to this warehouse: {lacks}",
                                          hint=NEEDS_HINT.get(empty[0]))

    def example_params(self) -> dict[str, Any]:
        """The header's example values, converted (used by docs, tests and the benchmark)."""
        return self.bind(**self.example)


def load_query(path: Path) -> NamedQuery:
    """Parse and check one library file."""
    header, body = parse_header(path.read_text(), path.name)
    for key in ("name", "description"):
        if not header.get(key):
            raise QueryHeaderError(f"{path.name}: header has no {key!r}")
    if header["name"] != path.stem:
        raise QueryHeaderError(f"{path.name}: header name {header['name']!r} differs from the file name")
    if not body:
        raise QueryHeaderError(f"{path.name}: no SQL below the header")
    returns = tuple(c.strip() for c in header.get("returns", "").split(",") if c.strip())
    needs = tuple(c.strip() for c in header.get("needs", "").split(",") if c.strip())
    unknown = sorted(set(needs) - set(TABLES))
    if unknown:
        raise QueryHeaderError(f"{path.name}: 'needs' names tables that do not exist: {unknown}")
    q = NamedQuery(name=header["name"], description=header["description"], params=header["param"],
                   sql=body, path=path, returns=returns,
                   example=parse_example(header.get("example", ""), path.name), needs=needs)
    tree = check_library_sql(body, path.name)
    used = sorted({p.name for p in tree.find_all(exp.Placeholder)})
    declared = sorted(p.name for p in q.params)
    if "" in used or used != declared:
        raise QueryHeaderError(f"{path.name}: parameters used in the SQL {used} differ from those declared "
                               f"{declared}", hint="use named $parameters only, each declared in the header")
    try:
        q.example_params()
    except ParameterError as e:
        raise QueryHeaderError(f"{path.name}: example: {e.message}") from None
    return q


# -- checks -------------------------------------------------------------------------------------
_WRITES = (exp.DML, exp.DDL, exp.Command, exp.Copy, exp.Attach, exp.Detach, exp.Pragma, exp.Set,
           exp.Use, exp.Install, exp.Describe, exp.Show)


def check_library_sql(sql: str, where: str = "<query>") -> exp.Expression:
    """Parse a library query with sqlglot and refuse anything but one read over the warehouse tables.

    Refused: several statements, statements that write or configure (INSERT, CREATE, COPY,
    ATTACH, SET, ...), table functions (`read_csv(...)`) and tables that are neither a
    warehouse table nor a CTE of the query. Returns the parsed tree.
    """
    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    except sqlglot.errors.ParseError as e:
        raise QueryHeaderError(f"{where}: SQL does not parse: {e}") from None
    if len(trees) != 1:
        raise QueryHeaderError(f"{where}: expected one SQL statement, got {len(trees)}")
    tree = trees[0]
    if not isinstance(tree, exp.Query):
        raise QueryHeaderError(f"{where}: a library query must be read-only (SELECT / WITH), "
                               f"this is {type(tree).__name__}")
    for node in tree.walk():
        if isinstance(node, _WRITES):
            raise QueryHeaderError(f"{where}: a library query must be read-only: found {node.key.upper()}")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise QueryHeaderError(f"{where}: table functions are not allowed ({table.this.sql('duckdb')})")
        if table.name.lower() not in set(schema.TABLES) | ctes:
            raise QueryHeaderError(f"{where}: unknown table {table.name!r}",
                                   hint=f"the warehouse's tables: {', '.join(schema.TABLES)}")
    return tree


def sqlglot_schema() -> dict[str, dict[str, str]]:
    """The warehouse schema as sqlglot wants it ({table: {column: type}}), from `warehouse.core.schema`."""
    import pyarrow as pa

    def sql_type(t: pa.DataType) -> str:
        if pa.types.is_list(t):
            return f"{sql_type(t.value_type)}[]"
        return {pa.string(): "VARCHAR", pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INT",
                pa.int64(): "BIGINT", pa.float32(): "FLOAT", pa.float64(): "DOUBLE",
                pa.bool_(): "BOOLEAN"}[t]

    return {name: {f.name: sql_type(f.type) for f in s} for name, s in schema.TABLES.items()}


def check_columns(sql: str) -> exp.Expression:
    """Qualify every column against the warehouse schema; an unknown column raises `QueryHeaderError`."""
    from sqlglot.optimizer.qualify import qualify

    try:
        return qualify(sqlglot.parse_one(sql, read="duckdb"), schema=sqlglot_schema(), dialect="duckdb",
                       validate_qualify_columns=True, quote_identifiers=False)
    except sqlglot.errors.OptimizeError as e:
        raise QueryHeaderError(f"column check failed: {e}") from None


# -- the library --------------------------------------------------------------------------------
@cache
def _library(directory: Path = QUERY_DIR) -> dict[str, NamedQuery]:
    return {q.name: q for q in map(load_query, sorted(directory.glob("*.sql")))}


def list_queries() -> list[NamedQuery]:
    """Every named query, by name."""
    return list(_library().values())


def get_query(name: str) -> NamedQuery:
    """A named query; an unknown name raises `UnknownQueryError` naming the closest ones."""
    lib = _library()
    if name in lib:
        return lib[name]
    close = difflib.get_close_matches(name, list(lib), n=3, cutoff=0.5)
    raise UnknownQueryError(f"no named query {name!r}",
                            hint=f"did you mean {', '.join(close)}?" if close else
                            "`radgenome query --list` shows them")


def render(name: str, **params: Any) -> tuple[str, dict[str, Any]]:
    """The query's SQL and its bound parameters, ready for `Warehouse.sql(sql, params)`."""
    q = get_query(name)
    return q.sql, q.bind(**params)


def library_text(*, parameters: bool = True) -> str:
    """Every named query, its signature and what it answers (with `parameters`, each parameter's
    description too): `radgenome query --list` and `python -m queries list`."""
    out = []
    for q in list_queries():
        out.append(f"{q.name}({', '.join(p.signature() for p in q.params)})")
        out.append(f"    {q.description}")
        if parameters:
            out += [f"    - {p.name}: {p.description}" for p in q.params]
    return "\n".join(out)


def library_markdown() -> str:
    """The library as a Markdown table: name, parameters, what it answers (the README's table)."""
    rows = ["| query | parameters | answers |", "|---|---|---|"]
    for q in list_queries():
        params = ", ".join(f"`{p.signature()}`".replace("|", "\\|") for p in q.params) or "—"  # a cell
        rows.append(f"| `{q.name}` | {params} | {q.description} |")
    return "\n".join(rows)
