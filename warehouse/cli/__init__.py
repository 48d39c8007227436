"""`radgenome`: the command line. Each command mirrors a method of `warehouse.Warehouse`
or an ingest/export entry point; errors print as one line with an exit code."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import Annotated

import typer

from warehouse.cli._output import CTRL_C, interrupted
from warehouse.core.errors import WarehouseError

try:  # typer vendors click (0.2x); older typer raises click's own exceptions
    from typer._click import exceptions as cx
except ImportError:  # pragma: no cover
    from click import exceptions as cx  # type: ignore[no-redef]

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
ingest_app = typer.Typer(help="Build or extend a warehouse from a source.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")

# Command modules, each with register(app) and optionally register_ingest(ingest_app).
_MODULES = ("core", "structure", "export", "pipeline", "release", "queries", "serve")
_debug = {"on": False}  # --debug or RADGENOME_DEBUG=1: errors show their traceback


@app.callback()
def _options(debug: Annotated[bool, typer.Option(
        "--debug", help="Show the traceback of an error (also: RADGENOME_DEBUG=1).")] = False) -> None:
    _debug["on"] = _debug["on"] or debug


def _register() -> None:
    for name in _MODULES:
        mod = import_module(f"warehouse.cli.{name}")
        mod.register(app)
        if hasattr(mod, "register_ingest"):
            mod.register_ingest(ingest_app)


_register()


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point. An error a user can cause prints as one line on stderr, `error: ...`, and
    exits with its code: 2 for a usage mistake (options, SQL, parameters, paths), 1 for failed work.
    A traceback appears only with --debug (or RADGENOME_DEBUG=1), or for a bug. Ctrl-C prints one line,
    `interrupted` (or what to do: a build says how to resume), and exits 130."""
    _debug["on"] = os.environ.get("RADGENOME_DEBUG", "").strip() not in ("", "0")
    CTRL_C["said"] = False
    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="radgenome", standalone_mode=False)
    except KeyboardInterrupt:  # before a command ran (typer turns Ctrl-C inside one into exit 130)
        code = 130
    except cx.NoArgsIsHelpError as e:  # a bare group: its help was the answer
        if e.message.strip():
            typer.echo(e.message, err=True)
        code = e.exit_code
    except Exception as e:
        explained = None if _debug["on"] else explain(e)
        if explained is None:
            raise
        message, code, details = explained
        typer.secho(f"error: {message}", err=True, fg="red")
        for line in details:
            typer.echo(line, err=True)
        CTRL_C["said"] = True
    if code == 130:
        interrupted()  # one line, unless the command said it
    sys.exit(code if isinstance(code, int) else 0)


def explain(e: BaseException) -> tuple[str, int, list[str]] | None:
    """(one-line message, exit code, detail lines) for an error a user can cause; None for a bug."""
    if isinstance(e, cx.UsageError):
        see = f" — see `{e.ctx.command_path} --help`" if e.ctx is not None else ""
        return one_line(e.format_message()) + see, e.exit_code, []
    if isinstance(e, cx.ClickException):
        return one_line(e.format_message()), e.exit_code, []
    if isinstance(e, typer.Abort):
        return "aborted", 1, []
    if isinstance(e, WarehouseError):
        return one_line(str(e)), e.exit_code, list(getattr(e, "details", []))
    duckdb = sys.modules.get("duckdb")  # not imported: not a DuckDB error
    if duckdb is not None and isinstance(e, duckdb.Error):
        return sql_error(e, duckdb)
    if isinstance(e, OSError) and e.errno is not None:  # a path that is missing, unreadable or full
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror or e}{where}", 1, []
    return None


_PARAMS_MISSING = re.compile(r"Values were not provided for the following (?:prepared statement )?parameters: (.+)")
_PARAMS_EXCESS = re.compile(r"identifiers of the excess parameters: (.+)")
_PARAMS_COUNT = re.compile(r"argument count mismatch .*Expected (\d+), got (\d+)")


def sql_error(e: Exception, duckdb) -> tuple[str, int, list[str]] | None:
    """A DuckDB error as one line with what to change; None for DuckDB's own bugs."""
    if isinstance(e, duckdb.InternalException | duckdb.FatalException):
        return None
    text = one_line(str(e))
    if m := _PARAMS_MISSING.search(text):
        names = [n.strip() for n in m[1].split(",")]
        if all(n.isdigit() for n in names):
            return ("the query has positional parameters ($1 or ?), which the command line cannot bind: name "
                    "them ($name) and pass --param name=VALUE"), 2, []
        return (f"the query uses {', '.join('$' + n for n in names)} but no value was given: add "
                f"{' '.join(f'--param {n}=VALUE' for n in names)}"), 2, []
    if m := _PARAMS_EXCESS.search(text):
        names = [n.strip() for n in m[1].split(",")]
        return (f"--param {', '.join(names)}: the query has no {', '.join('$' + n for n in names)}; remove the "
                "option or use the parameter in the query"), 2, []
    if m := _PARAMS_COUNT.search(text):
        return (f"the query has {m[1]} $parameter(s) but {m[2]} --param value(s) were given: pass one --param "
                "name=VALUE for each $name the query uses, and no others"), 2, []
    if isinstance(e, duckdb.InterruptException):
        return "interrupted", 130, []
    hint = ""
    if isinstance(e, duckdb.BinderException) and "not found" in text:
        hint = " — `DESCRIBE <table>` lists a table's columns"
    elif isinstance(e, duckdb.ConversionException):
        hint = " — compare with a value of the column's type (age > 50, not age > 'fifty'), or CAST it"
    user = isinstance(e, duckdb.ProgrammingError | duckdb.DataError | duckdb.NotSupportedError)
    return f"SQL: {text}{hint}", 2 if user else 1, []


_KIND = re.compile(r"(^|: )(?:[A-Z][a-z]*(?: [A-Za-z]+){0,3}) Error: ")
_LINE = re.compile(r"^LINE (\d+): ?")


def one_line(text: str) -> str:
    """A multi-line message (DuckDB's, click's) as one line: DuckDB's `LINE n:` excerpt and caret
    become `(line n, column c)`, and its `Binder Error: `-style prefixes are dropped."""
    lines, out, where, i = text.splitlines(), [], "", 0
    while i < len(lines):
        line = lines[i]
        if m := _LINE.match(line):
            caret = lines[i + 1] if i + 1 < len(lines) and "^" in lines[i + 1] else ""
            col = len(caret) - len(caret.lstrip(" ")) - m.end() + 1
            where = f" (line {m[1]}" + (f", column {col}" if caret and col > 0 else "") + ")"
            i += 2 if caret else 1
            continue
        if line.strip():
            out.append(line.strip())
        i += 1
    return _KIND.sub(r"\1", " ".join(out)) + where
