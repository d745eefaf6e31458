"""Dataset writers. Importing this package registers the formats in WRITERS."""

from synthgen.writers import coco, mvtec, yolo  # noqa: F401  (registers the writers)
from synthgen.writers.base import WRITERS, DatasetInfo, Instance, LabelledSample, Writer

__all__ = ["WRITERS", "DatasetInfo", "Instance", "LabelledSample", "Writer"]
