"""The `monai:PATH` provider: a segmentation model the user supplies, run with MONAI.

PATH is either

* a **MONAI bundle** folder: ``configs/metadata.json`` (labels from
  ``network_data_format.outputs.pred.channel_def``), ``configs/inference.json`` (or
  ``.yaml``; the ``Orientationd``, ``Spacingd`` and ``ScaleIntensityRanged`` steps of its
  ``preprocessing`` and the ``inferer``'s ``roi_size`` are used) and ``models/model.ts``
  (TorchScript) or ``models/model.pt`` (weights for ``network_def``); or
* a **TorchScript file** with a label-map JSON beside it (``<stem>.json``, else
  ``labels.json``)::

      {"labels": {"1": "left lung", "2": "lung_upper_lobe_left"},   # any DAG or TotalSegmentator name
       "orientation": "RAS", "spacing": [1.5, 1.5, 1.5], "roi_size": [96, 96, 96],
       "intensity": {"a_min": -1000, "a_max": 1000, "b_min": 0, "b_max": 1, "clip": true},
       "overlap": 0.25, "sw_batch_size": 2}

The CT is reoriented and resampled as configured, run through
`monai.inferers.sliding_window_inference`, and the argmax label map is resampled back
(nearest neighbour, in world coordinates) onto the CT's own stored grid. torch and monai
are imported only when a case is segmented; the model loads once per worker process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ingest.images import CTImage
from ingest.segment.base import Segmentation, Segmenter, region_for_name
from warehouse.core.errors import IngestError, UnknownRegionError


@dataclass
class ModelConfig:
    """Labels and pre-processing of a user model."""

    labels: dict[int, str]
    orientation: str = "RAS"
    spacing: tuple[float, ...] | None = None
    roi_size: tuple[int, ...] = (96, 96, 96)
    intensity: dict = field(default_factory=lambda: {"a_min": -1000.0, "a_max": 1000.0, "b_min": 0.0,
                                                     "b_max": 1.0, "clip": True})
    overlap: float = 0.25
    sw_batch_size: int = 2

    @classmethod
    def from_json(cls, path: Path) -> ModelConfig:
        data = json.loads(path.read_text())
        labels = data.get("labels", data) if isinstance(data, dict) else None
        if not isinstance(labels, dict):
            raise IngestError("label-map JSON needs {value: name} or {'labels': {value: name}}", file=str(path),
                              stage="masks")
        kw = {k: data[k] for k in ("orientation", "overlap", "sw_batch_size", "intensity") if k in data}
        kw.update({k: tuple(data[k]) for k in ("spacing", "roi_size") if data.get(k) is not None})
        return cls(labels={int(k): str(v) for k, v in labels.items() if int(k) != 0}, **kw)


def _bundle_config(folder: Path) -> tuple[ModelConfig, object]:
    """(config, ConfigParser) of a MONAI bundle folder."""
    from monai.bundle import ConfigParser

    meta = json.loads((folder / "configs" / "metadata.json").read_text())
    channels = meta["network_data_format"]["outputs"]["pred"]["channel_def"]
    cfg = ModelConfig(labels={int(k): v for k, v in channels.items() if int(k) != 0})
    infer = next((folder / "configs" / f"inference.{s}" for s in ("json", "yaml", "yml")
                  if (folder / "configs" / f"inference.{s}").is_file()), None)
    if infer is None:
        raise IngestError("bundle has no configs/inference.json", file=str(folder), stage="masks")
    parser = ConfigParser()
    parser.read_config(str(infer))
    steps = (parser.get("preprocessing") or {}).get("transforms", [])
    for i, step in enumerate(steps):
        target = str(step.get("_target_", "")) if isinstance(step, dict) else ""
        at = f"preprocessing#transforms#{i}#"
        if target.endswith(("Orientationd", "Orientation")):
            cfg.orientation = str(parser.get_parsed_content(at + "axcodes"))
        elif target.endswith(("Spacingd", "Spacing")):
            cfg.spacing = tuple(float(v) for v in np.atleast_1d(parser.get_parsed_content(at + "pixdim")))
        elif target.endswith(("ScaleIntensityRanged", "ScaleIntensityRange")):
            cfg.intensity = {k: parser.get_parsed_content(at + k) for k in
                             ("a_min", "a_max", "b_min", "b_max", "clip") if k in step}
    inferer = parser.get("inferer") or {}
    for key in ("roi_size", "sw_batch_size", "overlap"):
        if key in inferer:
            value = parser.get_parsed_content(f"inferer#{key}")
            setattr(cfg, key, tuple(int(v) for v in value) if key == "roi_size" else value)
    return cfg, parser


class MonaiSegmenter(Segmenter):
    """Sliding-window inference with a user-supplied TorchScript model or MONAI bundle."""

    mask_source = "monai"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._net = None
        if self.path.is_dir():
            if not (self.path / "configs" / "metadata.json").is_file():
                raise IngestError("not a MONAI bundle (no configs/metadata.json)", file=str(self.path),
                                  stage="masks")
            self.config, _ = _bundle_config(self.path)
        elif self.path.is_file():
            for cand in (self.path.with_suffix(".json"), self.path.with_name("labels.json")):
                if cand.is_file():
                    self.config = ModelConfig.from_json(cand)
                    break
            else:
                raise IngestError("a TorchScript model needs a label-map JSON beside it", file=str(self.path),
                                  stage="masks", hint=f"write {self.path.with_suffix('.json').name} or labels.json")
        else:
            raise IngestError(f"model {self.path} does not exist", stage="masks")

    @property
    def spec(self) -> str:
        return f"monai:{self.path}"

    def __getstate__(self) -> dict:  # the loaded network stays in its process
        return {**self.__dict__, "_net": None}

    def applies(self, case_id: str) -> bool:
        return True

    def network(self):
        """The model in eval mode (loaded on first use)."""
        if self._net is None:
            import torch

            model = self.path / "models" if self.path.is_dir() else None
            if model is None:
                net = torch.jit.load(str(self.path), map_location="cpu")
            elif (model / "model.ts").is_file():
                net = torch.jit.load(str(model / "model.ts"), map_location="cpu")
            else:
                _, parser = _bundle_config(self.path)
                net = parser.get_parsed_content("network_def")
                net.load_state_dict(torch.load(model / "model.pt", map_location="cpu", weights_only=True))
            self._net = net.eval()
        return self._net

    def predict(self, image: CTImage) -> np.ndarray:
        """The model's label map on `image`'s stored grid (int16)."""
        import torch
        from monai.data import MetaTensor
        from monai.inferers import sliding_window_inference
        from monai.transforms import Orientation, ScaleIntensityRange, Spacing

        cfg = self.config
        x = MetaTensor(torch.from_numpy(image.hu.astype(np.float32))[None],
                       affine=torch.from_numpy(image.affine))
        x = Orientation(axcodes=cfg.orientation, labels=(("L", "R"), ("P", "A"), ("I", "S")))(x)  # nibabel RAS+
        if cfg.spacing:
            x = Spacing(pixdim=cfg.spacing, mode="bilinear", padding_mode="border")(x)
        x = ScaleIntensityRange(**cfg.intensity)(x)
        with torch.inference_mode():
            out = sliding_window_inference(x[None].as_tensor(), roi_size=cfg.roi_size, sw_batch_size=cfg.sw_batch_size,
                                           predictor=self.network(), overlap=cfg.overlap)
        out = out[0]
        labels = (out[0] > 0).to(torch.int16) if out.shape[0] == 1 else out.argmax(0).to(torch.int16)
        to_pred = np.linalg.inv(np.asarray(x.affine, dtype=np.float64)) @ image.affine
        return ndi.affine_transform(labels.numpy(), to_pred[:3, :3], offset=to_pred[:3, 3],
                                    output_shape=image.hu.shape, order=0, mode="nearest")  # edges: float fuzz

    def segment(self, case_id: str, image: CTImage) -> Segmentation:
        seg = Segmentation(self.mask_source)
        labels = self.predict(image)
        for value, name in sorted(self.config.labels.items()):
            try:
                region_for_name(name)
                seg.classes[value] = name
            except UnknownRegionError:
                seg.problem(str(self.path), f"model label {value} {name!r} is not a region of the anatomy DAG")
                labels[labels == value] = 0
        seg.label_map = labels
        return seg
