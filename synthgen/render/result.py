"""The renderer contract: what every backend returns for one sample."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from synthgen.part import Part
from synthgen.scene.model import Camera, Scene

if TYPE_CHECKING:
    from synthgen.render.placement import Placed


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
        instance_masks: (K, H, W) bool, one mask per object of a multi-object scene (each
            object's own object mask, occlusion by the others included); None for one
            object (then `object_mask` is its mask).
        defect_owner: (N,) int, the object each defect mask belongs to; None for one object.
    """

    rgb: np.ndarray
    depth: np.ndarray
    object_mask: np.ndarray
    defect_masks: np.ndarray
    defect_visible: np.ndarray
    camera: Camera
    instance_masks: np.ndarray | None = None
    defect_owner: np.ndarray | None = None

    @property
    def object_masks(self) -> np.ndarray:
        """(K, H, W) bool: one mask per object (K = 1 for a single object)."""
        return self.object_mask[None] if self.instance_masks is None else self.instance_masks

    @property
    def owners(self) -> np.ndarray:
        """(N,) int: the object of each defect mask (all 0 for a single object)."""
        if self.defect_owner is None:
            return np.zeros(len(self.defect_masks), dtype=np.int64)
        return self.defect_owner

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

    def render_placed(self, scene: Scene, placed: Sequence[Placed]) -> RenderResult:
        """Render several objects (each with its own part, nominal twin and pose) in one
        view; the result has one instance mask per object and each defect's owner."""
        ...

    def placed_visibility(
        self, scene: Scene, parts: Sequence[Part], poses: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """Per part, (F_k,) int64 pixel counts of its faces with all parts in view."""
        ...

    def close(self) -> None:
        """Release the rendering context."""
        ...
