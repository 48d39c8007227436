"""What the array store records about a case: OME-Zarr 0.5 metadata and its structures.

Structures (one per mask: name, region, layer, label value, voxels, bbox, parts) are the
`properties` of each layer's OME `image-label`, so one list serves viewers and readers. A
structure with `parts` (a parent mask stored as the union of its children) has only its
remaining voxels under its label value; `warehouse.store.arrays.layers.pieces` expands it.

Only what costs nothing is written (https://ngff.openmicroscopy.org/0.5/): one resolution
level, axes x, y, z in millimetres (the stored NIfTI voxel order), scale from the voxel
spacing and translation from the origin. A rotation or flip cannot be expressed in
OME-Zarr 0.5, so the full 4x4 affine is kept beside it in the case attributes; viewers
that read only OME metadata see the volume axis-aligned.

Against an OME-NGFF 0.5 validator (ome-zarr-models' ``Image``, ``Labels``, ``ImageLabel``; the
tests run it over the demo store and a real TotalSegmentator case) every case group, `labels`
group and label layer validates. Each array also names its axes (``dimension_names`` = `AXES`,
written by `ArrayStore`); stores written before they did lack them, which no reader needs.
Where the layout departs from a plain OME-Zarr image by design, this is what a viewer
(ome-zarr's reader, napari-ome-zarr on top of it) sees when it opens a case group:

- the CT at dataset path ``image`` (any path is allowed; tools writing pyramids use "0"), axes
  x, y, z: the spec's SHOULD is z, y, x, so napari shows the last two axes (y, z) as the plane,
  a sagittal slice, with a slider over x (transpose in the viewer, or export --format ome-zarr);
- several label images per case, ``<source>-<n>``: one napari Labels layer each, hidden until
  shown, its colours and `properties` (the structure list) per label value; masks that overlap
  sit in different layers, so nested structures (lung, lobe) show by toggling layers;
- a structure stored as its parts: its own value covers only its remaining voxels (often none,
  then it is listed under ``unions``, not in any layer); a viewer shows the parts, each with its
  own value and colour; `parts.pieces` gives the whole mask;
- ``labels.empty`` and ``labels.unions`` sit outside the ``ome`` key: viewers ignore them;
- a case without a CT has no ``ome`` on its group (no image to show): open ``<case>/labels``
  instead; its layers have no ``source.image``, so the reader shows them alone (and logs that
  no parent image was found).
"""

from __future__ import annotations

import colorsys
import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from warehouse.core.boxes import Box
from warehouse.core.grid import spacing  # its home; `ome.spacing` stays importable

if TYPE_CHECKING:
    from warehouse.store.arrays.io import RemoteNode

    Node = Path | RemoteNode

VERSION = "0.5"
REQUESTS = 16  # metadata files read at once from a bucket
AXES = ("x", "y", "z")


@dataclass(frozen=True)
class Structure:
    """One mask of a case: where it lives (layer, value) and its extent."""

    name: str  # the name the source gave it (file stem, class name)
    region_id: int
    region: str
    mask_source: str
    layer: str | None  # None for an empty structure
    value: int | None
    voxels: int
    bbox: Box | None
    # Names of this source's structures inside this one whose union, with the voxels under
    # (layer, value), is this mask; then (layer, value) holds only the rest, or nothing.
    parts: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bbox"] = [list(self.bbox[0]), list(self.bbox[1])] if self.bbox else None
        d["parts"] = list(self.parts)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> Structure:
        bbox = d.get("bbox")
        return cls(name=d["name"], region_id=int(d["region_id"]), region=d["region"],
                   mask_source=d["mask_source"], layer=d.get("layer"), value=d.get("value"),
                   voxels=int(d["voxels"]), bbox=(tuple(bbox[0]), tuple(bbox[1])) if bbox else None,
                   parts=tuple(d.get("parts") or ()))

    def ome_property(self) -> dict:
        """This structure as an entry of OME `image-label.properties`."""
        d = self.to_dict()
        d["label-value"] = d.pop("value")
        d.pop("layer")
        return d


