"""Segmentation providers behind one interface (`base.Segmenter`): import, monai, builtin.

`make_segmenter("builtin" | "import:DIR" | "monai:PATH" | "none")` returns one; torch
and monai load only when a MONAI model runs.
"""

from ingest.segment.base import Segmentation, Segmenter, make_segmenter, parse_spec

__all__ = ["Segmentation", "Segmenter", "make_segmenter", "parse_spec"]
