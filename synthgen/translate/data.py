"""Unpaired data for the translator: good images (domain X), defective images + masks (Y).

`read_domain` reads either domain from any layout the project knows, through the readers
of `synthgen.detect.data`:

- a dataset `read_dataset` recognises (MVTec AD category, synthgen job folder, COCO, YOLO):
  its good (label 0) or defective (label 1) images;
- a test-only MVTec folder, as `translate apply` writes it (test/<type>, ground_truth);
- the magnetic tile layout (`MT_Free/Imgs/*.jpg` with same-stem `.png` masks), or any folder
  of non-PNG images with same-stem PNG masks beside them;
- a plain folder of images, with `masks` a folder of `<stem>.png` or `<stem>_mask.png` masks.

`JointTransform` draws one set of random parameters per sample and applies it to an image
and its mask together: resize to `load_size`², random crop to `size`², horizontal and
vertical flips, an elastic deformation (a smooth random displacement field, bilinear for the
image and nearest-neighbour for the mask), and normalisation to [-1, 1]. Pure numpy + scipy;
the torch Dataset (`UnpairedDataset`) wraps it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from synthgen.detect.data import (
    IMAGE_SUFFIXES,
    Item,
    load_image,
    load_mask,
    read_dataset,
    read_mask_folder,
)
from synthgen.errors import ConfigError

log = logging.getLogger(__name__)

Role = Literal["good", "defective"]


# --------------------------------------------------------------------------- reading


def _mask_folder_layout(folder: Path) -> bool:
    """True when `folder` (recursively) holds non-PNG images with same-stem PNG masks."""
    for path in folder.rglob("*"):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.suffix.lower() != ".png":
            if path.with_suffix(".png").is_file():
                return True
    return False


def _plain_folder(folder: Path, role: Role, masks: Path | None) -> list[Item]:
    """Items of a plain image folder; masks (if any) from the folder `masks`."""
    images = sorted(p for p in folder.rglob("*")
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                    and not p.stem.endswith("_mask"))
    items = []
    for image in images:
        mask = None
        if masks is not None:
            for name in (f"{image.stem}.png", f"{image.stem}_mask.png"):
                if (masks / name).is_file():
                    mask = masks / name
            if mask is None:
                raise ConfigError(f"image {image} has no mask in {masks}: expected "
                                  f"{image.stem}.png or {image.stem}_mask.png")
        items.append(Item(image=image, mask=mask, label=int(role == "defective"),
                          defect_type=folder.name if role == "defective" else None))
    return items


def _test_only_category(path: Path) -> Path | None:
    """The MVTec category folder of a test-only MVTec layout (what `translate apply`
    writes: `mvtec/<name>/test/<type>/`, `ground_truth/<type>/`, no train/good), or None."""
    candidates = [path] + (sorted(p for p in (path / "mvtec").iterdir() if p.is_dir())
                           if (path / "mvtec").is_dir() else [])
    for folder in candidates:
        if (folder / "test").is_dir() and not (folder / "train" / "good").is_dir():
            return folder
    return None


def _read_test_only(category: Path, role: Role) -> list[Item]:
    """Items of a test-only MVTec category: test/good good, test/<type> defective."""
    items = []
    for folder in sorted(p for p in (category / "test").iterdir() if p.is_dir()):
        defect = folder.name != "good"
        if defect != (role == "defective"):
            continue
        for image in sorted(folder.glob("*.png")):
            mask = category / "ground_truth" / folder.name / f"{image.stem}_mask.png"
            if defect and not mask.is_file():
                raise ConfigError(f"defective image {image} has no mask: expected {mask}")
            items.append(Item(image=image, mask=mask if defect else None, label=int(defect),
                              defect_type=folder.name if defect else None))
    return items


def read_domain(path: str | Path, role: Role, masks: str | Path | None = None) -> list[Item]:
    """Read the good or the defective images of a folder (see the module docstring).

    Args:
        path: dataset or image folder.
        role: "good" keeps label-0 images, "defective" label-1 images.
        masks: a folder of masks for a plain image folder (defective role only).

    Returns:
        Items in the reader's (sorted) order; defective Items carry their mask.

    Raises:
        ConfigError: the folder is missing or holds no image of that role.
    """
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{role} image folder {path} does not exist or is not a folder")
    if masks is not None:
        masks = Path(masks)
        if not masks.is_dir():
            raise ConfigError(f"mask folder {masks} does not exist or is not a folder")
        items = _plain_folder(path, role, masks)
    else:
        try:
            items = read_dataset(path)
            items = [i for i in items if i.label == int(role == "defective")]
        except ConfigError:
            category = _test_only_category(path)
            if category is not None:
                items = _read_test_only(category, role)
            elif _mask_folder_layout(path):
                if role == "good":
                    items = read_mask_folder(path.parent, [path.name], [])
                else:
                    items = [i for i in read_mask_folder(path.parent, [], [path.name])
                             if i.label == 1]
            else:
                items = _plain_folder(path, role, None)
    if not items:
        raise ConfigError(f"{path} holds no {role} images (looked for a dataset layout, "
                          "images with same-stem PNG masks, or plain images)")
    log.info("%s domain: %d images from %s", role, len(items), path)
    return items


# --------------------------------------------------------------------------- transforms


@dataclass(frozen=True)
class JointTransform:
    """Random resize-crop, flips and elastic deformation of an image and its mask together.

    Attributes:
        size: output side in pixels (a multiple of 4).
        load_size: side images are resized to before the random crop (>= size).
        hflip, vflip: flip probabilities.
        elastic_p: probability of the elastic deformation.
        elastic_alpha: displacement scale, in pixels of the output.
        elastic_sigma: smoothness of the displacement field (Gaussian sigma, pixels).
        train: False gives the deterministic version (resize to size², nothing random).
    """

    size: int = 256
    load_size: int = 286
    hflip: float = 0.5
    vflip: float = 0.5
    elastic_p: float = 0.5
    elastic_alpha: float = 20.0
    elastic_sigma: float = 6.0
    train: bool = True

    def __post_init__(self) -> None:
        if self.size % 4 or self.size < 8 or self.load_size < self.size:
            raise ConfigError(f"size must be a multiple of 4 (>= 8) and load_size >= size, got "
                              f"size {self.size}, load_size {self.load_size}")

    def resize(self, rgb: np.ndarray, mask: np.ndarray, side: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 and (H, W) bool → side² (bicubic image, nearest mask)."""
        image = np.asarray(Image.fromarray(rgb).resize((side, side), Image.BICUBIC))
        small = Image.fromarray(mask.astype(np.uint8) * 255).resize((side, side), Image.NEAREST)
        return image, np.asarray(small) > 127

    def __call__(self, rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Transform one pair.

        Args:
            rgb: (H, W, 3) uint8 (already at load_size² when from `UnpairedDataset`).
            mask: (H, W) bool.
            rng: draws every random parameter.

        Returns:
            image (3, size, size) float32 in [-1, 1] and mask (1, size, size) float32 in
            {0, 1}.
        """
        if not self.train:
            rgb, mask = self.resize(rgb, mask, self.size)
        else:
            if rgb.shape[:2] != (self.load_size, self.load_size):
                rgb, mask = self.resize(rgb, mask, self.load_size)
            top, left = rng.integers(0, self.load_size - self.size + 1, size=2)
            rgb = rgb[top:top + self.size, left:left + self.size]
            mask = mask[top:top + self.size, left:left + self.size]
            if rng.uniform() < self.hflip:
                rgb, mask = rgb[:, ::-1], mask[:, ::-1]
            if rng.uniform() < self.vflip:
                rgb, mask = rgb[::-1], mask[::-1]
            if rng.uniform() < self.elastic_p:
                rgb, mask = elastic(rgb, mask, self.elastic_alpha, self.elastic_sigma, rng)
        image = np.ascontiguousarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0
        return image, np.ascontiguousarray(mask, dtype=np.float32)[None]


def elastic(rgb: np.ndarray, mask: np.ndarray, alpha: float, sigma: float,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Elastic deformation (Simard et al.) of an image and its mask by one displacement field.

    Args:
        rgb: (H, W, 3) uint8.
        mask: (H, W) bool.
        alpha: displacement scale in pixels.
        sigma: Gaussian smoothing of the random field, pixels.
        rng: draws the field.

    Returns:
        (H, W, 3) uint8 (bilinear) and (H, W) bool (nearest), both sampled at the same
        displaced coordinates (reflected at the border).
    """
    from scipy import ndimage

    height, width = mask.shape
    field = rng.uniform(-1.0, 1.0, size=(2, height, width))
    dy, dx = (ndimage.gaussian_filter(f, sigma, mode="reflect") for f in field)
    scale = alpha / max(float(np.abs(np.stack([dy, dx])).max()), 1e-8) / 4.0
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    coords = np.stack([rows + dy * scale, cols + dx * scale])
    out = np.stack([ndimage.map_coordinates(rgb[..., c].astype(np.float32), coords, order=1,
                                            mode="reflect") for c in range(rgb.shape[2])], -1)
    warped = ndimage.map_coordinates(mask.astype(np.uint8), coords, order=0, mode="reflect")
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), warped.astype(bool)


