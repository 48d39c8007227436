"""One released case's job: its image and masks into the array store, its `cases` row.

Every case of a release build gets exactly one job (so it gets exactly one `cases` row),
whatever parts of it are present: an image (RadGenome's preprocessed volume, else the
CT-RATE volume), mask sets (region and anatomy masks, as archive bytes or files), and
the CT-RATE metadata row. A part that fails is an `ingest_errors` row naming the file
(and archive member); the rest of the case is kept.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np

from ingest.images import CTImage, check_affine, check_shape, read_nifti
from ingest.job import CaseJob, CaseOutput, JobContext
from ingest.sources.ct_rate import MetadataRow, case_columns, metadata_problems, read_volume
from ingest.sources.radgenome_decode import LazyMask, MaskReadError, check_image_grid, read_header
from ingest.sources.radgenome_masks import MaskSet
from ingest.sources.release_csv import printable
from ingest.sources.volume_names import try_parse
from warehouse.core.anatomy import Region, anatomy
from warehouse.core.errors import UnknownRegionError, WarehouseError
from warehouse.core.grid import Grid

if TYPE_CHECKING:
    from warehouse.store.arrays import ArrayStore


def resolve_mask_name(name: str) -> Region:
    """The region a mask file's name maps onto; ``pulmonary_artery`` may also mean ``pulmonary artery``."""
    dag = anatomy()
    try:
        return dag.resolve(name)
    except UnknownRegionError:
        if "_" not in name:
            raise
        try:
            return dag.resolve(name.replace("_", " "))
        except UnknownRegionError:
            raise UnknownRegionError(f"unknown anatomy region {name!r} (also as {name.replace('_', ' ')!r})",
                                     hint="name the file after a region, a RadGenome mask or a TotalSegmentator "
                                          "class (SELECT name FROM anatomy)") from None


def case_row(case_id: str, source: str, metadata: MetadataRow | None, errors: list[dict], build_source: str,
             split: str | None = None) -> dict:
    """A case's `cases` row before any array is read: its name's parts and its metadata's columns.

    `split` (from the released file's name) is used where the volume name does not say it.
    """
    vol = try_parse(case_id)
    row: dict = {"case_id": case_id, "source": source, "has_image": False, "has_masks": False, "split": split,
                 **(vol.as_row() if vol else {})}
    if metadata is not None:
        meta = metadata.values
        row.update(case_columns(meta))
        errors.extend({"source": build_source, "case_id": case_id, "stage": "metadata", "file": metadata.file,
                       "location": f"line {metadata.line}", "error": printable(why)}
                      for why in metadata_problems(meta))
    return row