def read_attrs(node: Node) -> dict | None:
    """The attributes in a node's ``zarr.json``, or None if there is no node (`node`: a local
    folder, or a `RemoteNode` in a bucket).

    Read as plain JSON (the Zarr v3 metadata file) rather than through zarr's group API:
    opening a case is then about 1 ms instead of about 10 (one file per label layer), which
    matters to data loaders opening many cases in many workers.
    """
    try:
        return json.loads((node / "zarr.json").read_bytes()).get("attributes", {})
    except FileNotFoundError:
        return None


def read_many(nodes: Sequence[Node]) -> list[dict | None]:
    """`read_attrs` of each node: in turn from a local folder, many requests at once from a bucket."""
    if len(nodes) < 2 or isinstance(nodes[0], Path):
        return [read_attrs(n) for n in nodes]
    with ThreadPoolExecutor(min(len(nodes), REQUESTS)) as pool:
        return list(pool.map(read_attrs, nodes))


def read_structures(case_dir: Node) -> list[Structure]:
    """Every structure of a case: each layer's image-label properties, then those in no layer
    (``empty``: no voxel; ``unions``: exactly the union of their parts)."""
    labels = read_attrs(case_dir / "labels") or {}
    out = []
    names = labels.get("ome", {}).get("labels", [])
    for name, attrs in zip(names, read_many([case_dir / "labels" / n for n in names]), strict=True):
        for p in (attrs or {})["ome"]["image-label"]["properties"]:
            out.append(Structure.from_dict({**p, "layer": name, "value": p["label-value"]}))
    return out + [Structure.from_dict(d) for key in ("unions", "empty") for d in labels.get(key, [])]


def multiscales(name: str, path: str, affine: np.ndarray) -> list[dict]:
    """A one-level `multiscales` list for the array at `path` on the grid of `affine`."""
    affine = np.asarray(affine, dtype=float)
    return [{
        "name": name,
        "axes": [{"name": a, "type": "space", "unit": "millimeter"} for a in AXES],
        "datasets": [{"path": path, "coordinateTransformations": [
            {"type": "scale", "scale": [float(s) for s in spacing(affine)]},
            {"type": "translation", "translation": [float(t) for t in affine[:3, 3]]},
        ]}],
    }]


def image_attrs(case_id: str, affine: np.ndarray) -> dict:
    """The `ome` attribute of a case group that holds an image."""
    return {"version": VERSION, "multiscales": multiscales(case_id, "image", affine)}


def labels_attrs(layers: Iterable[str]) -> dict:
    """The `ome` attribute of the `labels` group: the names of its label images."""
    return {"version": VERSION, "labels": list(layers)}


def region_rgba(region_id: int) -> list[int]:
    """A stable colour for a region: the same in every case, layer and viewer session.

    Hue steps by the golden ratio over a hash of the region id (the id is already a hash of
    the name), so neighbouring ids get well separated hues.
    """
    h = (int(region_id) * 0.6180339887498949) % 1.0
    s = 0.55 + 0.4 * ((int(region_id) >> 8) % 7) / 6
    v = 0.75 + 0.25 * ((int(region_id) >> 16) % 5) / 4
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return [round(r * 255), round(g * 255), round(b * 255), 255]


def image_label_attrs(case_id: str, layer: str, affine: np.ndarray, properties: Iterable[Mapping],
                      has_image: bool) -> dict:
    """The `ome` attribute of one label layer group (`labels/<layer>`, array `0`).

    `properties`: one mapping per label value, with at least `label-value` and `region_id`;
    every key is kept (OME's `properties` allows any), so the value -> structure map and
    the OME metadata are one list.
    """
    props = [dict(p) for p in properties]
    out: dict = {
        "version": VERSION,
        "multiscales": multiscales(f"{case_id}:{layer}", "0", affine),
        "image-label": {
            "colors": [{"label-value": p["label-value"], "rgba": region_rgba(p["region_id"])} for p in props],
            "properties": props,
        },
    }
    if has_image:
        out["image-label"]["source"] = {"image": "../../"}
    return out
