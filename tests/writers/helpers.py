"""Hand-made labelled samples for the writer tests: small masks whose labels are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthgen.writers.base import DatasetInfo, Instance, LabelledSample

H, W = 48, 64  # not square, so that a swapped x / y shows
INFO = DatasetInfo(name="widget", defect_types=("bulge", "dent", "scratch"), width=W, height=H)


def disc(cy: float, cx: float, r: float) -> np.ndarray:
    """(H, W) bool disc centred on pixel (cy, cx)."""
    yy, xx = np.mgrid[:H, :W]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def box(r0: int, c0: int, r1: int, c1: int) -> np.ndarray:
    """(H, W) bool rectangle of rows r0..r1-1, columns c0..c1-1."""
    m = np.zeros((H, W), dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


def empty() -> np.ndarray:
    return np.zeros((H, W), dtype=bool)


def image(index: int) -> np.ndarray:
    """(H, W, 3) uint8 image that differs from sample to sample."""
    rng = np.random.default_rng(index)
    return rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def _record(index: int, instances: tuple[Instance, ...]) -> dict:
    return {
        "index": index,
        "seed": 7,
        "defects": [
            {
                "type": i.defect_type,
                "instance": i.instance,
                "visible": i.visible,
                "size_mm": 0.25 * i.instance,
                "mask_area_px": int(i.mask.sum()),
            }
            for i in instances
        ],
    }


def sample(index: int, split: str, instances: tuple[Instance, ...]) -> LabelledSample:
    return LabelledSample(
        index=index,
        rgb=image(index),
        object_mask=box(4, 4, H - 4, W - 4),
        instances=instances,
        split=split,
        record=_record(index, instances),
    )


def make_samples() -> list[LabelledSample]:
    """Five samples covering the cases the writers must tell apart.

    0: train, good (its one defect is hidden: empty mask, not visible).
    1: test, one visible disc (bulge, 113 px) plus a hidden dent.
    2: test, a square dent and a two-component bulge: several types → "combined".
    3: train, a visible dent: must not land in train/good.
    4: test, good, no defect at all.
    """
    two_parts = box(30, 5, 38, 13) | box(30, 40, 36, 52)
    return [
        sample(0, "train", (Instance("dent", 1, empty(), False),)),
        sample(
            1,
            "test",
            (Instance("bulge", 1, disc(20, 30, 6), True), Instance("dent", 2, empty(), False)),
        ),
        sample(
            2,
            "test",
            (Instance("dent", 1, box(5, 20, 15, 30), True), Instance("bulge", 2, two_parts, True)),
        ),
        sample(3, "train", (Instance("dent", 1, disc(24, 40, 5), True),)),
        sample(4, "test", ()),
    ]


def records(samples: list[LabelledSample]) -> list[dict]:
    """Manifest records in index order, as the pipeline hands them to `finalize`."""
    return [s.record for s in sorted(samples, key=lambda s: s.index)]


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative POSIX path → bytes)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def write_shard(root: Path, names: tuple[str, ...], indices: list[int]) -> None:
    """Write samples `indices` with the named writers then the manifest (a worker process)."""
    from synthgen.writers import WRITERS
    from synthgen.writers.manifest import ManifestWriter

    writers = [WRITERS.get(n)(root, INFO) for n in names]
    manifest = ManifestWriter(root, INFO)
    for s in make_samples():
        if s.index in indices:
            for w in writers:
                w.write(s)
            manifest.write(s)
