"""COCO instances: one image file per sample and one annotations JSON for the dataset.

Layout:

    <root>/coco/images/<stem>.png               RGB image
    <root>/coco/annotations/instances.json      written by `finalize`
    <root>/.parts/coco/<stem>.json              per-sample part that `write` stores

`write` stores each sample's image entry and annotations (without ids) as a part file, so
that samples can be written in any order and by several processes; `finalize` joins the
parts of the samples it is given into instances.json:

- images: id = sample index + 1 (COCO ids start at 1), file_name relative to coco/images,
  width, height, and synthgen's image-level fields: index, split ("train" / "test"),
  is_good (no visible defect) and defect_types (the visible ones, in DatasetInfo order).
- annotations: one per visible defect instance, ids 1, 2, ... in (image index, instance)
  order; category_id; segmentation as compressed RLE {"size": [h, w], "counts": str};
  area (pixels); bbox [x, y, w, h] (pixels, top-left corner of the top-left pixel);
  iscrowd 0; instance (the 1-based instance number of the manifest) and, when the sample's
  manifest record has it, size_mm.
- categories: one per DatasetInfo.defect_types, ids from 1 in that order, supercategory
  "defect"; for multi-object scenes one more, the objects' (supercategory "object"), and
  one annotation per visible object.

The JSON has sorted keys and no time stamp: the same samples give the same bytes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from synthgen.errors import ConfigError, SynthgenError
from synthgen.labels import area, bbox, check_aligned, rle_encode, visible_instances
from synthgen.storage import Location, read_many, resolve
from synthgen.writers.atomic import write_json, write_png
from synthgen.writers.base import WRITERS, DatasetInfo, LabelledSample

log = logging.getLogger(__name__)


def _size_mm(record: dict[str, Any], instance: int) -> float | None:
    """The size_mm of defect `instance` in a manifest record, if the record has it."""
    for defect in record.get("defects", ()):
        if isinstance(defect, dict) and defect.get("instance") == instance:
            size = defect.get("size_mm")
            return None if size is None else float(size)
    return None


@WRITERS.register("coco")
class COCOWriter:
    """Writes COCO instances with RLE masks (see the module docstring).

    Args:
        root: the job's output folder; this writer owns `root / "coco"` and
            `root / ".parts" / "coco"`.
        info: the defect types (COCO categories, ids from 1 in this order).
    """

    name = "coco"

    def __init__(self, root: Location | str, info: DatasetInfo) -> None:
        self.info = info
        root = resolve(root)
        self.folder = root / "coco"
        self.parts = root / ".parts" / "coco"
        self.category_ids = {t: i + 1 for i, t in enumerate(info.defect_types)}

    @property
    def annotation_file(self) -> Location:
        """Path of the dataset's instances JSON."""
        return self.folder / "annotations" / "instances.json"

    def write(self, sample: LabelledSample) -> None:
        """Write the sample's image and its annotation part (atomically).

        Args:
            sample: rgb (H, W, 3) uint8; instance masks (H, W) bool.

        Raises:
            ConfigError: a visible instance has a defect type not in DatasetInfo.defect_types.
        """
        height, width = check_aligned(sample.rgb, (inst.mask for inst in sample.instances))
        shown = visible_instances(sample.instances)
        annotations = []
        for inst in shown:
            if inst.defect_type not in self.category_ids:
                raise ConfigError(
                    f"sample {sample.index}: defect type {inst.defect_type!r} is not one of "
                    f"the dataset's defect types {list(self.info.defect_types)}"
                )
            ann = {
                "category_id": self.category_ids[inst.defect_type],
                "segmentation": rle_encode(inst.mask),
                "area": area(inst.mask),
                "bbox": bbox(inst.mask),
                "iscrowd": 0,
                "instance": int(inst.instance),
            }
            size = _size_mm(sample.record, inst.instance)
            if size is not None:
                ann["size_mm"] = size
            annotations.append(ann)
        if self.info.object_category is not None:
            object_id = len(self.category_ids) + 1
            for k, mask in enumerate(sample.object_masks):
                if mask.any():
                    annotations.append({
                        "category_id": object_id, "segmentation": rle_encode(mask),
                        "area": area(mask), "bbox": bbox(mask), "iscrowd": 0, "object": k,
                    })
        present = {inst.defect_type for inst in shown}
        image = {
            "file_name": f"{sample.stem}.png",
            "width": width,
            "height": height,
            "index": int(sample.index),
            "split": sample.split,
            "is_good": not shown,
            "defect_types": [t for t in self.info.defect_types if t in present],
        }
        write_png(self.folder / "images" / image["file_name"], sample.rgb)
        write_json(self.parts / f"{sample.stem}.json", {"image": image, "annotations": annotations})

    def _read_part(self, index: int, data: bytes | Exception | None = None) -> dict[str, Any]:
        """Sample `index`'s part (from `data`, its bytes or the error reading them, if given)."""
        path = self.parts / f"{index:06d}.json"
        try:
            if data is None:
                data = path.read_bytes()
            if isinstance(data, Exception):
                raise data
            return json.loads(data.decode("utf-8"))
        except FileNotFoundError:
            raise SynthgenError(
                f"COCO: sample {index} has no annotation part {path}; write the sample "
                "before finalizing"
            ) from None
        except (OSError, ValueError) as exc:
            raise SynthgenError(f"COCO: cannot read annotation part {path}: {exc}") from exc

    def dataset(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The instances JSON (as a dict) of the samples of `records`, in index order.

        Args:
            records: manifest records, each with its sample's "index".
        """
        try:
            indices = sorted({int(r["index"]) for r in records})
        except (KeyError, TypeError, ValueError):
            raise SynthgenError("COCO: every manifest record needs an integer 'index'") from None
        data = read_many(self.parts / f"{index:06d}.json" for index in indices)
        images, annotations = [], []
        for index in indices:
            part = self._read_part(index, data[self.parts / f"{index:06d}.json"])
            image_id = index + 1
            images.append({**part["image"], "id": image_id})
            for ann in part["annotations"]:
                annotations.append({**ann, "id": len(annotations) + 1, "image_id": image_id})
        categories = [
            {"id": cid, "name": name, "supercategory": "defect"}
            for name, cid in self.category_ids.items()
        ]
        if self.info.object_category is not None:
            categories.append({"id": len(categories) + 1, "name": self.info.object_category,
                               "supercategory": "object"})
        return {
            "info": {"description": f"synthgen dataset {self.info.name}", "version": "1.0"},
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }

    def finalize(self, records: Sequence[dict[str, Any]]) -> None:
        """Write coco/annotations/instances.json for the samples of `records`."""
        data = self.dataset(records)
        write_json(self.annotation_file, data)
        log.info(
            "COCO: %d images, %d annotations → %s",
            len(data["images"]),
            len(data["annotations"]),
            self.annotation_file,
        )
