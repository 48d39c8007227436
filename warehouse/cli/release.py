"""Release commands: ``ingest radgenome`` (the released files in) and ``export-release`` (back out)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from warehouse.cli._output import WarehouseOpt


def register(app: typer.Typer) -> None:
    @app.command("export-release")
    def export_release(
        out_dir: Annotated[Path, typer.Argument(help="Folder to write the released CSVs into.")],
        warehouse: WarehouseOpt,
        snapshot: Annotated[str | None, typer.Option(help="Snapshot id (default: latest).")] = None,
    ) -> None:
        """Write the warehouse's rows back as the released RadGenome-ChestCT and CT-RATE CSVs."""
        from warehouse.exports import export_release as run

        written = run(warehouse, out_dir, snapshot)
        for rel, n in written.items():
            typer.echo(f"{n:>10,}  {out_dir / rel}")
        typer.echo(f"{len(written)} files, {sum(written.values()):,} rows")


def register_ingest(ingest_app: typer.Typer) -> None:
    @ingest_app.command("radgenome")
    def ingest_radgenome(
        warehouse: WarehouseOpt,
        release: Annotated[Path | None, typer.Option(
            help="RadGenome-ChestCT release folder (CSVs, mask archives or folders, preprocessed images; "
                 "any part may be missing).")] = None,
        ct_rate: Annotated[Path | None, typer.Option(
            "--ct-rate", help="CT-RATE release folder (reports, metadata, predicted labels, volumes).")] = None,
        workers: Annotated[int | None, typer.Option(help="Worker processes (default: CPUs, at most 8).")] = None,
        runner: Annotated[str, typer.Option(help="local, pool or ray.")] = "pool",
        progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    ) -> None:
        """Import a downloaded RadGenome-ChestCT (and CT-RATE) release; a re-run resumes."""
        if release is None and ct_rate is None:
            raise typer.BadParameter("give --release, --ct-rate or both", param_hint="--release")
        for opt, path in (("--release", release), ("--ct-rate", ct_rate)):
            if path is not None and not path.is_dir():
                raise typer.BadParameter(f"{path} is not a folder", param_hint=opt)
        from ingest.runner import build
        from ingest.sources.radgenome import RadGenomeSource

        summary = build(RadGenomeSource(release, ct_rate), warehouse, runner=runner, workers=workers,
                        progress=progress)
        typer.echo(str(summary))
        if summary.errors_by_stage:
            typer.echo(f"see: radgenome sql -w {warehouse} \"SELECT stage, file, location, error "
                       "FROM ingest_errors WHERE source = 'radgenome'\"")
