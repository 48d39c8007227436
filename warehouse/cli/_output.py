"""What the CLI's commands share: the --warehouse option, --param parsing, result formats."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

WarehouseOpt = Annotated[Path, typer.Option("--warehouse", "-w", help="Warehouse root folder.")]


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def parse_params(items: list[str] | None) -> dict[str, str]:
    """`k=v` pairs from the command line (values stay strings; the query decides their types)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param expects key=value, got {item!r}")
        out[key.strip()] = value
    return out


def write_frame(df: pl.DataFrame, fmt: Format, out: Path | None) -> None:
    """Print or save a result."""
    if fmt is Format.parquet:
        if out is None:
            raise ValueError("--format parquet needs -o FILE")
        df.write_parquet(out)
    elif fmt is Format.csv:
        df.write_csv(out) if out else sys.stdout.write(df.write_csv())
    elif fmt is Format.json:
        text = df.write_json()
        Path(out).write_text(text) if out else sys.stdout.write(text + "\n")
    else:
        with pl.Config(tbl_rows=50, tbl_cols=20, fmt_str_lengths=80, tbl_width_chars=160):
            text = str(df)
        Path(out).write_text(text + "\n") if out else print(text)
