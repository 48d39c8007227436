"""What the CLI's commands share: the --warehouse and --runner options, --param parsing, result formats,
opening a warehouse (naming a staged build where nothing is published yet) and running a build."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
import typer

if TYPE_CHECKING:
    from ingest.job import Source
    from ingest.runner import BuildSummary
    from warehouse.api import Warehouse

# A str, not a Path: pathlib would fold s3://bucket into s3:/bucket.
WarehouseOpt = Annotated[str, typer.Option(
    "--warehouse", "-w", help="Warehouse root: a folder, or s3://BUCKET/PREFIX (gs://, az://) configured by the "
                              "AWS_* (GOOGLE_*, AZURE_*) environment variables.")]
SCREEN_ROWS = 50  # rows of the table printed on the screen; files always get the whole result


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"
    parquet = "parquet"
    arrow = "arrow"  # Arrow IPC file


EXTENSIONS: dict[str, Format] = {".csv": Format.csv, ".json": Format.json, ".jsonl": Format.jsonl,
                                 ".ndjson": Format.jsonl, ".parquet": Format.parquet, ".arrow": Format.arrow,
                                 ".ipc": Format.arrow, ".feather": Format.arrow, ".txt": Format.table}
BINARY = (Format.parquet, Format.arrow)
FormatOpt = Annotated[Format | None, typer.Option(
    "--format", "-f", help="Output format (default: from -o's extension, else a table on the screen).")]
OutputOpt = Annotated[Path | None, typer.Option(
    "-o", "--output", help="Write the whole result to a file: .csv, .parquet, .json, .jsonl, .arrow or .txt.")]
TimeoutOpt = Annotated[float | None, typer.Option(
    "--timeout", min=0, metavar="SECONDS",
    help="Stop the query after SECONDS (0: no limit; default 60, or RADGENOME_QUERY_TIMEOUT).")]
CTRL_C = {"said": False}  # whether the running command has said why Ctrl-C stopped it
# `ingest.runner.RUNNERS`' names, written out: importing ingest to build --help would make every command
# slow to start (tests/ingest/test_runner.py checks that they agree).
RUNNER_HELP = "local, pool or ray."
RunnerOpt = Annotated[str, typer.Option(help=RUNNER_HELP)]


@contextmanager
def query_run(timeout: float | None) -> Iterator[None]:
    """A command's queries under --timeout (Ctrl-C stops them: `warehouse.cli.main` says so, exit 130)."""
    from warehouse.query_limits import time_limit

    with time_limit(timeout):
        yield


def interrupted(message: str = "interrupted") -> typer.Exit:
    """Say why Ctrl-C stopped the command, one line on stderr (once), and return the exit to raise: 130."""
    if not CTRL_C["said"]:
        typer.secho(message, err=True, fg="yellow")
        CTRL_C["said"] = True
    return typer.Exit(130)


def parse_params(items: list[str] | None) -> dict[str, str]:
    """`k=v` pairs from the command line (values stay strings; the query decides their types)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected key=value, got {item!r} (e.g. -p region=lung)", param_hint="--param")
        out[key.strip()] = value
    return out


def output_format(fmt: Format | None, out: Path | None) -> Format:
    """The format to write: -f, else -o's extension, else a table. Checked before any work is done."""
    if out is None:
        if fmt in BINARY:
            raise typer.BadParameter(f"{fmt} is a binary format: add -o FILE.{fmt}", param_hint="--format")
        return fmt or Format.table
    if out.is_dir():
        raise typer.BadParameter(f"{out} is a folder; give a file name", param_hint="-o")
    if not out.parent.is_dir():
        raise typer.BadParameter(f"folder {out.parent} does not exist", param_hint="-o")
    suffix = out.suffix.lower()
    inferred = EXTENSIONS.get(suffix)
    if fmt is None and inferred is None:
        raise typer.BadParameter(f"cannot tell a format from {out.name!r}: name the file with one of "
                                 f"{', '.join(EXTENSIONS)}, or give --format", param_hint="-o")
    if fmt is not None and inferred is not None and inferred is not fmt:
        raise typer.BadParameter(f"--format {fmt} conflicts with {out.name!r} ({suffix} is {inferred}): "
                                 "drop --format or change the extension", param_hint="-o")
    return fmt or inferred  # type: ignore[return-value]


def write_frame(df: pl.DataFrame, fmt: Format, out: Path | None) -> None:
    """Print a result, or write the whole of it to `out` (written aside, then renamed into place)."""
    if fmt is Format.csv and (nested := [n for n, t in df.schema.items() if t.is_nested()]):
        raise typer.BadParameter(f"CSV cannot hold nested columns ({', '.join(nested)}): use .parquet, .json, "
                                 ".jsonl or .arrow, or turn them into text in the query, e.g. "
                                 f"array_to_string({nested[0]}, ';')", param_hint="--format")
    if out is None:
        if fmt in BINARY:
            raise typer.BadParameter(f"{fmt} is a binary format: add -o FILE.{fmt}", param_hint="--format")
        sys.stdout.write(_text(df, fmt, whole=False))
        if fmt is Format.table and df.height > SCREEN_ROWS:
            typer.echo(f"(showing {SCREEN_ROWS} of {df.height:,} rows; -o FILE.csv, .parquet, .json, .jsonl or "
                       ".arrow writes them all)", err=True)
        return
    tmp = out.with_name(f".{out.name}.partial")
    try:
        if fmt is Format.parquet:
            df.write_parquet(tmp)
        elif fmt is Format.arrow:
            df.write_ipc(tmp)
        else:
            tmp.write_text(_text(df, fmt, whole=True), encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    typer.echo(f"wrote {df.height:,} rows to {out} ({fmt})", err=True)


def _text(df: pl.DataFrame, fmt: Format, whole: bool) -> str:
    if fmt is Format.csv:
        return df.write_csv()
    if fmt is Format.json:
        return df.write_json() + "\n"
    if fmt is Format.jsonl:
        return df.write_ndjson()
    rows, cols, chars, width = (-1, -1, 1_000_000, -1) if whole else (SCREEN_ROWS, 20, 80, 160)
    with pl.Config(tbl_rows=rows, tbl_cols=cols, fmt_str_lengths=chars, tbl_width_chars=width):
        return f"{df}\n"


# -- warehouses and builds ----------------------------------------------------------------------
def open_warehouse(root: Path | str, snapshot: str | None = None) -> Warehouse:
    """`Warehouse.open` (imported here: the CLI starts without the engine)."""
    from warehouse.api import Warehouse

    return Warehouse.open(root, snapshot)


def check_runner(runner: str) -> None:
    """--runner names one of `ingest.runner.RUNNERS`; checked before a source reads anything."""
    from ingest.runner import RUNNERS

    if runner not in RUNNERS:
        raise typer.BadParameter(f"choose one of {', '.join(RUNNERS)}", param_hint="--runner")


def run_build(source: Source, root: Path | str, **options: Any) -> BuildSummary:
    """`ingest.runner.build` for a command: prints the summary and how to read its ingest_errors; on
    Ctrl-C, says how to resume and exits 130."""
    from ingest.runner import BuildInterrupted, build

    try:
        summary = build(source, root, **options)
    except BuildInterrupted as e:
        raise interrupted(str(e)) from None
    typer.echo(str(summary))
    if summary.errors:
        sql = f"SELECT stage, file, location, error FROM ingest_errors WHERE source = '{summary.source}'"
        typer.echo(f'  read them: radgenome sql -w {shlex.quote(str(root))} "{sql}"')
    return summary
