"""MVTec AD folders, as anomalib's `MVTec` and `Folder` data modules read them.

Layout under `<root>/mvtec/<name>/` (`name` = DatasetInfo.name, the MVTec "category"):

    train/good/<stem>.png              defect-free images of split "train"
    test/good/<stem>.png               defect-free images of split "test"
    test/<defect>/<stem>.png           images showing defects of one type
    test/combined/<stem>.png           images showing defects of several types
    ground_truth/<defect>/<stem>_mask.png   for every defective test image: (H, W) 8-bit
                                       grey PNG, 255 on the union of its visible defect
                                       masks, 0 elsewhere (`combined` likewise)

Images are RGB PNGs (anomalib's MVTec loader globs `*.png` only). A "good" image is one with
no visible defect (a defect hidden from the camera leaves the image good) and has no mask,
as in MVTec AD. A "train" sample that shows a defect must not poison the defect-free
training set: it is written under test/ instead, with a log message.

anomalib pairs masks with images by sorting both path lists, which holds as long as stems
have equal length (fewer than a million samples at six digits).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from synthgen.errors import ConfigError
from synthgen.labels import check_aligned, visible_instances
from synthgen.storage import Location, resolve
from synthgen.writers.atomic import write_png
from synthgen.writers.base import WRITERS, DatasetInfo, LabelledSample

log = logging.getLogger(__name__)

GOOD = "good"
COMBINED = "combined"


@WRITERS.register("mvtec")
class MVTecWriter:
    """Writes the MVTec AD layout (see the module docstring).

    Args:
        root: the job's output folder; this writer owns `root / "mvtec"`.
        info: the dataset's name (the category folder) and defect types.

    Raises:
        ConfigError: a defect type is named "good" or "combined" (reserved folder names).
    """

    name = "mvtec"

    def __init__(self, root: Location | str, info: DatasetInfo) -> None:
        reserved = {GOOD, COMBINED} & set(info.defect_types)
        if reserved:
            raise ConfigError(
                f"defect type {sorted(reserved)[0]!r} clashes with an MVTec folder name; "
                f"rename it (the names {GOOD!r} and {COMBINED!r} are reserved)"
            )
        self.info = info
        self.folder = resolve(root) / "mvtec" / info.name

    def paths(self, sample: LabelledSample) -> tuple[Location, Location | None]:
        """Where `sample` goes: (image path, mask path or None for a good image)."""
        return self._paths(sample, visible_instances(sample.instances))

    def _paths(
        self, sample: LabelledSample, shown: Sequence[Any]
    ) -> tuple[Location, Location | None]:
        if not shown:
            split = "train" if sample.split == "train" else "test"
            return self.folder / split / GOOD / f"{sample.stem}.png", None
        types = {inst.defect_type for inst in shown}
        label = types.pop() if len(types) == 1 else COMBINED
        image = self.folder / "test" / label / f"{sample.stem}.png"
        return image, self.folder / "ground_truth" / label / f"{sample.stem}_mask.png"

    def write(self, sample: LabelledSample) -> None:
        """Write the sample's image and, when it shows a defect, its mask (atomically).

        Args:
            sample: rgb (H, W, 3) uint8; instance masks (H, W) bool.
        """
        check_aligned(sample.rgb, (inst.mask for inst in sample.instances))
        shown = visible_instances(sample.instances)
        image_path, mask_path = self._paths(sample, shown)
        if mask_path is not None and sample.split == "train":
            log.info(
                "sample %d is in the train split but shows a defect: written to %s instead of "
                "train/good",
                sample.index,
                image_path.parent.relative_to(self.folder),
            )
        write_png(image_path, sample.rgb)
        if mask_path is not None:
            union = np.zeros(sample.rgb.shape[:2], dtype=bool)
            for inst in shown:
                union |= np.asarray(inst.mask, dtype=bool)
            write_png(mask_path, union.astype(np.uint8) * 255)

    def finalize(self, records: Sequence[dict[str, Any]]) -> None:
        """Nothing to do: MVTec AD has no dataset-level file."""
        log.debug("MVTec AD folder %s holds %d samples", self.folder, len(records))
