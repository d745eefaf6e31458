"""Backgrounds and alpha compositing of an anti-aliased render over them.

Pure numpy and PIL: no OpenGL. A backend renders the part over a transparent background
(premultiplied RGBA, as a multisample resolve of an opaque part over (0, 0, 0, 0) gives) and
`composite` lays it over `background_image`, so the part's edges blend with the real
background rather than with a flat clear colour.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict

import numpy as np
from PIL import Image

from synthgen.errors import ConfigError
from synthgen.scene.model import Background

log = logging.getLogger(__name__)

_IMAGE_CACHE_SIZE = 8
_image_cache: OrderedDict[tuple[str, float, int, int], np.ndarray] = OrderedDict()


def _to_uint8(color: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    """(3,) sRGB in [0, 1] → (3,) uint8, rounded."""
    return np.clip(np.rint(np.asarray(color, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def _load_cover(path: str, width: int, height: int) -> np.ndarray:
    """The image at `path` scaled to cover (width, height) and centre-cropped.

    Returns:
        (height, width, 3) uint8 sRGB, read-only (it is shared through a small cache).
    """
    try:
        mtime = os.path.getmtime(path)
    except OSError:
        raise ConfigError(f"background image {path!r} does not exist or cannot be read") from None
    key = (path, mtime, width, height)
    cached = _image_cache.get(key)
    if cached is not None:
        _image_cache.move_to_end(key)
        return cached
    with Image.open(path) as img:
        img = img.convert("RGB")
        scale = max(width / img.width, height / img.height)
        new_w = max(width, round(img.width * scale))
        new_h = max(height, round(img.height * scale))
        img = img.resize((new_w, new_h), Image.Resampling.LANCZOS)
        left, top = (new_w - width) // 2, (new_h - height) // 2
        img = img.crop((left, top, left + width, top + height))
        array = np.asarray(img, dtype=np.uint8).copy()
    array.flags.writeable = False
    _image_cache[key] = array
    while len(_image_cache) > _IMAGE_CACHE_SIZE:
        _image_cache.popitem(last=False)
    log.debug("loaded background %s at %dx%d", path, width, height)
    return array


def background_image(background: Background, width: int, height: int) -> np.ndarray:
    """The background as an image.

    "solid" fills with `color_top`; "gradient" runs linearly (in sRGB values) from
    `color_top` on row 0 to `color_bottom` on the last row; "image" loads `image_path`,
    scales it to cover the frame (aspect ratio kept) and crops the centre.

    Args:
        background: what to draw.
        width, height: image size, pixels.

    Returns:
        (height, width, 3) uint8 sRGB. May be read-only (image backgrounds are cached).

    Raises:
        ConfigError: unknown kind, or an "image" background without a readable file.
    """
    if background.kind == "solid":
        return np.broadcast_to(_to_uint8(background.color_top), (height, width, 3))
    if background.kind == "gradient":
        t = np.arange(height, dtype=np.float64) / max(height - 1, 1)
        top = np.asarray(background.color_top, dtype=np.float64)
        bottom = np.asarray(background.color_bottom, dtype=np.float64)
        rows = _to_uint8(top[None, :] * (1.0 - t[:, None]) + bottom[None, :] * t[:, None])
        return np.broadcast_to(rows[:, None, :], (height, width, 3))
    if background.kind == "image":
        if not background.image_path:
            raise ConfigError('background kind "image" needs image_path')
        return _load_cover(background.image_path, width, height)
    raise ConfigError(
        f"background kind {background.kind!r} is unknown; use solid, gradient or image"
    )


def composite(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Lay a premultiplied-alpha render over a background.

    Args:
        rgba: (H, W, 4) uint8, colour premultiplied by alpha (alpha = pixel coverage).
        background: (H, W, 3) uint8 sRGB.

    Returns:
        (H, W, 3) uint8 sRGB: rgb + (1 - alpha) · background, rounded.
    """
    alpha = rgba[..., 3]
    out = np.array(background, dtype=np.uint8)  # a writeable copy
    rows = np.flatnonzero(alpha.any(axis=1))
    if len(rows) == 0:
        return out
    cols = np.flatnonzero(alpha.any(axis=0))
    window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    a = alpha[window][..., None].astype(np.uint16)
    blend = rgba[window][..., :3].astype(np.uint16)
    blend += ((255 - a) * out[window] + 127) // 255
    out[window] = np.minimum(blend, 255)
    return out
