"""Core commands: demo, sql, info, snapshots."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from warehouse.cli._output import (
    Format,
    FormatOpt,
    OutputOpt,
    TimeoutOpt,
    WarehouseOpt,
    open_warehouse,
    output_format,
    parse_params,
    query_run,
    run_build,
    write_frame,
)

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
        root: Annotated[str, typer.Argument(
            help="Where to build the demo warehouse: a folder or s3://BUCKET/PREFIX.")] = "build/demo",
        cases: Annotated[int, typer.Option(min=1, help="Number of synthetic cases.")] = 20,
        seed: Annotated[int, typer.Option(help="Random seed (same seed, same warehouse).")] = 0,
        workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    ) -> None:
        """Build the embedded synthetic demo warehouse (no downloads) and run example queries."""
        from ingest.sources.demo import DemoSource
        from warehouse.api import Warehouse

        run_build(DemoSource(n=cases, seed=seed), root, workers=workers)
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
        fmt: FormatOpt = None,
        out: OutputOpt = None,
        dialect: Annotated[str | None, typer.Option(
            help="Print the query transpiled to spark or trino instead of running it.")] = None,
        snapshot: Annotated[str | None, typer.Option(help="Snapshot id (default: latest).")] = None,
        timeout: TimeoutOpt = None,
    ) -> None:
        """Run SQL over a warehouse (tables: cases, reports, sentences, findings, case_labels, vqa,
        region_stats, anatomy, anatomy_closure, ingest_errors)."""
        if dialect:
            from warehouse.cli.queries import print_transpiled

            raise typer.Exit(print_transpiled(query, dialect))
        if warehouse is None:
            raise typer.BadParameter("--warehouse is required to run a query", param_hint="--warehouse")
        fmt, params = output_format(fmt, out), parse_params(param)  # option mistakes first, before any work
        with query_run(timeout), open_warehouse(warehouse, snapshot) as wh:
            write_frame(wh.sql(query, params), fmt, out)

    @app.command()
    def info(warehouse: WarehouseOpt, snapshot: Annotated[str | None, typer.Option()] = None) -> None:
        """The snapshot, its row counts and sources, and a build staged but not yet published."""
        with open_warehouse(warehouse, snapshot) as wh:
            typer.echo(json.dumps(wh.info(), indent=2))

    @app.command()
    def snapshots(warehouse: WarehouseOpt) -> None:
        """List the published snapshots, oldest first, and any build staged but not yet published."""
        from warehouse.store.snapshot import describe_snapshots, list_staged, open_snapshot

        published, staged = describe_snapshots(warehouse), list_staged(warehouse)
        if not published and not staged:
            open_snapshot(warehouse)  # says why: no such folder, or no snapshot in it
        for s in published:
            typer.echo(f"{s['snapshot_id']}  {s['created']}  source={s['source']}  cases={s['cases']}")
        for build in staged:
            lead = "staged: " if published else "no published snapshot yet; "
            typer.echo(f"{lead}{build}: re-run its command to finish it")

    @app.command()
    def gc(
        warehouse: WarehouseOpt,
        keep: Annotated[int | None, typer.Option(min=1, help="Keep the newest N snapshots, delete older ones.")] = None,
        grace: Annotated[float, typer.Option(
            min=0, help="Hours: a snapshot goes only when the one after it is older than this (readers "
                        "opened it before then); an unpublished upload only when untouched this long.")] = 1.0,
        abandoned: Annotated[bool, typer.Option(
            help="Also delete arrays in a bucket that no snapshot references, untouched for --grace: builds "
                 "that never published (do not resume them afterwards).")] = False,
        dry_run: Annotated[bool, typer.Option(help="Only say what would be deleted.")] = False,
    ) -> None:
        """Delete old snapshots (--keep N) and, in a bucket, the arrays only they used and uploads no commit
        names (killed builds)."""
        from datetime import timedelta

        from warehouse.store.snapshot import collect_garbage

        done = collect_garbage(warehouse, keep, timedelta(hours=grace), dry_run=dry_run, abandoned=abandoned)
        typer.echo(("would delete " if dry_run else "deleted ") + str(done))
