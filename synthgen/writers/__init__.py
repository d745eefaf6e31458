"""Dataset writers: MVTec AD folders, COCO instances, YOLO detect/segment, the manifest."""

from synthgen.writers.base import WRITERS, DatasetInfo, Instance, LabelledSample, Writer

__all__ = ["WRITERS", "DatasetInfo", "Instance", "LabelledSample", "Writer"]
