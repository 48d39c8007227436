"""The query library's maintenance commands: `python -m queries snapshots` rewrites the Spark/Trino
snapshots; `python -m queries list [--markdown]` lists the named queries (the README's table comes
from `--markdown`)."""

from __future__ import annotations

from typing import Annotated

import typer

from queries.library import library_markdown, library_text
from queries.portable import write_snapshots

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.command()
def snapshots() -> None:
    """Rewrite the Spark and Trino translations of every query (the snapshots the tests compare)."""
    changed = write_snapshots()
    for p in changed:
        typer.echo(f"wrote {p}")
    typer.echo(f"{len(changed)} snapshot file(s) changed")


@app.command("list")
def list_(as_markdown: Annotated[bool, typer.Option(
        "--markdown", help="A Markdown table, as in the README.")] = False) -> None:
    """The named queries, each with its parameters and what it answers."""
    typer.echo(library_markdown() if as_markdown else library_text(parameters=False))


def main(argv: list[str] | None = None) -> None:
    """Run a command (from `argv`, else the command line) and exit with its code: 2 for a usage mistake."""
    app(args=argv, prog_name="python -m queries")


if __name__ == "__main__":
    main()
