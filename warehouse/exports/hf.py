"""`export --format hf`: a cohort as a Hugging Face dataset repository (`datasets.load_dataset(OUT, config)`).

Layout (OUT can be uploaded as is: ``huggingface_hub.upload_folder(folder_path=OUT, repo_type="dataset")``)::

    OUT/README.md                                          the dataset card: YAML (configs with their data files
                                                           per split, license, language, tags) written by
                                                           huggingface_hub's DatasetCard/DatasetCardData; the text
                                                           gives the snapshot, the cohort query, each config's
                                                           columns (from warehouse.core.schema), licences, citation
    OUT/data/<table>/<split>-00000-of-00001.parquet        the cohort's rows of each table, one file per split
    OUT/data/volumes/<split>-00000-of-00001.parquet        (with --images / --masks) one row per case: case_id,
                                                           image (path), masks (struct: region -> path)
    OUT/images/<case>.nii.gz                               CT (int16 HU) on the warehouse's grid, whole or cropped
    OUT/masks/<case>/<region>.nii.gz                       region masks (uint8 0/1) on the image's grid
    OUT/manifest.json                                      added by `export_cohort`: query, snapshot, sha256 per file

Configs: one per table (its name; ``cases`` is the default) and ``volumes``. Splits: the cases'
``cases.split`` (train, validation; a case without one is in ``unassigned``); the reference
tables (anatomy, anatomy_closure, finding_terms: no case_id) are whole, in one split ``full``.
A split without rows is left out of its config, and a table without rows in the cohort is no
config (the card names it): datasets 5.2 refuses to load an empty split ("corresponds to no
data"). NIfTI files are the bundle's (`warehouse.exports.nifti`, same ``<case>`` keys and region
file names).

NIfTI as paths, not as the `datasets.Nifti` feature. Tried with datasets 5.2.0 (offline):

- a Parquet column of ``{"bytes": None, "path": "images/<case>.nii.gz"}`` declared ``nifti`` in the
  card's ``dataset_info.features`` loads, but decoding opens the path relative to the process's
  working directory (``nibabel.load(path)``): it works with OUT as the working directory only,
  anywhere else every row fails (FileNotFoundError).
  The Parquet builder resolves no path against the repository; only ``niftifolder`` does (from a
  ``metadata.*`` file), and `load_dataset` picks one builder per repository from the first
  config's files, so a niftifolder config cannot sit beside the Parquet tables;
- the NIfTI bytes embedded in the Parquet decode anywhere, but every CT is then stored inside a
  Parquet file and, on `load_dataset`, once more in the Arrow cache (each CT twice locally),
  decoding gunzips a whole volume in memory, and the plain files that MONAI, nibabel and
  ``radgenome ingest folder`` read are gone. Writing ``dataset_info`` would also need `datasets`
  (a test dependency only) or YAML written by hand.

So image and mask columns are strings, paths relative to the repository's root, and the card
shows how to open them (``nibabel.load(os.path.join(root, path))``, or a `cast_column` to
`datasets.Nifti` after joining the root, which decodes to nibabel images).

Licence: the card's ``license`` is ``cc-by-nc-sa-4.0``, one hub id for the whole folder. The
released cases derive from CT-RATE (CC-BY-NC-SA-4.0: its ShareAlike term binds adaptations),
and RadGenome-ChestCT's rows (CC-BY-4.0) may be shared under those stricter terms; the card
says so, lists both licences and asks for both attributions and citations.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.core import schema
from warehouse.core.release_format import LICENCES
from warehouse.exports.bundle_tables import cohort_table
from warehouse.exports.cohort import Cohort, ExportError
from warehouse.exports.croissant import CITATION, LICENCE_URLS
from warehouse.exports.nifti import write_case

if TYPE_CHECKING:
    from huggingface_hub import DatasetCard

    from warehouse.api import Warehouse

NEEDS_IMAGES = False
CARD = "README.md"
DATA = "data"
SHARD = "00000-of-00001"  # the hub's file naming (as push_to_hub writes it): one shard per split
VOLUMES = "volumes"
DEFAULT_CONFIG = "cases"
WHOLE = "full"  # the one split of the reference tables
UNASSIGNED = "unassigned"  # the split of cases whose cases.split is null
SPLIT_ORDER = ("train", "validation", "test")
SPLIT_NAME = re.compile(r"\w+(\.\w+)*")  # datasets' rule for a split name
RESERVED_SPLITS = ("all",)  # load_dataset(split="all") means every split
LICENSE = "cc-by-nc-sa-4.0"
ROW_GROUP_ROWS = 100_000  # row groups the hub's viewer reads one at a time
TAGS = ["medical", "radiology", "chest-ct", "ct", "3d", "nifti", "radiology-reports", "grounding", "vqa"]
VOLUME_COLUMNS = {
    "case_id": "The case (cases.case_id).",
    "image": "Path of the CT (NIfTI, int16 HU) relative to the repository's root; null without one.",
    "masks": "Per region, the path of its mask (NIfTI, uint8 0/1, on the image's grid) relative to the "
             "repository's root; null where the case has no mask for the region.",
}


def check(c: Cohort) -> None:
    """Refuse, before anything is written, a cohort whose splits are no Hugging Face split names."""
    splits = read_splits(c.wh, c.case_ids)
    unassigned = sum(s is None for s in splits.values())
    if unassigned:
        c.notes.append(f"{unassigned} case{'s' if unassigned > 1 else ''} without a split (cases.split is null): "
                       f"in the split {UNASSIGNED!r} of every config")
    case_splits(splits)


def dry_run(c: Cohort) -> tuple[int, int]:
    """Files and an upper bound of their bytes: the text files written to a temporary folder, NIfTI bounds."""
    with tempfile.TemporaryDirectory(prefix=".radgenome-hf-dry-") as tmp:
        write_dataset(c, Path(tmp))
        text = [p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()]
    arrays = [f.bytes_bound for files in c.plans.values() for f in files]
    return len(text) + len(arrays), sum(text) + sum(arrays)


def write(c: Cohort, stage: Path) -> dict:
    """The dataset repository in `stage`: Parquet per config and split, the card, the NIfTI files."""
    rows = write_dataset(c, stage)
    with ThreadPoolExecutor(max(1, c.workers)) as pool:  # one task per case; files land in the stage
        list(pool.map(lambda files: write_case(c.wh, files, stage), c.plans.values()))
    return {"row_counts": {name: sum(rows[name].values()) for name in schema.TABLES},
            "hf": {"configs": {k: v for k, v in rows.items() if v}, "default_config": DEFAULT_CONFIG,
                   "empty_tables": [k for k, v in rows.items() if not v], "license": LICENSE}}


# -- splits ---------------------------------------------------------------------------------------
def read_splits(wh: Warehouse, case_ids: list[str]) -> dict[str, str | None]:
    """cases.split of each case of the cohort."""
    df = wh.sql("SELECT case_id, split FROM cases WHERE case_id IN (SELECT unnest($ids))", {"ids": case_ids})
    return dict(df.iter_rows())


def case_splits(splits: Mapping[str, str | None]) -> dict[str, str]:
    """Each case's split name in the repository (null -> `UNASSIGNED`); an ExportError for a bad one."""
    out = {}
    for case_id, split in splits.items():
        name = UNASSIGNED if split is None else split
        if not SPLIT_NAME.fullmatch(name) or name in RESERVED_SPLITS:
            raise ExportError(f"case {case_id} has split {split!r}, which cannot name a Hugging Face split "
                              "(letters, digits and _, parts joined by '.', not 'all')",
                              hint="leave those cases out of the cohort query, or export --format bundle")
        out[case_id] = name
    return out


