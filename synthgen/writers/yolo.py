"""Ultralytics YOLO datasets: segment ("yolo") and detect ("yolo_detect") formats.

Layout under `<root>/yolo/` (segment) or `<root>/yolo_detect/` (detect), with split "train"
kept as `train` and split "test" written as `val` (ultralytics trains on train, validates
on val):

    images/<train|val>/<stem>.png       RGB image
    labels/<train|val>/<stem>.txt       one line per object, empty for a good image
    data.yaml                           written by `finalize`

data.yaml holds no `path`: ultralytics then takes the yaml's own folder as the dataset
root, so the dataset can be moved and the file is the same wherever it was written. It
holds `train` and `val` (image folders relative to that root; `val` falls back to the train
images, with a warning, when no sample is in the test split) and `names` ({class id:
defect type}, ids from 0 in DatasetInfo order).

Label lines, coordinates normalised by the image width (x) and height (y), 6 decimals:

- segment: `class x1 y1 x2 y2 ...`, the exact outer pixel-edge outline of the mask
  (`synthgen.labels.polygons`). An instance whose mask has several 8-connected components
  gives one line per component (ultralytics has no multi-polygon objects; the alternative,
  keeping the largest, would drop defect pixels); holes are filled.
- detect: `class xc yc w h`, the instance's box (centre and size), one line per instance.

Ultralytics rasterises a segment with cv2.fillPoly on pixel coordinates, which fills the
pixels the outline passes through, so its masks are about a pixel larger on the right and
bottom; its boxes (the polygon's extent) match the mask's box exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from synthgen.errors import ConfigError
from synthgen.labels import bbox, check_aligned, polygons, visible_instances
from synthgen.storage import Location, file_names, resolve
from synthgen.writers.atomic import write_png, write_text
from synthgen.writers.base import WRITERS, DatasetInfo, LabelledSample

log = logging.getLogger(__name__)

SPLIT_FOLDERS = {"train": "train", "test": "val"}
"""Sample split → ultralytics folder name."""


def _fmt(values: Sequence[float]) -> str:
    return " ".join(f"{v:.6f}" for v in values)


@WRITERS.register("yolo")
class YOLOWriter:
    """Writes an ultralytics YOLO dataset (see the module docstring).

    Args:
        root: the job's output folder; this writer owns `root / "yolo"` ("segment") or
            `root / "yolo_detect"` ("detect").
        info: the defect types (class ids from 0 in this order).
        task: "segment" (polygons) or "detect" (boxes).
        tolerance: polygon simplification tolerance in pixels (0 keeps the exact outline).
    """

    name = "yolo"

    def __init__(
        self,
        root: Location | str,
        info: DatasetInfo,
        task: Literal["segment", "detect"] = "segment",
        tolerance: float = 0.0,
    ) -> None:
        if task not in ("segment", "detect"):
            raise ConfigError(f"YOLO task must be 'segment' or 'detect', got {task!r}")
        self.info = info
        self.task = task
        self.tolerance = float(tolerance)
        self.folder = resolve(root) / ("yolo" if task == "segment" else "yolo_detect")
        self.class_ids = {t: i for i, t in enumerate(info.defect_types)}

    def paths(self, sample: LabelledSample) -> tuple[Location, Location]:
        """(image path, label path) of `sample`."""
        split = SPLIT_FOLDERS[sample.split]
        return (
            self.folder / "images" / split / f"{sample.stem}.png",
            self.folder / "labels" / split / f"{sample.stem}.txt",
        )

    def label_lines(self, sample: LabelledSample) -> list[str]:
        """The label file's lines for `sample` (without newlines); [] for a good image.

        Raises:
            ConfigError: a visible instance has a defect type not in DatasetInfo.defect_types.
        """
        height, width = check_aligned(sample.rgb, (inst.mask for inst in sample.instances))
        scale = np.array([width, height], dtype=np.float64)
        lines = []
        for inst in visible_instances(sample.instances):
            cls = self.class_ids.get(inst.defect_type)
            if cls is None:
                raise ConfigError(
                    f"sample {sample.index}: defect type {inst.defect_type!r} is not one of "
                    f"the dataset's defect types {list(self.info.defect_types)}"
                )
            if self.task == "detect":
                x, y, w, h = bbox(inst.mask)
                box = [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]
                lines.append(f"{cls} {_fmt(box)}")
                continue
            for poly in polygons(inst.mask, tolerance=self.tolerance):
                lines.append(f"{cls} {_fmt((poly / scale).ravel())}")
        return lines

    def write(self, sample: LabelledSample) -> None:
        """Write the sample's image and label file (atomically).

        Args:
            sample: rgb (H, W, 3) uint8; instance masks (H, W) bool.
        """
        lines = self.label_lines(sample)
        image_path, label_path = self.paths(sample)
        write_png(image_path, sample.rgb)
        write_text(label_path, "".join(line + "\n" for line in lines))

    def data_yaml(self, records: Sequence[dict[str, Any]]) -> str:
        """The text of data.yaml for the samples of `records` (manifest records with "index")."""
        import yaml

        stems = [f"{int(r['index']):06d}.png" for r in records if "index" in r]
        val_images = file_names(self.folder / "images" / "val")  # one listing
        has_val = any(s in val_images for s in stems)
        if not has_val:
            log.warning(
                "YOLO: no sample is in the test split; data.yaml validates on the train images"
            )
        data = {
            "train": "images/train",
            "val": "images/val" if has_val else "images/train",
            "names": {i: t for t, i in self.class_ids.items()},
        }
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)

    def finalize(self, records: Sequence[dict[str, Any]]) -> None:
        """Write data.yaml."""
        write_text(self.folder / "data.yaml", self.data_yaml(records))


@WRITERS.register("yolo_detect")
class YOLODetectWriter(YOLOWriter):
    """The YOLO detect format (boxes) under `root / "yolo_detect"`; see `YOLOWriter`."""

    name = "yolo_detect"

    def __init__(self, root: Location | str, info: DatasetInfo, tolerance: float = 0.0) -> None:
        super().__init__(root, info, task="detect", tolerance=tolerance)