# --------------------------------------------------------------------------- dataset


def _loaded(item: Item, side: int, transform: JointTransform
            ) -> tuple[np.ndarray, np.ndarray]:
    rgb = load_image(item)
    mask = load_mask(item) if item.label else np.zeros(rgb.shape[:2], dtype=bool)
    return transform.resize(rgb, mask, side)


def make_unpaired_dataset(good: Sequence[Item], defective: Sequence[Item],
                          transform: JointTransform, seed: int = 0):
    """The torch Dataset of (x, y, m_y) triples (see `UnpairedDataset`)."""
    from torch.utils.data import Dataset

    class UnpairedDataset(Dataset):
        """Sample i of epoch e: good image i mod |X| and a defective image drawn from
        rng [seed, e, i], each transformed with its own draws from that rng.

        A sample is a dict: x (3, S, S) float32 in [-1, 1]; y (3, S, S) likewise; m (1, S, S)
        float32 in {0, 1}, y's mask. Images are resized to load_size² once and cached.
        """

        def __init__(self) -> None:
            if not good or not defective:
                raise ConfigError(f"unpaired training needs good and defective images, got "
                                  f"{len(good)} good and {len(defective)} defective")
            self.good, self.defective = list(good), list(defective)
            side = transform.load_size if transform.train else transform.size
            self.side = side
            self.epoch = 0
            self._cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

        def __len__(self) -> int:
            return max(len(self.good), len(self.defective))

        def set_epoch(self, epoch: int) -> None:
            self.epoch = int(epoch)

        def _get(self, which: str, index: int) -> tuple[np.ndarray, np.ndarray]:
            key = (which, index)
            if key not in self._cache:
                items = self.good if which == "x" else self.defective
                self._cache[key] = _loaded(items[index], self.side, transform)
            return self._cache[key]

        def __getitem__(self, index: int) -> dict[str, np.ndarray]:
            rng = np.random.default_rng([seed, self.epoch, int(index)])
            x, _ = transform(*self._get("x", index % len(self.good)), rng)
            j = int(rng.integers(len(self.defective)))
            y, m = transform(*self._get("y", j), rng)
            return {"x": x, "y": y, "m": m}

    return UnpairedDataset()