def ordered_splits(names: Iterable[str]) -> list[str]:
    """train, validation, test first, then the rest by name."""
    return sorted(set(names), key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER), s))


def data_file(config: str, split: str) -> str:
    """Path of a config's split inside the repository."""
    return f"{DATA}/{config}/{split}-{SHARD}.parquet"


# -- the text files -------------------------------------------------------------------------------
def write_dataset(c: Cohort, folder: Path) -> dict[str, dict[str, int]]:
    """Every config's Parquet files and README.md under `folder`; returns rows per config and split
    (a table without rows in the cohort is no config: `datasets` loads no empty split)."""
    splits = case_splits(read_splits(c.wh, c.case_ids))
    by_split = {s: [cid for cid in c.case_ids if splits[cid] == s] for s in ordered_splits(splits.values())}
    rows: dict[str, dict[str, int]] = {}
    for name in schema.TABLES:  # one table in memory at a time
        t = cohort_table(c.wh, name, c.case_ids)
        if name in schema.REFERENCE_TABLES:  # whole, in one split
            rows[name] = _write_splits(folder, name, {WHOLE: t})
            continue
        rows[name] = _write_splits(folder, name, {s: t.filter(pc.is_in(t["case_id"], pa.array(ids, pa.string())))
                                                  for s, ids in by_split.items()})
    if c.images or c.masks:
        rows[VOLUMES] = _write_splits(folder, VOLUMES, {s: volumes_table(c, ids) for s, ids in by_split.items()})
    dataset_card(c, rows).save(folder / CARD)
    return rows


