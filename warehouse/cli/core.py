"""Core commands: demo, sql, info, snapshots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from warehouse.cli._output import Format, WarehouseOpt, parse_params, write_frame

DEMO_QUERIES: tuple[tuple[str, str], ...] = (
    ("Sentences anywhere under `lung` that mention a nodule",
     """SELECT s.case_id, s.anatomy_path, s.text
        FROM sentences s
        JOIN anatomy_closure c ON c.descendant_id = s.region_id
        JOIN anatomy a ON a.region_id = c.ancestor_id
        WHERE a.name = $region AND s.text ILIKE '%nodule%'
        ORDER BY s.case_id, s.ordinal LIMIT 10"""),
    ("Abnormal vs normal sentences per top-level region",
     """SELECT a.top_level AS region, count(*) FILTER (WHERE s.is_abnormal) AS abnormal,
               count(*) FILTER (WHERE NOT s.is_abnormal) AS normal
        FROM sentences s JOIN anatomy a ON a.region_id = s.region_id
        GROUP BY 1 ORDER BY abnormal DESC, region"""),
    ("One abnormal case's question-answer pairs, two of each type",
     """SELECT type, question, answer, anatomy_path FROM vqa
        WHERE case_id = (SELECT min(case_id) FROM vqa WHERE type = 'size')
        QUALIFY row_number() OVER (PARTITION BY type ORDER BY ordinal) <= 2
        ORDER BY type, ordinal"""),
)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        root: Annotated[Path, typer.Argument(help="Where to build the demo warehouse.")] = Path("build/demo"),
        cases: Annotated[int, typer.Option(help="Number of synthetic cases.")] = 20,
        seed: Annotated[int, typer.Option(help="Random seed (same seed, same warehouse).")] = 0,
        workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    ) -> None:
        """Build the embedded synthetic demo warehouse (no downloads) and run example queries."""
        from ingest.runner import build
        from ingest.sources.demo import DemoSource
        from warehouse.api import Warehouse

        summary = build(DemoSource(n=cases, seed=seed), root, workers=workers)
        typer.echo(str(summary))
        wh = Warehouse.open(root)
        for title, query in DEMO_QUERIES:
            typer.secho(f"\n-- {title}", bold=True)
            params = {"region": "lung"} if "$region" in query else None
            write_frame(wh.sql(query, params), Format.table, None)
        typer.echo(f"\nTry: radgenome sql --warehouse {root} \"SELECT * FROM cases LIMIT 5\"")

    @app.command()
    def sql(
        query: Annotated[str, typer.Argument(help="One read-only SQL query; $name parameters are bound.")],
        warehouse: WarehouseOpt = None,
        param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Bind $k to v.")] = None,
        fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
        out: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file.")] = None,
        dialect: Annotated[str | None, typer.Option(
            help="Print the query transpiled to spark or trino instead of running it.")] = None,
        snapshot: Annotated[str | None, typer.Option(help="Snapshot id (default: latest).")] = None,
    ) -> None:
        """Run SQL over a warehouse (tables: cases, reports, sentences, findings, case_labels, vqa,
        region_stats, anatomy, anatomy_closure, ingest_errors)."""
        if dialect:
            from warehouse.cli.queries import print_transpiled

            raise typer.Exit(print_transpiled(query, dialect))
        if warehouse is None:
            raise typer.BadParameter("--warehouse is required to run a query", param_hint="--warehouse")
        from warehouse.api import Warehouse

        wh = Warehouse.open(warehouse, snapshot)
        write_frame(wh.sql(query, parse_params(param)), fmt, out)

    @app.command()
    def info(warehouse: WarehouseOpt, snapshot: Annotated[str | None, typer.Option()] = None) -> None:
        """The snapshot, its row counts and sources."""
        from warehouse.api import Warehouse

        typer.echo(json.dumps(Warehouse.open(warehouse, snapshot).info(), indent=2))

    @app.command()
    def snapshots(warehouse: WarehouseOpt) -> None:
        """List the published snapshots, oldest first."""
        from warehouse.snapshot import list_snapshots, open_snapshot

        for sid in list_snapshots(warehouse):
            m = open_snapshot(warehouse, sid).manifest
            typer.echo(f"{sid}  {m.get('created')}  source={m.get('source')}  cases={m['row_counts'].get('cases')}")