@dataclass
class ReleaseCaseJob(CaseJob):
    """The per-case part of a RadGenome / CT-RATE release build."""

    case_id: str
    source: str = "radgenome"  # the `cases.source` of the row
    image: str | None = None
    image_kind: str = "radgenome"  # radgenome (HU as stored) or ct_rate (metadata rescale)
    metadata: MetadataRow | None = None
    masks: tuple[MaskSet, ...] = ()
    spill: tuple[str, ...] = field(default=())  # spilled member folders to delete once read
    errors: tuple[dict, ...] = ()  # `ingest_errors` rows met while reading the release, saved with the case
    split: str | None = None  # from the released files' names, for volume names that do not say it
    stage: str = "ingest"

    def run(self, ctx: JobContext) -> CaseOutput:
        out = CaseOutput()
        out.errors.extend(self.errors)
        row = case_row(self.case_id, self.source, self.metadata, out.errors, ctx.source, self.split)
        meta = self.metadata.values if self.metadata else None
        if self.image is None and not self.masks:
            out.add("cases", row)
            return out
        store = _open_store(ctx.arrays_path)
        image = self._image(out, ctx, meta)
        if image is not None:
            store.write_image(self.case_id, image.hu, image.affine)
            row.update(_grid_columns(image.hu.shape, image.affine), has_image=True)
        try:
            for mask_set in self.masks:
                stats, grid = self._write_masks(store, mask_set, image, out, ctx)
                out.add("region_stats", stats)
                if stats:
                    row["has_masks"] = True
                    if image is None and grid is not None:
                        row.update(_grid_columns(*grid))
        finally:
            for folder in self.spill:
                shutil.rmtree(folder, ignore_errors=True)
        out.add("cases", row)
        return out

    def _error(self, out: CaseOutput, ctx: JobContext, message: str, *, stage: str, file: str | None,
               location: str | None = None) -> None:
        out.error(ctx.source, printable(message), case_id=self.case_id, stage=stage, file=printable(file),
                  location=printable(location))

    def _image(self, out: CaseOutput, ctx: JobContext, meta: dict | None) -> CTImage | None:
        """The case's CT, or None with an error row naming the file (the case keeps its masks and row)."""
        if self.image is None:
            return None
        try:
            return read_volume(Path(self.image), meta) if self.image_kind == "ct_rate" else read_nifti(
                Path(self.image))
        except WarehouseError as e:
            message = e.message + (f" — {e.hint}" if e.hint else "")
        except Exception as e:  # a reader's bug on a strange file: the case keeps the rest
            message = f"cannot read the image ({type(e).__name__}: {e})"
        self._error(out, ctx, message, stage="image", file=self.image)
        return None

    def _write_masks(self, store: ArrayStore, mask_set: MaskSet, image: CTImage | None, out: CaseOutput,
                     ctx: JobContext) -> tuple[list[dict], tuple | None]:
        """Write one mask set; returns its region_stats rows and, without an image, its grid."""
        archive = not Path(mask_set.origin).is_dir()  # name the archive and the member in it

        def bad(where: str, message: str) -> None:
            self._error(out, ctx, message, stage="masks", file=mask_set.origin if archive else where,
                        location=where if archive else None)

        masks, grid = self._checked(mask_set, image, bad)
        while masks:
            try:
                return store.write_masks(self.case_id, masks, grid.affine, mask_source=mask_set.mask_source,
                                         resolve=resolve_mask_name), grid
            except MaskReadError as e:  # its voxels were unreadable: write the set again without it
                bad(e.where, str(e))
                masks = [(name, m) for name, m in masks if m.where != e.where]
            except Exception as e:  # the set as a whole does not fit the case: the case keeps the rest
                why = e.message + (f" — {e.hint}" if e.hint else "") if isinstance(e, WarehouseError) \
                    else f"{type(e).__name__}: {e}"
                self._error(out, ctx, f"the case's masks from this input are skipped: {why}", stage="masks",
                            file=mask_set.origin)
                break
        return [], None

    def _checked(self, mask_set: MaskSet, image: CTImage | None, bad
                 ) -> tuple[list[tuple[str, LazyMask]], Grid | None]:
        """The masks whose name, header and grid are good, still unread; every bad one is an error row."""
        masks: list[tuple[str, LazyMask]] = []
        grid = Grid(image.hu.shape, image.affine) if image is not None else None
        seen: dict[str, str] = {}  # region -> where its mask came from
        for name, payload, where in mask_set.members:
            try:
                region = resolve_mask_name(name).name
            except UnknownRegionError as e:
                bad(where, f"{e}; the mask is skipped")
                continue
            if region in seen:  # `left_lung` and `left lung` are one structure: the first is kept
                bad(where, f"a second mask named {name!r} for the case's region {region!r} (first: {seen[region]}); "
                           "it is skipped")
                continue
            seen[region] = where
            try:
                shape, affine = read_header(payload)
            except Exception as e:  # truncated gzip, not NIfTI: gzip and nibabel raise many types
                bad(where, f"cannot read the mask ({type(e).__name__}: {e}); re-download the archive or file")
                continue
            try:
                check_shape(shape, where, "mask")
                check_affine(affine, where, "mask")
            except WarehouseError as e:
                bad(where, f"{e.message}; the mask is skipped")
                continue
            if image is not None:
                try:
                    check_image_grid(shape, affine, image, file=name)
                except WarehouseError as e:
                    bad(where, e.message + (f" — {e.hint}" if e.hint else ""))
                    continue
            else:
                stored = Grid(shape, affine).to_lps()  # where the image would lie once stored
                if grid is None:
                    grid = stored
                elif not stored.same_as(grid):
                    bad(where, f"mask grid {stored.shape} does not match the case's other masks {grid.shape} "
                               "(and there is no image to decide); the mask is skipped")
                    continue
            masks.append((name, LazyMask(payload, where, grid.affine)))
        return masks, grid


def _open_store(path: Path | str) -> ArrayStore:
    """The build's array store (imported here: only cases with arrays pay for zarr)."""
    from zarr.errors import ContainsGroupError

    from warehouse.store.arrays import ArrayStore

    try:
        return ArrayStore(path, mode="a")
    except ContainsGroupError:  # another worker created the store's root group at the same moment
        return ArrayStore(path, mode="a")


def _grid_columns(shape: tuple[int, ...], affine: np.ndarray) -> dict:
    spacing = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    return {**{f"spacing_{a}": float(s) for a, s in zip("xyz", spacing, strict=True)},
            **{f"shape_{a}": int(n) for a, n in zip("xyz", shape, strict=True)},
            "orientation": "".join(nib.aff2axcodes(affine))}