def _write_splits(folder: Path, config: str, tables: Mapping[str, pa.Table]) -> dict[str, int]:
    """A config's Parquet file per split, empty splits left out (load_dataset refuses one); rows per split."""
    rows = {}
    for split, t in tables.items():
        if t.num_rows:
            path = folder / data_file(config, split)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(t, path, compression="zstd", row_group_size=ROW_GROUP_ROWS)
            rows[split] = t.num_rows
    return rows


def volumes_table(c: Cohort, case_ids: list[str]) -> pa.Table:
    """One row per case: its image's path and its masks' paths (struct region -> path), as planned."""
    fields = [pa.field("case_id", pa.string(), nullable=False)]
    columns: list[list] = [case_ids]
    files = {cid: c.plans.get(cid, []) for cid in case_ids}
    if c.images:
        fields.append(pa.field("image", pa.string()))
        columns.append([next((f.rel for f in files[cid] if f.kind == "image"), None) for cid in case_ids])
    if c.masks:
        fields.append(pa.field("masks", pa.struct([pa.field(r, pa.string()) for r in c.masks])))
        columns.append([{r: next((f.rel for f in files[cid] if f.kind == "mask" and f.region == r), None)
                         for r in c.masks} for cid in case_ids])
    fields = [f.with_metadata({b"description": VOLUME_COLUMNS[f.name].encode()}) for f in fields]
    return pa.Table.from_arrays([pa.array(col, f.type) for col, f in zip(columns, fields, strict=True)],
                                schema=pa.schema(fields))


# -- the dataset card -----------------------------------------------------------------------------
def dataset_card(c: Cohort, rows: Mapping[str, Mapping[str, int]]) -> DatasetCard:
    """The card: YAML by DatasetCardData (configs, license, ...), text on provenance, columns, licences."""
    from huggingface_hub import DatasetCard, DatasetCardData

    configs = [{"config_name": name, **({"default": True} if name == DEFAULT_CONFIG else {}),
                "data_files": [{"split": s, "path": data_file(name, s)} for s in splits]}
               for name, splits in rows.items() if splits]
    n = len(c.case_ids)
    data = DatasetCardData(license=LICENSE, language=["en"], pretty_name=f"RadGenome warehouse cohort ({n} cases)",
                           tags=TAGS, configs=configs)
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{card_text(c, rows)}")


