"""Pipeline commands: ``ingest folder`` (own CTs and reports through the RadGenome process) and ``show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from warehouse.cli._output import RunnerOpt, WarehouseOpt, check_runner, open_warehouse, run_build


def register(app: typer.Typer) -> None:
    @app.command("show")
    def show(
        case: Annotated[str, typer.Argument(help="Case id (volume name), e.g. train_1_a_1.nii.gz.")],
        warehouse: WarehouseOpt,
        region: Annotated[str | None, typer.Option(help="Region (name, path or synonym) to centre on and draw.")
                          ] = None,
        output: Annotated[Path, typer.Option("--output", "-o", help="PNG file to write.")] = Path("case.png"),
        snapshot: Annotated[str | None, typer.Option(help="Snapshot id (default: latest).")] = None,
        mask_source: Annotated[str | None, typer.Option(
            help="Draw only this provider's masks: builtin, totalsegmentator, radgenome, monai, ...")] = None,
        width: Annotated[int, typer.Option(min=400, help="Picture width, pixels.")] = 1800,
        height: Annotated[int, typer.Option(min=200, help="Picture height, pixels.")] = 640,
    ) -> None:
        """Render axial, coronal and sagittal slices with the region masks and the region's sentences."""
        from warehouse.viewer import render_case

        with open_warehouse(warehouse, snapshot) as wh:
            out = render_case(wh, case, region=region, out=output, mask_source=mask_source, width=width,
                              height=height)
        typer.echo(f"wrote {out} ({width}x{height})")


def register_ingest(ingest_app: typer.Typer) -> None:
    @ingest_app.command("folder")
    def ingest_folder(
        images: Annotated[Path, typer.Option(help="Folder of CTs: .nii/.nii.gz files and DICOM series folders.")],
        warehouse: WarehouseOpt,
        reports: Annotated[Path | None, typer.Option(
            help="Reports CSV in CT-RATE's columns (VolumeName, Findings_EN, Impressions_EN, ...).")] = None,
        segmenter: Annotated[list[str] | None, typer.Option(
            help="builtin, import:DIR, monai:PATH or none; repeat to run several (default: builtin).")] = None,
        runner: RunnerOpt = "pool",
        workers: Annotated[int | None, typer.Option(min=1, help="Worker processes (default: CPUs, at most 8).")
                           ] = None,
        address: Annotated[str | None, typer.Option(help="Ray cluster address (with --runner ray).")] = None,
        progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    ) -> None:
        """Ingest a folder of CTs and their reports: masks, region statistics, grounded sentences, VQA."""
        if not images.is_dir():
            raise typer.BadParameter(f"{images} is not a folder", param_hint="--images")
        if reports is not None and not reports.is_file():
            raise typer.BadParameter(f"{reports} is not a file", param_hint="--reports")
        if address and runner != "ray":
            raise typer.BadParameter("--address needs --runner ray", param_hint="--address")
        from ingest.sources.folder import FolderSource, check_reports

        check_runner(runner)
        if reports is not None:
            check_reports(reports, "--reports")
        source = FolderSource(images, reports, segmenter or ["builtin"])
        run_build(source, warehouse, runner=runner, workers=workers, progress=progress, ray_address=address)
        if source.mask_note:
            typer.secho(f"note: {source.mask_note}", err=True, fg="yellow")

