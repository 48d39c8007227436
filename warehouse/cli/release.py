"""Release commands: ``ingest radgenome`` (the released files in) and ``export-release`` (back out)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from warehouse.cli._output import RunnerOpt, WarehouseOpt, check_runner, open_warehouse, run_build

if TYPE_CHECKING:
    from ingest.sources.radgenome import RadGenomeSource


def register(app: typer.Typer) -> None:
    @app.command("export-release")
    def export_release(
        out_dir: Annotated[Path, typer.Argument(help="Folder to write the released CSVs into.")],
        warehouse: WarehouseOpt,
        snapshot: Annotated[str | None, typer.Option(help="Snapshot id (default: latest).")] = None,
    ) -> None:
        """Write the warehouse's rows back as the released RadGenome-ChestCT and CT-RATE CSVs."""
        from warehouse.exports import export_release as run

        with open_warehouse(warehouse, snapshot) as wh:
            written = run(wh, out_dir)
        for rel, n in written.items():
            typer.echo(f"{n:>10,}  {out_dir / rel}")
        typer.echo(f"{len(written)} files, {sum(written.values()):,} rows")


def register_ingest(ingest_app: typer.Typer) -> None:
    @ingest_app.command("radgenome")
    def ingest_radgenome(
        warehouse: WarehouseOpt,
        release: Annotated[Path | None, typer.Option(
            help="RadGenome-ChestCT release folder, as downloaded: the released files in any nesting under it "
                 "(CSVs, mask archives or folders, preprocessed images; any part may be missing).")] = None,
        ct_rate: Annotated[Path | None, typer.Option(
            "--ct-rate", help="CT-RATE release folder (reports, metadata, predicted labels, volumes).")] = None,
        workers: Annotated[int | None, typer.Option(min=1, help="Worker processes (default: CPUs, at most 8).")
                           ] = None,
        runner: RunnerOpt = "pool",
        progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List every file used.")] = False,
        text_stages: Annotated[bool, typer.Option(
            help="Read the imported text: findings (and is_abnormal) on the released region reports, the whole "
                 "structuring of CT-RATE reports that have none, labels and disorders derived where the "
                 "release gives none.")] = True,
    ) -> None:
        """Import a downloaded RadGenome-ChestCT (and CT-RATE) release; a re-run resumes."""
        if release is None and ct_rate is None:
            raise typer.BadParameter("give --release, --ct-rate or both", param_hint="--release")
        for opt, path in (("--release", release), ("--ct-rate", ct_rate)):
            if path is not None and not path.is_dir():
                raise typer.BadParameter(f"{path} is not a folder", param_hint=opt)
        from ingest.runner import default_workers
        from ingest.sources.radgenome import RadGenomeSource

        check_runner(runner)
        source = RadGenomeSource(release, ct_rate, text_stages=text_stages,
                                 workers=workers or default_workers())
        print_inventory(source, verbose)
        run_build(source, warehouse, runner=runner, workers=workers, progress=progress)


def print_inventory(source: RadGenomeSource, verbose: bool = False) -> None:
    """`RadGenomeSource.inventory`: one line per kind of released file found (every file with `verbose`),
    then the parts found none of; a folder given with none of its release's files stops here
    (`BuildFailedError`, exit 1)."""
    found, missing = source.inventory(release_name="--release", ct_rate_name="--ct-rate")
    typer.echo("files used:")
    for label, paths in found:
        typer.echo(f"  {label}: {_count(label, paths)}")
        for path in paths if verbose else ():
            typer.echo(f"      {path}")
    if missing:
        typer.echo(f"  not found: {', '.join(missing)}")


def _count(label: str, paths: list[Path]) -> str:
    """A kind's files in a few words: volumes counted, mask archives and folders named, else a count."""
    if "volumes" in label or "images" in label:
        return f"{len(paths):,} volumes"
    if "masks" in label:
        return ", ".join(p.name + ("/" if p.is_dir() else "") for p in paths)
    return f"{len(paths):,} file{'s' if len(paths) != 1 else ''}" + (f" ({paths[0]})" if len(paths) == 1 else "")
