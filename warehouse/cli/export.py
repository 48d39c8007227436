"""`radgenome export`: a cohort (SQL or a named query) written as a bundle a person can hand on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from warehouse.cli._output import WarehouseOpt, open_warehouse, parse_params

MAX_NOTES = 20


def split_regions(value: str | None) -> list[str]:
    """`--masks "left lung,heart"` -> ["left lung", "heart"]."""
    return [r.strip() for r in (value or "").split(",") if r.strip()]


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        out_dir: Annotated[Path, typer.Argument(help="Folder to write (new or empty; --overwrite replaces an "
                                                     "earlier export).")],
        warehouse: WarehouseOpt,
        sql: Annotated[str | None, typer.Option(help="Cohort query returning case_id; $name parameters bound.")]
        = None,
        query: Annotated[str | None, typer.Option(help="Named query of the library (radgenome query --list).")]
        = None,
        param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Parameter k=v (repeatable).")]
        = None,
        images: Annotated[bool, typer.Option("--images", help="Write the CTs as images/<case>.nii.gz.")] = False,
        masks: Annotated[str | None, typer.Option(help="Regions whose masks to write, comma separated (bundle, "
                                                       "hf: masks/<case>/<region>.nii.gz; ome-zarr: label images; "
                                                       "dicom-seg: the segments).")] = None,
        crop: Annotated[str | None, typer.Option(help="Crop images and masks to this region's box.")] = None,
        margin_mm: Annotated[float, typer.Option("--margin-mm", help="Margin around the crop region, mm.")] = 10.0,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print cases, files and bytes; write nothing.")]
        = False,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier export in OUT_DIR.")]
        = False,
        snapshot: Annotated[str | None, typer.Option(help="Snapshot id (default: latest).")] = None,
        workers: Annotated[int, typer.Option(help="Threads writing array files (one case each).")] = 4,
        format: Annotated[str, typer.Option(
            "--format", "-f", help="bundle (default): tables, NIfTI, MONAI datalist, released CSVs, Croissant; "
                                   "hf: a Hugging Face dataset repository (Parquet per table and split, dataset "
                                   "card); ome-zarr: one OME-Zarr image with labels per case; dicom-seg: a DICOM "
                                   "Segmentation per case and mask source, with its CT series.")] = "bundle",
    ) -> None:
        """Export a cohort: manifest, tables (Parquet, CSV), NIfTI images and masks, a MONAI datalist and
        the RadGenome-format CSVs, or the same cohort in another --format. Example: radgenome export -w
        build/demo --sql "SELECT case_id FROM cases WHERE split = 'validation'" --images --masks "left lung,heart"
        --crop lung out/cohort"""
        from warehouse.exports.bundle import export_cohort

        if (sql is None) == (query is None):
            raise typer.BadParameter("give exactly one of --sql or --query", param_hint="--sql / --query")
        params = parse_params(param)
        with open_warehouse(warehouse, snapshot) as wh:
            summary = export_cohort(wh, out_dir, sql=sql, query=query, params=params, images=images,
                                    masks=split_regions(masks), crop=crop, margin_mm=margin_mm, dry_run=dry_run,
                                    overwrite=overwrite, workers=workers, format=format)
        if dry_run:
            typer.echo(f"cases: {summary.cases}\nfiles: {summary.files}\n"
                       f"bytes: {summary.bytes}{'' if summary.bytes_exact else ' (at most: NIfTI sizes are bounds)'}")
        typer.echo(str(summary))
        for note in summary.notes[:MAX_NOTES]:
            typer.secho(f"  note: {note}", fg="yellow", err=True)
        if len(summary.notes) > MAX_NOTES:
            typer.secho(f"  ... and {len(summary.notes) - MAX_NOTES} more notes (manifest.json lists them)",
                        fg="yellow", err=True)

    @app.command("export-croissant")
    def export_croissant_cmd(
        out_dir: Annotated[Path, typer.Argument(help="Folder to write (new or empty): croissant.json and "
                                                     "tables/<table>.parquet.")],
        warehouse: WarehouseOpt,
        snapshot: Annotated[str | None, typer.Option(help="Snapshot id (default: latest).")] = None,
    ) -> None:
        """Publish a whole snapshot: its Parquet tables (hard-linked where possible) and croissant.json, the
        Croissant metadata (column types and descriptions, sha256, licences, citation, Responsible-AI
        fields) that mlcroissant loads. Example: radgenome export-croissant -w build/demo out/croissant"""
        from warehouse.exports.croissant import export_croissant

        with open_warehouse(warehouse, snapshot) as wh:
            path = export_croissant(wh, out_dir)
        typer.echo(f"wrote {path}")
