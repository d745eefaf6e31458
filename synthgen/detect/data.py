"""Framework-free readers of labelled defect datasets: MVTec AD, COCO, YOLO, mask folders.

Every reader returns a list of `Item`s in a deterministic (sorted) order. An Item names its
image file and says how to get its defect mask; pixels are read only on demand, by
`load_image` and `load_mask`, so a list of Items is cheap to build, split and pickle.

Frames and conventions (those of `synthgen.labels`): a pixel (r, c) is the unit square
[c, c + 1] × [r, r + 1]; a box is [x1, y1, x2, y2] float32 in pixels of the original image,
so a single pixel at (r, c) has the box [c, r, c + 1, r + 1]. Box classes index
`Item.class_names` (the dataset's defect types, 0-based), the same list for every Item of
one reader call.

Where the mask comes from, by format:

- MVTec AD and mask folders: a PNG file (`Item.mask`), binarised at 127.
- COCO: the image's annotations' segmentations (`Item.segments`, compressed or plain RLE,
  or polygons), decoded and joined on demand.
- YOLO: the label file's polygons (`Item.segments`, pixel coordinates), rasterised on demand;
  detect-only labels (boxes) give filled boxes.
- Good images: an all-False mask of the image's size.

Pure numpy, PIL and yaml; pycocotools and scipy are imported inside the functions that need
them. The torch Dataset on top of this lives in `synthgen.detect.torch_data`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from synthgen.errors import ConfigError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
"""File name endings read as images (case-insensitive)."""

COMBINED = "combined"
"""Defect type of an image that shows several defect types (as synthgen's MVTec writer)."""


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _no_boxes() -> np.ndarray:
    return _readonly(np.zeros((0, 4), dtype=np.float32))


def _no_classes() -> np.ndarray:
    return _readonly(np.zeros((0,), dtype=np.int64))


@dataclass(frozen=True, eq=False)
class Item:
    """One labelled image of a dataset; pixels are loaded on demand.

    Attributes:
        image: path of the image file.
        mask: path of the defect mask PNG (0 background, 255 defect; binarised at 127), or
            None: a good image, or a format whose masks live in `segments`.
        label: 0 good, 1 defective.
        defect_type: the image's defect type ("combined" when several), None when good.
        boxes: (N, 4) float32 [x1, y1, x2, y2], pixels of the original image (read-only).
        classes: (N,) int64 defect type ids of the boxes, indices into `class_names`.
        split: the source's split hint, "train", "test" or None.
        class_names: the dataset's defect types; `classes` index it.
        segments: the mask as shapes when there is no mask file: COCO segmentation dicts
            (RLE, {"size", "counts"}) or (K, 2) float64 polygons of (x, y) pixel vertices;
            `load_mask` joins them.
        size: (H, W) of the image in pixels when the reader knew it, else None.
    """

    image: Path
    mask: Path | None = None
    label: int = 0
    defect_type: str | None = None
    boxes: np.ndarray = field(default_factory=_no_boxes)
    classes: np.ndarray = field(default_factory=_no_classes)
    split: str | None = None
    class_names: tuple[str, ...] = ()
    segments: tuple[Any, ...] = ()
    size: tuple[int, int] | None = None

    def load_image(self) -> np.ndarray:
        """The image as (H, W, 3) uint8 RGB (see `load_image`)."""
        return load_image(self)

    def load_mask(self) -> np.ndarray:
        """The defect mask as (H, W) bool (see `load_mask`)."""
        return load_mask(self)


# --------------------------------------------------------------------------- pixels


def _open(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise ConfigError(f"image file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{path} is not a readable image: {exc}") from None


def image_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of an image file in pixels, from its header only."""
    with _open(Path(path)) as im:
        return im.height, im.width


def load_image(item: Item) -> np.ndarray:
    """Read an Item's image.

    Args:
        item: the Item.

    Returns:
        (H, W, 3) uint8 RGB; grey images are repeated to 3 channels, 16-bit ones scaled to
        8 bits, alpha dropped.

    Raises:
        ConfigError: the file is missing or not an image.
    """
    with _open(Path(item.image)) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            grey = np.asarray(im, dtype=np.float64)
            top = 65535.0 if im.mode.startswith("I;16") else max(float(grey.max()), 1.0)
            grey = np.clip(grey / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
            return np.repeat(grey[:, :, None], 3, axis=2)
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def read_mask_png(path: str | Path) -> np.ndarray:
    """Read a mask image as (H, W) bool: True where the (first channel) value is > 127."""
    with _open(Path(path)) as im:
        arr = np.asarray(im)
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    if arr.dtype == bool:
        return arr.copy()
    return arr > 127


def _segment_mask(segment: Any, height: int, width: int) -> np.ndarray:
    from synthgen.labels import rasterize_polygons

    if isinstance(segment, np.ndarray):
        return rasterize_polygons([segment], height, width)
    if isinstance(segment, dict):
        from pycocotools import mask as mask_utils

        counts = segment["counts"]
        if isinstance(counts, list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(segment, *segment["size"])
        else:
            rle = {"size": list(segment["size"]),
                   "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        return mask_utils.decode(rle).astype(bool)
    raise TypeError(f"unknown segment type {type(segment).__name__}")


def load_mask(item: Item) -> np.ndarray:
    """The defect mask of an Item.

    Args:
        item: the Item.

    Returns:
        (H, W) bool, True on defect pixels, the size of the image: read from `item.mask`,
        or joined from `item.segments`, or all False for an Item with neither.

    Raises:
        ConfigError: the mask file is missing, unreadable or not the image's size.
    """
    if item.mask is not None:
        mask = read_mask_png(item.mask)
        if item.size is not None and mask.shape != tuple(item.size):
            raise ConfigError(
                f"mask {item.mask} is {mask.shape[1]}x{mask.shape[0]} pixels but its image "
                f"{item.image} is {item.size[1]}x{item.size[0]}"
            )
        return mask
    height, width = item.size if item.size is not None else image_size(item.image)
    mask = np.zeros((height, width), dtype=bool)
    for segment in item.segments:
        part = _segment_mask(segment, height, width)
        if part.shape != mask.shape:
            raise ConfigError(
                f"a mask of image {item.image} is {part.shape[1]}x{part.shape[0]} pixels, "
                f"the image {width}x{height}"
            )
        mask |= part
    return mask


def mask_boxes(mask: np.ndarray) -> np.ndarray:
    """Boxes of the 8-connected components of a mask.

    Args:
        mask: (H, W) bool.

    Returns:
        (N, 4) float32 [x1, y1, x2, y2] in pixels, one per component, in raster order of
        their first pixel; (0, 4) for an empty mask.
    """
    from scipy import ndimage

    labels, n = ndimage.label(np.asarray(mask, dtype=bool), structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros((0, 4), dtype=np.float32)
    boxes = [
        [sl[1].start, sl[0].start, sl[1].stop, sl[0].stop]
        for sl in ndimage.find_objects(labels)
    ]
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


# --------------------------------------------------------------------------- helpers


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise ConfigError(f"{what} {path} does not exist or is not a folder")
    return path


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _image_type(types: Sequence[str]) -> str | None:
    unique = list(dict.fromkeys(types))
    if not unique:
        return None
    return unique[0] if len(unique) == 1 else COMBINED


def _names(found: Sequence[str], class_names: Sequence[str] | None, where: Path) -> tuple:
    if class_names is None:
        return tuple(found)
    names = tuple(class_names)
    missing = [t for t in found if t not in names]
    if missing:
        raise ConfigError(f"{where}: defect types {missing} are not in class_names {list(names)}")
    return names


def _component_item(image: Path, mask_path: Path | None, defect_type: str | None,
                    names: tuple[str, ...], split: str | None) -> Item:
    """An Item whose boxes are the components of its mask file, all of class `defect_type`."""
    size = image_size(image)
    if mask_path is None:
        return Item(image=image, split=split, class_names=names, size=size)
    boxes = mask_boxes(load_mask(Item(image=image, mask=mask_path, size=size)))
    if len(boxes) == 0:
        return Item(image=image, split=split, class_names=names, size=size)
    classes = np.full(len(boxes), names.index(defect_type), dtype=np.int64)
    return Item(image=image, mask=mask_path, label=1, defect_type=defect_type,
                boxes=_readonly(boxes), classes=_readonly(classes), split=split,
                class_names=names, size=size)


# --------------------------------------------------------------------------- MVTec AD


def read_mvtec(root: str | Path, category: str,
               class_names: Sequence[str] | None = None) -> list[Item]:
    """Read one category of an MVTec AD folder (real MVTec AD or synthgen's `<out>/mvtec`).

    Layout: `<root>/<category>/train/good/*.png`, `test/good/*`, `test/<type>/<stem>.png`
    and `ground_truth/<type>/<stem>_mask.png`. Boxes are the 8-connected components of each
    mask, of the image's folder type (MVTec keeps no per-instance types; synthgen's
    `combined` folder is a type of its own here).

    Args:
        root: the folder holding the category folders.
        category: the category's folder name (synthgen: the job's name).
        class_names: fixes the defect type ids; default: the test folders except good,
            sorted.

    Returns:
        train/good Items (split "train"), then the test Items (split "test"), each part
        sorted by (type, file name).

    Raises:
        ConfigError: the category folder, train/good or test is missing, or a defective
            test image has no mask.
    """
    base = _require_dir(Path(root) / category, "MVTec category folder")
    for sub in ("train/good", "test"):
        if not (base / sub).is_dir():
            raise ConfigError(
                f"{base} is not an MVTec AD category: it has no {sub}/ folder "
                "(expected train/good, test/<type>, ground_truth/<type>)"
            )
    types = sorted(p.name for p in (base / "test").iterdir() if p.is_dir() and p.name != "good")
    names = _names(types, class_names, base)
    items = [_component_item(p, None, None, names, "train")
             for p in _images_in(base / "train" / "good")]
    if (base / "test" / "good").is_dir():
        items += [_component_item(p, None, None, names, "test")
                  for p in _images_in(base / "test" / "good")]
    for defect in types:
        for image in _images_in(base / "test" / defect):
            mask = base / "ground_truth" / defect / f"{image.stem}_mask.png"
            if not mask.is_file():
                raise ConfigError(f"defective image {image} has no mask: expected {mask}")
            items.append(_component_item(image, mask, defect, names, "test"))
    log.info("read %d MVTec items from %s (%d defect types)", len(items), base, len(names))
    return items


# --------------------------------------------------------------------------- COCO


def _coco_segment(seg: Any) -> Any:
    """A COCO segmentation as an Item segment: RLE dicts kept, polygon lists → arrays."""
    if isinstance(seg, dict):
        return seg
    if isinstance(seg, list):
        return [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in seg if len(p) >= 6]
    raise ValueError(f"unknown segmentation {type(seg).__name__}")


def read_coco(annotation_json: str | Path, images_dir: str | Path | None = None,
              class_names: Sequence[str] | None = None) -> list[Item]:
    """Read a COCO instances file (synthgen's or any with defect categories).

    Categories of supercategory "object" (synthgen's multi-object scenes) are not defect
    types and are skipped. An image without defect annotations is good. The image-level
    field `split` (synthgen) becomes the split hint.

    Args:
        annotation_json: the instances JSON.
        images_dir: the folder `file_name`s are relative to; default: `../images` beside
            the JSON's folder (synthgen's layout), else the JSON's own folder.
        class_names: fixes the defect type ids; default: the categories in id order.

    Returns:
        Items sorted by file name; boxes the annotations' bbox as xyxy, masks the union
        of the annotations' segmentations (decoded by `load_mask`).

    Raises:
        ConfigError: the file is missing, not JSON, or lacks images/annotations/categories.
    """
    path = Path(annotation_json)
    if not path.is_file():
        raise ConfigError(f"COCO annotation file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not a JSON file: {exc}") from None
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if not isinstance(data, dict) or missing:
        raise ConfigError(f"{path} is not a COCO instances file: it lacks {missing}")
    if images_dir is None:
        guess = path.parent.parent / "images"
        images_dir = guess if guess.is_dir() else path.parent
    images_dir = _require_dir(Path(images_dir), "COCO images folder")
    cats = sorted((c for c in data["categories"] if c.get("supercategory") != "object"),
                  key=lambda c: c["id"])
    names = _names([c["name"] for c in cats], class_names, path)
    cat_name = {c["id"]: c["name"] for c in cats}
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        if ann.get("category_id") in cat_name:
            by_image.setdefault(ann["image_id"], []).append(ann)
    items = []
    for img in sorted(data["images"], key=lambda im: im["file_name"]):
        anns = sorted(by_image.get(img["id"], []), key=lambda a: a.get("id", 0))
        size = (int(img["height"]), int(img["width"]))
        boxes = np.asarray([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)],
                           dtype=np.float32).reshape(-1, 4)
        types = [cat_name[a["category_id"]] for a in anns]
        segments: list[Any] = []
        for a in anns:
            seg = _coco_segment(a["segmentation"])
            segments.extend(seg if isinstance(seg, list) else [seg])
        split = img.get("split")
        items.append(Item(
            image=images_dir / img["file_name"], label=int(bool(anns)),
            defect_type=_image_type(types), boxes=_readonly(boxes),
            classes=_readonly(np.asarray([names.index(t) for t in types], dtype=np.int64)),
            split=split if split in ("train", "test") else None, class_names=names,
            segments=tuple(segments), size=size,
        ))
    log.info("read %d COCO items from %s (%d defect types)", len(items), path, len(names))
    return items


# --------------------------------------------------------------------------- YOLO


def _yolo_image_dirs(data: dict, root: Path, where: Path) -> list[tuple[Path, str | None]]:
    """(image folder or list file, split hint) for each split the data.yaml names."""
    hints = {"train": "train", "val": "test", "test": "test"}
    out: list[tuple[Path, str | None]] = []
    for key, hint in hints.items():
        value = data.get(key)
        if value is None:
            continue
        for entry in [value] if isinstance(value, str) else list(value):
            p = Path(entry)
            p = p if p.is_absolute() else root / p
            if not p.exists():
                raise ConfigError(f"{where}: {key} names {p}, which does not exist")
            if (p, hint) not in out and all(p != q for q, _ in out):
                out.append((p, hint))
    if not out:
        raise ConfigError(f"{where} names no image folder: expected train: and/or val:")
    return out


def _yolo_label_path(image: Path) -> Path:
    parts = list(image.parts)
    idx = len(parts) - 1 - parts[::-1].index("images") if "images" in parts else None
    if idx is None:
        return image.with_suffix(".txt")
    parts[idx] = "labels"
    return Path(*parts).with_suffix(".txt")


def _read_yolo_labels(path: Path, height: int, width: int, nclasses: int
                      ) -> tuple[list[int], list[np.ndarray]]:
    """Class ids and pixel polygons of a YOLO label file (a box → its 4 corners).

    Vertices within 1e-3 px of a whole pixel are snapped to it, so synthgen's outlines
    (on pixel corners, written with 6 decimals) come back exact.
    """
    classes, polys = [], []
    if not path.is_file():
        return classes, polys
    scale = np.array([width, height], dtype=np.float64)
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            cls, values = int(fields[0]), np.asarray(fields[1:], dtype=np.float64)
        except ValueError:
            raise ConfigError(f"{path} line {n}: expected 'class x y ...' numbers") from None
        if not 0 <= cls < nclasses or values.size < 4 or values.size % 2:
            raise ConfigError(
                f"{path} line {n}: class {cls} with {values.size} coordinates; expected a "
                f"class in [0, {nclasses}) and 4 (box) or an even number >= 6 (polygon)"
            )
        if values.size == 4:  # detect: xc yc w h
            xc, yc, w, h = values
            pts = np.array([[xc - w / 2, yc - h / 2], [xc + w / 2, yc - h / 2],
                            [xc + w / 2, yc + h / 2], [xc - w / 2, yc + h / 2]])
        else:
            pts = values.reshape(-1, 2)
        pts = pts * scale
        snapped = np.round(pts)  # undo the 6-decimal rounding of pixel-corner vertices
        classes.append(cls)
        polys.append(np.where(np.abs(pts - snapped) < 1e-3, snapped, pts))
    return classes, polys


def read_yolo(data_yaml: str | Path, class_names: Sequence[str] | None = None) -> list[Item]:
    """Read an ultralytics YOLO dataset (segment or detect labels) from its data.yaml.

    Image folders come from `train`, `val` and `test` (relative to `path` when given, else
    to the yaml's folder); label files are found by replacing the last `images` folder of
    an image path with `labels`. A missing or empty label file means a good image. Split
    hints: train → "train", val and test → "test" (synthgen writes its test split as val).

    Args:
        data_yaml: the dataset's data.yaml.
        class_names: fixes the defect type ids; default: `names` in id order.

    Returns:
        Items sorted by (split folder, file name); boxes the extents of the label's
        polygons (one per line: a synthgen instance in several pieces gives several
        boxes), masks their filled interiors (boxes for detect labels).

    Raises:
        ConfigError: the yaml is missing or malformed, a folder it names is missing, or a
            label line is malformed.
    """
    import yaml

    path = Path(data_yaml)
    if not path.is_file():
        raise ConfigError(f"YOLO data file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or "names" not in data:
        raise ConfigError(f"{path} is not a YOLO data.yaml: it has no names:")
    raw = data["names"]
    found = [raw[k] for k in sorted(raw)] if isinstance(raw, dict) else list(raw)
    names = _names([str(n) for n in found], class_names, path)
    remap = [names.index(str(n)) for n in found]
    root = Path(data["path"]) if data.get("path") else path.parent
    root = root if root.is_absolute() else path.parent / root
    items = []
    for source, hint in _yolo_image_dirs(data, root, path):
        if source.is_dir():
            images = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:  # a text file listing images
            lines = source.read_text(encoding="utf-8").split()
            images = sorted((source.parent / ln).resolve() for ln in lines)
        for image in images:
            size = image_size(image)
            cls, polys = _read_yolo_labels(_yolo_label_path(image), *size, len(found))
            boxes = np.asarray([[*p.min(axis=0), *p.max(axis=0)] for p in polys],
                               dtype=np.float32).reshape(-1, 4)
            types = [found[c] for c in cls]
            items.append(Item(
                image=image, label=int(bool(cls)), defect_type=_image_type(types),
                boxes=_readonly(boxes),
                classes=_readonly(np.asarray([remap[c] for c in cls], dtype=np.int64)),
                split=hint, class_names=names, segments=tuple(polys), size=size,
            ))
    log.info("read %d YOLO items from %s (%d defect types)", len(items), path, len(names))
    return items


# --------------------------------------------------------------------------- mask folders


def read_mask_folder(root: str | Path, good_dirs: Sequence[str],
                     defect_dirs: Sequence[str] | Mapping[str, str],
                     mask_name: str = "{stem}.png",
                     image_suffixes: Sequence[str] = (".jpg", ".jpeg", ".bmp", ".tif", ".tiff"),
                     ) -> list[Item]:
    """Read folders of images with same-named mask files (e.g. the magnetic tile dataset).

    Each named folder is searched recursively for images (by `image_suffixes`); an image's
    mask is `mask_name` formatted with its stem, in the same folder (0 background, 255
    defect, binarised at 127). In a defect folder a non-empty mask makes a defective Item
    whose boxes are the mask's 8-connected components; an all-zero mask means good. Good
    folders give good Items (a mask there is not needed; a non-empty one is logged).

    Args:
        root: the folder holding the named folders.
        good_dirs: folders of defect-free images, relative to root.
        defect_dirs: folders of defective images, relative to root; a mapping gives each
            its defect type name, a sequence uses the folder names.
        mask_name: the mask file name pattern; "{stem}" is the image's stem.
        image_suffixes: image file endings (case-insensitive).

    Returns:
        Items sorted by (folder, path); split hints None; class_names the defect types in
        the order given.

    Raises:
        ConfigError: root or a named folder is missing or holds no images, or an image of a
            defect folder has no mask file.
    """
    root = _require_dir(Path(root), "dataset folder")
    types = dict(defect_dirs) if isinstance(defect_dirs, Mapping) else {d: d for d in defect_dirs}
    names = tuple(dict.fromkeys(types.values()))
    suffixes = {s.lower() for s in image_suffixes}
    items: list[Item] = []
    for folder, defect in [(d, None) for d in good_dirs] + list(types.items()):
        base = _require_dir(root / folder, "image folder")
        images = sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        if not images:
            raise ConfigError(f"{base} holds no images ending in {sorted(suffixes)}")
        for image in images:
            mask = image.with_name(mask_name.format(stem=image.stem))
            if defect is None:
                if mask.is_file() and read_mask_png(mask).any():
                    log.warning("good image %s has a non-empty mask %s; kept as good", image, mask)
                items.append(_component_item(image, None, None, names, None))
                continue
            if not mask.is_file():
                raise ConfigError(f"image {image} has no mask: expected {mask}")
            items.append(_component_item(image, mask, defect, names, None))
    log.info("read %d items from %s (%d defective)", len(items), root,
             sum(it.label for it in items))
    return items


# --------------------------------------------------------------------------- detection


def read_dataset(path: str | Path, fmt: str | None = None, **kw: Any) -> list[Item]:
    """Read a dataset, detecting its format.

    Recognised: a data.yaml or a folder holding one → YOLO; a .json file, or a folder
    holding instances.json or annotations/instances.json → COCO; a folder with train/good
    → MVTec (category = the folder's name); a synthgen job folder (mvtec/, coco/, yolo/) →
    its COCO (per-instance types), else YOLO, else its single MVTec category.

    Args:
        path: file or folder.
        fmt: "mvtec", "coco" or "yolo" to choose among a job folder's formats.
        **kw: passed to the reader (class_names; images_dir for COCO; category for a
            synthgen job's MVTec).

    Raises:
        ConfigError: the path is missing or no known layout is found.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"dataset path {path} does not exist")
    if path.is_file():
        if path.suffix.lower() in (".yaml", ".yml"):
            return read_yolo(path, **kw)
        if path.suffix.lower() == ".json":
            return read_coco(path, **kw)
        raise ConfigError(f"{path}: expected a YOLO data.yaml or a COCO .json file")
    if (path / "train" / "good").is_dir():
        return read_mvtec(path.parent, path.name, **kw)
    if (path / "data.yaml").is_file():
        return read_yolo(path / "data.yaml", **kw)
    for json_file in (path / "instances.json", path / "annotations" / "instances.json"):
        if json_file.is_file():
            return read_coco(json_file, **kw)
    formats = [f for f in ("coco", "yolo", "mvtec") if (path / f).is_dir()]
    if fmt is not None:
        if fmt not in formats:
            raise ConfigError(f"{path} holds no {fmt}/ folder (it holds {formats or 'none'})")
        formats = [fmt]
    if formats and formats[0] != "mvtec":
        return read_dataset(path / formats[0], **kw)
    if formats:
        category = kw.pop("category", None)
        cats = sorted(p.name for p in (path / "mvtec").iterdir() if p.is_dir())
        if category is None and len(cats) != 1:
            raise ConfigError(f"{path / 'mvtec'} holds categories {cats}: pass category=")
        return read_mvtec(path / "mvtec", category or cats[0], **kw)
    raise ConfigError(
        f"{path} is not a known dataset layout: expected train/good (MVTec AD), "
        "instances.json (COCO), data.yaml (YOLO) or a synthgen job folder"
    )


# --------------------------------------------------------------------------- splits


def good_only(items: Sequence[Item]) -> list[Item]:
    """The good (label 0) Items, in order."""
    return [it for it in items if it.label == 0]


def with_split(items: Sequence[Item], split: str | None) -> list[Item]:
    """The Items whose source split hint is `split` ("train", "test" or None), in order."""
    return [it for it in items if it.split == split]


def class_names(items: Sequence[Item]) -> tuple[str, ...]:
    """The defect type names the Items' box classes index (the same for all Items)."""
    found = {it.class_names for it in items}
    if len(found) > 1:
        raise ConfigError(f"Items come from datasets with different defect types: {found}")
    return found.pop() if found else ()


def _allocate(n: int, fractions: np.ndarray) -> list[int]:
    """Counts summing to n, proportional to fractions (largest remainder)."""
    raw = fractions * n
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts.tolist()


def split_items(items: Sequence[Item], fractions: Sequence[float] = (0.7, 0.15, 0.15),
                rng: np.random.Generator | int = 0, stratify: bool = True,
                groups: Sequence[Hashable] | None = None,
                ) -> tuple[list[Item], list[Item], list[Item]]:
    """Split Items at random into train, val and test.

    Args:
        items: the Items.
        fractions: (train, val, test) shares, each >= 0, summing to 1.
        rng: the generator (or an int seed) that draws the permutation.
        stratify: split good and defective Items separately, so each part keeps the
            label proportions (counts rounded by largest remainder within each label).
        groups: one key per Item; Items with the same key (e.g. photos of one physical part,
            see `synthgen.detect.duplicates.near_duplicate_groups`) go to the same part, so
            no near-copy of a test image is trained on. A group counts as defective when any
            of its Items is; parts may then miss their share by less than one group.

    Returns:
        (train, val, test) lists, disjoint, together all Items, each in the input order.

    Raises:
        ConfigError: fractions are not three non-negative numbers summing to 1, or `groups`
            does not have one key per Item.
    """
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.shape != (3,) or (fr < 0).any() or not np.isclose(fr.sum(), 1.0):
        raise ConfigError(
            f"split fractions must be three numbers >= 0 summing to 1 (train, val, test), "
            f"got {tuple(fractions)}"
        )
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    if groups is None:
        units = [[i] for i in range(len(items))]
    else:
        if len(groups) != len(items):
            raise ConfigError(f"groups has {len(groups)} keys for {len(items)} items")
        members: dict[Hashable, list[int]] = {}
        for i, key in enumerate(groups):
            members.setdefault(key, []).append(i)
        units = list(members.values())
    unit_label = [max(items[i].label for i in unit) for unit in units]
    strata = ([[u for u, lab in enumerate(unit_label) if lab == want] for want in (0, 1)]
              if stratify else [list(range(len(units)))])
    part_of = np.zeros(len(items), dtype=int)
    for stratum in strata:
        order = [stratum[k] for k in rng.permutation(len(stratum))]
        targets = _allocate(sum(len(units[u]) for u in stratum), fr)
        part, filled = 0, 0
        for u in order:  # fill train, then val, then test, a whole group at a time
            while part < 2 and filled >= targets[part]:
                part, filled = part + 1, 0
            part_of[units[u]] = part
            filled += len(units[u])
    parts = tuple([it for i, it in enumerate(items) if part_of[i] == k] for k in range(3))
    return parts  # type: ignore[return-value]
