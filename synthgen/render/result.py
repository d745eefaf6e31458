"""The renderer contract: what every backend returns for one sample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from synthgen.part import Part
from synthgen.scene.model import Camera, Scene


@dataclass(frozen=True, eq=False)
class RenderResult:
    """One rendered, labelled view.

    Attributes:
        rgb: (H, W, 3) uint8 sRGB, anti-aliased, background composited.
        depth: (H, W) float32 mm, distance along the camera's viewing axis to the defective
            part's visible surface; 0 where the part is not seen.
        object_mask: (H, W) bool, pixels whose centre sees the defective part, plus pixels
            where a defect removed material that the nominal part would show there
            (so every defect mask lies inside it). No anti-aliasing.
        defect_masks: (N, H, W) bool, one per record of the part (in `Part.records`
            order): pixels whose visible surface differs from the nominal twin's, or that
            show the defect's faces. No anti-aliasing.
        defect_visible: (N,) bool, whether each defect mask is non-empty.
        camera: the camera the view was rendered with.
    """

    rgb: np.ndarray
    depth: np.ndarray
    object_mask: np.ndarray
    defect_masks: np.ndarray
    defect_visible: np.ndarray
    camera: Camera

    @property
    def defect_mask(self) -> np.ndarray:
        """(H, W) bool, the union of all defect masks."""
        if len(self.defect_masks) == 0:
            return np.zeros(self.object_mask.shape, dtype=bool)
        return self.defect_masks.any(axis=0)


class Renderer(Protocol):
    """A render backend. One instance holds one rendering context; not thread-safe."""

    def render(self, scene: Scene, part: Part, nominal: Part | None = None) -> RenderResult:
        """Render `part` in `scene`, with defect masks measured against `nominal`.

        Args:
            scene: the scene (its camera sets the image size).
            part: the (possibly defective) part to draw.
            nominal: the defect-free twin of `part`; required when `part.records` is
                not empty.
        """
        ...

    def face_visibility(self, scene: Scene, part: Part) -> np.ndarray:
        """(F,) int64: how many pixel centres see each face of `part` in `scene` (exact,
        the same pass the masks come from). Used to place defects where the camera looks."""
        ...

    def close(self) -> None:
        """Release the rendering context."""
        ...