def card_text(c: Cohort, rows: Mapping[str, Mapping[str, int]]) -> str:
    """The card's Markdown below the YAML."""
    n = len(c.case_ids)
    empty = [name for name, splits in rows.items() if not splits]
    rows = {name: splits for name, splits in rows.items() if splits}
    lines = [f"# RadGenome warehouse cohort: {n} chest-CT case{'s' if n != 1 else ''}", "",
             f"Exported by radgenome-warehouse (`radgenome export --format hf`) from snapshot `{c.wh.snapshot_id}` "
             "with the cohort query:", "", *(f"    {line}" for line in c.query.strip().splitlines()), "",
             "`manifest.json` lists every file with its sha256, the query's parameters and the export's options.",
             "", "## Configs", "",
             "Load one with `datasets.load_dataset(<this folder or repo id>, \"<config>\")`. The splits are the "
             f"cases' `cases.split` (a case without one is in `{UNASSIGNED}`); the reference tables (no "
             f"`case_id`) are whole, in the split `{WHOLE}`.", "",
             "| config | rows per split | what a row is |", "| --- | --- | --- |"]
    for name, splits in rows.items():
        what = "One row per case: its NIfTI files." if name == VOLUMES else schema.description(schema.TABLES[name])
        lines.append(f"| `{name}` | {', '.join(f'{s}: {k}' for s, k in splits.items())} | {_cell(what)} |")
    if empty:
        lines += ["", f"No rows of the cohort, so no config: {', '.join(f'`{name}`' for name in empty)}."]
    for name in rows:
        lines += ["", f"### `{name}`", ""]
        if name == VOLUMES:
            lines += [_volumes_text(c), "", *_columns(VOLUME_COLUMNS.items(), types=None)]
        else:
            table = schema.TABLES[name]
            lines += [schema.description(table), "",
                      *_columns(((f.name, schema.description(f)) for f in table), types=table)]
    if VOLUMES in rows:
        lines += ["", "## Images and masks", "", *_how_to_open(c, next(iter(rows[VOLUMES])))]
    lines += ["", "## Licence", "",
              f"The card's `license` is `{LICENSE}`, the terms this combination can be shared under: the released "
              "cases derive from CT-RATE's volumes and reports (CC-BY-NC-SA-4.0, whose ShareAlike term binds "
              "adaptations), and RadGenome-ChestCT's rows (CC-BY-4.0) may be shared under those stricter terms. "
              "Use is non-commercial; attribute and cite both datasets:", "",
              *(f"- {x['dataset']}: {x['licence']} ({LICENCE_URLS.get(x['licence'], '')}), {x['url']}"
                for x in LICENCES), "",
              "Rows whose `source` is `folder` come from the exporter's own inputs, whose terms are the "
              "exporter's to state.", "", "## Citation", "", "```bibtex", CITATION, "```", ""]
    return "\n".join(lines)


def _volumes_text(c: Cohort) -> str:
    text = "One row per case of the cohort"
    if c.crop:
        text += f"; images and masks are cropped to the box of `{c.crop}` grown by {c.margin_mm:g} mm"
    if c.masks:
        text += f"; mask regions: {', '.join(f'`{r}`' for r in c.masks)}"
    return text + ". Paths are relative to the repository's root."


def _columns(items: Iterable[tuple[str, str]], types: pa.Schema | None) -> list[str]:
    out = ["| column | type | description |", "| --- | --- | --- |"]
    for name, text in items:
        kind = _type_name(types.field(name).type) if types is not None else \
            ("struct (region: string)" if name == "masks" else "string")
        out.append(f"| `{name}` | {kind} | {_cell(text)} |")
    return out


def _type_name(t: pa.DataType) -> str:
    return f"list<{_type_name(t.value_type)}>" if pa.types.is_list(t) else str(t)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _how_to_open(c: Cohort, split: str) -> list[str]:
    region = c.masks[0] if c.masks else None
    code = ["```python", "import os", "", "import datasets", "import nibabel as nib", "",
            'root = "path/to/this/folder"  # or huggingface_hub.snapshot_download("<repo id>", repo_type="dataset")',
            f'ds = datasets.load_dataset(root, "volumes", split="{split}")', "row = ds[0]"]
    if c.images:
        code.append('ct = nib.load(os.path.join(root, row["image"]))  # int16 HU; ct.affine: the grid, mm (RAS)')
    if region:
        code.append(f'mask = nib.load(os.path.join(root, row["masks"][{json.dumps(region)}]))  # uint8 0/1, '
                    "on the image's grid")
    if c.images:
        code += ["", "# or as the datasets NIfTI feature, which decodes to nibabel images:",
                 'ds = ds.map(lambda r: {"image": r["image"] and os.path.join(root, r["image"])})',
                 'ds = ds.cast_column("image", datasets.Nifti())']
    code.append("```")
    return ["Image and mask columns hold paths relative to the repository's root (`images/<case>.nii.gz`, "
            "`masks/<case>/<region>.nii.gz`), so the files stay plain NIfTI for nibabel, MONAI or ITK; the "
            "affine (sform and qform) is the warehouse's grid.", "", *code]
