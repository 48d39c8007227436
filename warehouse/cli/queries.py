"""The `query` command (the named query library) and `print_transpiled` for `sql --dialect`."""

from __future__ import annotations

import sys
import warnings
from typing import Annotated

import typer

from warehouse.cli._output import (
    FormatOpt,
    OutputOpt,
    TimeoutOpt,
    open_warehouse,
    output_format,
    parse_params,
    query_run,
    write_frame,
)
from warehouse.core.errors import QueryLimitWarning


def print_transpiled(sql: str, dialect: str) -> int:
    """Print `sql` (DuckDB) transpiled to `dialect`; problems go to stderr. Returns the exit code:
    0 when the SQL is portable, 1 when a problem was reported."""
    from queries.portable import DIALECTS, TranspileError, transpile

    if dialect not in DIALECTS:
        raise TranspileError(f"unknown dialect {dialect!r}", hint=f"one of: {', '.join(DIALECTS)}")
    res = transpile(sql, dialect, pretty=True)
    if res.parameters:
        how = "positional ?, in this order" if dialect == "trino" else "named :markers"
        typer.echo(f"-- parameters ({how}): {', '.join(res.parameters)}")
    typer.echo(res.sql)
    for problem in res.problems:
        typer.secho(f"problem: {problem}", err=True, fg="yellow")
    if res.problems:
        typer.secho(f"{len(res.problems)} construct(s) would not run, or would mean something else, "
                    f"on {dialect}", err=True, fg="yellow")
    return 1 if res.problems else 0


def register(app: typer.Typer) -> None:
    @app.command("query")
    def query(
        name: Annotated[str | None, typer.Argument(help="A named query (see --list).")] = None,
        param: Annotated[list[str] | None, typer.Option(
            "--param", "-p", help="k=v; converted to the parameter's type from the query's header.")] = None,
        warehouse: Annotated[str | None, typer.Option("--warehouse", "-w", help="Warehouse root or URL.")] = None,
        list_: Annotated[bool, typer.Option("--list", help="List the named queries and their parameters.")] = False,
        show_sql: Annotated[bool, typer.Option("--show-sql", help="Print the SQL instead of running it.")] = False,
        dialect: Annotated[str | None, typer.Option(
            help="Print the query transpiled to spark or trino instead of running it.")] = None,
        fmt: FormatOpt = None,
        out: OutputOpt = None,
        snapshot: Annotated[str | None, typer.Option(help="Snapshot id (default: latest).")] = None,
        timeout: TimeoutOpt = None,
    ) -> None:
        """Run a named query of the library with typed parameters (--list shows them)."""
        from queries import get_query
        from queries.library import library_text

        if list_:
            typer.echo(library_text())
            return
        if not name:
            raise typer.BadParameter("give a query name, or --list", param_hint="NAME")
        q = get_query(name)
        params = q.bind(**parse_params(param))  # errors name the parameter before anything opens
        if dialect:
            raise typer.Exit(print_transpiled(q.sql, dialect))
        if show_sql:
            typer.echo(q.sql)
            return
        if warehouse is None:
            raise typer.BadParameter("--warehouse is required to run a query", param_hint="--warehouse")
        fmt = output_format(fmt, out)
        with query_run(timeout), open_warehouse(warehouse, snapshot) as wh, \
                warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always", QueryLimitWarning)
            df = wh.query(name, **params)
            write_frame(df, fmt, out)
            sys.stdout.flush()
            if any(issubclass(n.category, QueryLimitWarning) for n in notes):  # cut by its limit: say so
                total = wh.query_total(name, **params)
                if total > df.height:
                    typer.secho(f"note: {df.height:,} of {total:,} rows (the query's limit); "
                                f"-p limit={total} gives them all", err=True, fg="yellow")
