"""`radgenome`: the command line. Each command mirrors a method of `warehouse.Warehouse`
or an ingest/export entry point; errors print as one line with an exit code."""

from __future__ import annotations

import sys
from importlib import import_module

import typer

from warehouse.errors import WarehouseError

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
ingest_app = typer.Typer(help="Build or extend a warehouse from a source.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")

# Command modules, each with register(app) and optionally register_ingest(ingest_app).
_MODULES = ("core", "structure", "export", "pipeline", "release", "queries")


def _register() -> None:
    for name in _MODULES:
        mod = import_module(f"warehouse.cli.{name}")
        mod.register(app)
        if hasattr(mod, "register_ingest"):
            mod.register_ingest(ingest_app)


_register()


def main() -> None:
    """Console entry point: one readable line and exit code 2 for a `WarehouseError`."""
    try:
        app()
    except WarehouseError as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        sys.exit(e.exit_code)
