"""The writer contract: labelled samples in, files on disk out (pure I/O).

A dataset job hands each finished sample to every writer (`write`), possibly from several
worker processes and shards at once, and in any order; when all samples are done it calls
`finalize` once with the manifest records of every sample, in index order, which writes
the dataset-level files (COCO's instances JSON, YOLO's data.yaml, ...). A sample's files
are named after its index (`stem`, "000042"), so a resumed or sharded run rewrites nothing
and leaves no hole. Every file is written atomically (`atomic.py`): a reader never sees a
half-written file, and a crash leaves at most a stray temporary file, never a corrupt one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from synthgen.registry import Registry


@dataclass(frozen=True, eq=False)
class Instance:
    """One defect instance of a sample.

    Attributes:
        defect_type: registered defect type ("bulge", ...).
        instance: 1-based instance number within the sample (matches the manifest).
        mask: (H, W) bool, exact pixel mask (empty when the defect is not visible).
        visible: whether any pixel shows the defect.
    """

    defect_type: str
    instance: int
    mask: np.ndarray
    visible: bool


@dataclass(frozen=True, eq=False)
class LabelledSample:
    """A sample as the writers see it (after augmentation).

    Attributes:
        index: sample index within the job.
        rgb: (H, W, 3) uint8 sRGB image.
        object_mask: (H, W) bool.
        instances: every defect instance, visible or not, in instance order.
        split: "train" or "test" (MVTec: defect-free training images vs test images;
            other formats record it too).
        record: the sample's manifest line (JSON-ready dict).
        object_masks: (H, W) bool per object of a multi-object scene (empty for one
            object); COCO writes them as instances of `DatasetInfo.object_category`.
    """

    index: int
    rgb: np.ndarray
    object_mask: np.ndarray
    instances: tuple[Instance, ...]
    split: Literal["train", "test"]
    record: dict[str, Any] = field(default_factory=dict)
    object_masks: tuple[np.ndarray, ...] = ()

    @property
    def stem(self) -> str:
        """File stem of this sample: the index, zero-padded to six digits."""
        return f"{self.index:06d}"

    @property
    def visible_instances(self) -> tuple[Instance, ...]:
        return tuple(i for i in self.instances if i.visible)

    @property
    def is_good(self) -> bool:
        """True when no defect is visible (a "good" image for anomaly detection)."""
        return not self.visible_instances


@dataclass(frozen=True)
class DatasetInfo:
    """What every writer needs to know about the whole dataset.

    Attributes:
        name: dataset / MVTec category name (a folder-safe word, e.g. "capped_bottle").
        defect_types: every defect type the job can produce, in a fixed order (the COCO
            category ids and YOLO class ids follow this order, starting at 1 and 0).
        width, height: image size in pixels.
        object_category: for multi-object scenes, the category name of the objects
            themselves (COCO gets one more category, after the defect types, and one
            annotation per visible object); None for one object per image.
    """

    name: str
    defect_types: tuple[str, ...]
    width: int
    height: int
    object_category: str | None = None


class Writer(Protocol):
    """A dataset format. Instances are cheap; one is made per process."""

    name: str

    def __init__(self, root: Path, info: DatasetInfo) -> None:
        """`root` is the job's output folder; the writer owns `root / <its folder>`."""

    def write(self, sample: LabelledSample) -> None:
        """Write this sample's files (atomically); safe to call again for the same index."""

    def finalize(self, records: Sequence[dict[str, Any]]) -> None:
        """Write the dataset-level files for the samples of `records` (their manifest
        records, in index order). A writer may read back what its `write` stored for
        those indices (for example per-sample annotation files)."""


WRITERS: Registry[type] = Registry("output format")
