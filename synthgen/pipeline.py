"""The stages composed for one sample: defects → scene → render → a labelled Sample.

    nominal = build_product("capped_bottle")
    defects = [make_defect("bulge"), make_defect("short_notch")]
    sample = make_sample(nominal, defects, SceneSpec(), renderer, seed=0, index=12)

A sample depends only on (nominal part, defect configs, scene spec, seed, index): its rng is
`sample_rng(seed, index)`, split into one child generator per stage so that changing one
stage's settings does not shift the draws of the others.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from synthgen.defects.base import DefectType
from synthgen.errors import DefectNotApplicable
from synthgen.part import Part
from synthgen.render.result import Renderer, RenderResult
from synthgen.rng import child_rngs, sample_rng
from synthgen.scene.model import Scene
from synthgen.scene.sampling import sample_scene
from synthgen.scene.spec import SceneSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Sample:
    """One labelled sample.

    Attributes:
        index: sample index within the job.
        seed: the job seed.
        nominal: the defect-free part.
        part: the part as rendered (with its defect records).
        scene: the scene it was rendered in.
        render: the rendered images and masks.
        refused: defect types drawn for this sample that could not be applied, with why.
    """

    index: int
    seed: int
    nominal: Part
    part: Part
    scene: Scene
    render: RenderResult
    refused: tuple[tuple[str, str], ...] = ()

    @property
    def is_good(self) -> bool:
        """True when no defect is visible in the image."""
        return not bool(np.any(self.render.defect_visible))

    def record(self) -> dict[str, Any]:
        """Every sampled value of this sample as a JSON-ready dict (a manifest line)."""
        masks = self.render.defect_masks
        return {
            "index": self.index,
            "seed": self.seed,
            "product": self.nominal.product,
            "product_params": dict(self.nominal.params),
            "defects": [
                {
                    **record.as_dict(),
                    "visible": bool(self.render.defect_visible[i]),
                    "mask_area_px": int(masks[i].sum()),
                }
                for i, record in enumerate(self.part.records)
            ],
            "refused": [{"type": t, "reason": r} for t, r in self.refused],
            "scene": self.scene.as_dict(),
            "object_area_px": int(self.render.object_mask.sum()),
        }


def apply_defects(
    nominal: Part,
    defects: Sequence[DefectType],
    rng: np.random.Generator,
    count: int = 1,
    face_weights: Callable[[Part], np.ndarray] | None = None,
) -> tuple[Part, list[tuple[str, str]]]:
    """Apply `count` defects drawn (with replacement) from `defects` to `nominal`.

    A defect type that refuses this part (DefectNotApplicable) is skipped and reported;
    the draw moves on to the next candidate in a random order, so a part gets `count`
    defects whenever enough types apply.

    Args:
        face_weights: part → (F,) placement weight of each face (e.g. its visible pixel
            count, so defects land where the camera sees them); None: anywhere.

    Returns:
        The defective part and the list of (type, reason) refusals.
    """
    part, refused = nominal, []
    for _ in range(count):
        weights = face_weights(part) if face_weights is not None else None
        for choice in rng.permutation(len(defects)):
            defect = defects[int(choice)]
            try:
                params = defect.sample(part, rng, weights)
                part = defect.apply(part, params)
                break
            except DefectNotApplicable as error:
                refused.append((defect.name, str(error)))
                log.debug("defect %s refused: %s", defect.name, error)
    return part, refused


def make_sample(
    nominal: Part,
    defects: Sequence[DefectType],
    scene_spec: SceneSpec,
    renderer: Renderer,
    seed: int,
    index: int,
    size: tuple[int, int] = (256, 256),
    defect_count: int = 1,
    good_fraction: float = 0.0,
    placement: Literal["visible", "anywhere"] = "visible",
) -> Sample:
    """Draw, apply, pose and render sample `index` of a job seeded with `seed`.

    Args:
        nominal: the defect-free part (mm).
        defects: configured defect types to draw from (may be empty: a good sample).
        scene_spec: randomisation ranges of the scene.
        renderer: the backend.
        seed, index: the job seed and sample index.
        size: (width, height) in pixels.
        defect_count: defects per defective sample.
        good_fraction: probability in [0, 1] that the sample gets no defect.
        placement: "visible" places each defect on a face the camera sees (weighted by
            its pixel count), "anywhere" on any face (weighted by area; the defect may
            then be hidden, which the sample records).
    """
    defect_rng, scene_rng = child_rngs(sample_rng(seed, index), 2)
    scene = sample_scene(scene_spec, nominal.bounding_radius, size[0], size[1], scene_rng)
    part, refused = nominal, []
    if defects and defect_rng.uniform() >= good_fraction:
        weights = None
        if placement == "visible":
            weights = functools.partial(renderer.face_visibility, scene)
        part, refused = apply_defects(nominal, defects, defect_rng, defect_count, weights)
    render = renderer.render(scene, part, nominal)
    return Sample(index, seed, nominal, part, scene, render, tuple(refused))
