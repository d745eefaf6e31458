"""A torch Dataset over `synthgen.detect.data.Item`s, with flips that keep labels aligned.

Imported by training code only (it imports torch at module level). Each sample is resized
to S×S (image bilinear with antialiasing, mask nearest, boxes scaled by the same factors)
and, for training, flipped horizontally and/or vertically: image, mask and boxes together.
The flips of sample i in epoch e are drawn from `np.random.default_rng([seed, e, i])`, so a
run is reproducible whatever the DataLoader's worker count or order.

With DataLoader workers, call `set_epoch` before iterating and keep `persistent_workers`
False (the default), so the workers get the dataset with the new epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from synthgen.detect.data import Item, class_names, load_image, load_mask

log = logging.getLogger(__name__)


def _resize(image: np.ndarray, mask: np.ndarray, size: tuple[int, int]
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W, 3) uint8 and (H, W) bool → (3, S, S) float32 [0, 1] and (1, S, S) float32."""
    img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    msk = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    if tuple(img.shape[-2:]) != size:
        img = F.interpolate(img, size=size, mode="bilinear", align_corners=False,
                            antialias=True).clamp_(0.0, 1.0)
        msk = F.interpolate(msk, size=size, mode="nearest-exact")
    return img[0], msk[0]


class DefectDataset(Dataset):
    """Items as resized tensors, with seeded random flips when training.

    Args:
        items: the Items (from one reader, so their box classes share `class_names`).
        size: output side S in pixels (or (S_h, S_w)).
        train: apply random flips (each with probability `hflip` / `vflip`).
        rng_seed: seed of the flips; sample i of epoch e uses rng [rng_seed, e, i].
        hflip, vflip: probabilities of a horizontal / vertical flip when training.
        cache: keep each resized image and mask in memory after the first read (per
            process: each DataLoader worker fills its own).

    A sample (`__getitem__`) is a dict:
        image: (3, S, S) float32 in [0, 1], RGB.
        mask: (1, S, S) float32 in {0, 1}, the defect mask.
        label: () int64, 0 good, 1 defective.
        boxes: (N, 4) float32 [x1, y1, x2, y2] in pixels of the S×S frame.
        classes: (N,) int64 defect type ids (indices into `class_names`).
        index: int, the sample's position in `items`.
    """

    def __init__(self, items: Sequence[Item], size: int | tuple[int, int] = 256,
                 train: bool = False, rng_seed: int = 0, hflip: float = 0.5,
                 vflip: float = 0.5, cache: bool = False) -> None:
        self.items = list(items)
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if min(self.size) < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.train = train
        self.rng_seed = int(rng_seed)
        self.hflip, self.vflip = float(hflip), float(vflip)
        self.epoch = 0
        self.class_names = class_names(self.items)
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor, np.ndarray]] | None = (
            {} if cache else None)

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose flips the next samples draw."""
        self.epoch = int(epoch)

    def flips(self, index: int) -> tuple[bool, bool]:
        """(horizontal, vertical) flips of sample `index` in the current epoch."""
        if not self.train:
            return False, False
        rng = np.random.default_rng([self.rng_seed, self.epoch, int(index)])
        draws = rng.random(2)
        return bool(draws[0] < self.hflip), bool(draws[1] < self.vflip)

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        item = self.items[index]
        image, mask = load_image(item), load_mask(item)
        if image.shape[:2] != mask.shape:
            raise ValueError(
                f"mask of {item.image} is {mask.shape[::-1]} pixels, the image "
                f"{image.shape[1::-1]}"
            )
        img, msk = _resize(image, mask, self.size)
        scale = np.array([self.size[1] / image.shape[1], self.size[0] / image.shape[0]] * 2,
                         dtype=np.float32)
        boxes = np.asarray(item.boxes, dtype=np.float32).reshape(-1, 4) * scale
        if self._cache is not None:
            img = (img * 255.0).round().to(torch.uint8)
            msk = msk.to(torch.bool)
            self._cache[index] = (img, msk, boxes)
        return img, msk, boxes

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.items):
            raise IndexError(f"index {index} out of range for {len(self.items)} items")
        img, msk, boxes = self._load(index)
        if img.dtype == torch.uint8:  # cached
            img = img.float() / 255.0
        img, msk, boxes = img.float(), msk.float(), boxes.copy()
        height, width = self.size
        hflip, vflip = self.flips(index)
        if hflip:
            img, msk = img.flip(-1), msk.flip(-1)
            boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
        if vflip:
            img, msk = img.flip(-2), msk.flip(-2)
            boxes[:, [1, 3]] = height - boxes[:, [3, 1]]
        item = self.items[index]
        return {
            "image": img.contiguous(),
            "mask": msk.contiguous(),
            "label": torch.tensor(int(item.label), dtype=torch.int64),
            "boxes": torch.from_numpy(boxes),
            "classes": torch.tensor(np.asarray(item.classes), dtype=torch.int64),
            "index": int(index),
        }


def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Join DefectDataset samples into a batch (for DataLoader's collate_fn).

    Returns:
        image (B, 3, S, S) float32, mask (B, 1, S, S) float32, label (B,) int64 and
        index (B,) int64 stacked (and "clean" (B, 3, S, S), the images before synthetic
        anomalies, when the samples have it); boxes and classes as lists of B tensors
        ((N_i, 4) float32, (N_i,) int64), since detectors take one set of boxes per image.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    extra = {key: torch.stack([s[key] for s in batch]) for key in ("clean",) if key in batch[0]}
    return {
        **extra,
        "image": torch.stack([s["image"] for s in batch]),
        "mask": torch.stack([s["mask"] for s in batch]),
        "label": torch.stack([s["label"] for s in batch]),
        "boxes": [s["boxes"] for s in batch],
        "classes": [s["classes"] for s in batch],
        "index": torch.tensor([s["index"] for s in batch], dtype=torch.int64),
    }
