"""The stages composed for one sample: defects → scene → render → a labelled Sample.

    nominal = build_product("capped_bottle")
    defects = [make_defect("bulge"), make_defect("short_notch")]
    sample = make_sample(nominal, defects, SceneSpec(), renderer, seed=0, index=12)

A sample depends only on (nominal parts, defect choices, scene spec, seed, index): its rng
is `sample_rng(seed, index)`, split into one child generator per stage so that changing one
stage's settings does not shift the draws of the others. `generate` (generate.py) runs a
whole job on top of this.
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
        variant: which of the job's nominal product variants was used.
    """

    index: int
    seed: int
    nominal: Part
    part: Part
    scene: Scene
    render: RenderResult
    refused: tuple[tuple[str, str], ...] = ()
    variant: int = 0

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
            "variant": self.variant,
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


@dataclass(frozen=True)
class DefectChoice:
    """A defect type a defective sample may get.

    Attributes:
        defect: the configured defect.
        probability: chance that a defective sample gets this type.
        count: (low, high) instances of it when it does (inclusive integers).
    """

    defect: DefectType
    probability: float = 1.0
    count: tuple[int, int] = (1, 1)


def draw_defects(choices: Sequence[DefectChoice], rng: np.random.Generator) -> list[DefectType]:
    """The defects of one defective sample: each choice comes up with its probability, with
    `count` instances; when none comes up, one choice is drawn in proportion to the
    probabilities (uniformly if they are all 0), so the list is never empty."""
    plan: list[DefectType] = []
    for choice in choices:
        if rng.uniform() < choice.probability:
            plan += [choice.defect] * int(rng.integers(choice.count[0], choice.count[1] + 1))
    if not plan and choices:
        weights = np.array([c.probability for c in choices], dtype=np.float64)
        weights = weights / weights.sum() if weights.sum() > 0 else None
        plan.append(choices[int(rng.choice(len(choices), p=weights))].defect)
    return plan


def apply_defects(
    nominal: Part,
    plan: Sequence[DefectType],
    rng: np.random.Generator,
    face_weights: Callable[[Part], np.ndarray] | None = None,
    fallbacks: Sequence[DefectType] = (),
) -> tuple[Part, list[tuple[str, str]]]:
    """Apply the planned defects one after another.

    A defect that refuses the part (DefectNotApplicable: no notch, not seen by the
    camera, too big there, ...) is reported, and the `fallbacks` are tried in a random
    order in its place, so a sample keeps its defect count whenever some type applies.

    Args:
        face_weights: part → (F,) placement weight of each face (e.g. its visible pixel
            count, so defects land where the camera sees them); None: anywhere.

    Returns:
        The defective part and the list of (type, reason) refusals.
    """
    part, refused = nominal, []
    for planned in plan:
        weights = face_weights(part) if face_weights is not None else None
        others = [d for d in fallbacks if d is not planned]
        candidates = [planned] + [others[int(i)] for i in rng.permutation(len(others))]
        for defect in candidates:
            try:
                params = defect.sample(part, rng, weights)
                part = defect.apply(part, params)
                break
            except DefectNotApplicable as error:
                refused.append((defect.name, str(error)))
                log.debug("defect %s refused: %s", defect.name, error)
    return part, refused


def make_sample(
    nominals: Part | Sequence[Part],
    choices: Sequence[DefectChoice | DefectType],
    scene_spec: SceneSpec,
    renderer: Renderer,
    seed: int,
    index: int,
    size: tuple[int, int] = (256, 256),
    good_fraction: float = 0.0,
    placement: Literal["visible", "anywhere"] = "visible",
) -> Sample:
    """Draw, apply, pose and render sample `index` of a job seeded with `seed`.

    The sample's generator is split into independent streams, one per stage (nominal
    variant, defects, scene; `SAMPLE_STREAMS` lists them), so changing one stage's
    settings does not shift the draws of the others.

    Args:
        nominals: the defect-free part, or the job's product variants (one is drawn).
        choices: DefectChoices (each type with its probability and count), or bare
            DefectTypes (a defective sample gets one defect, of a type drawn uniformly);
            empty: only good samples.
        scene_spec: randomisation ranges of the scene.
        renderer: the backend.
        seed, index: the job seed and sample index.
        size: (width, height) in pixels.
        good_fraction: probability in [0, 1] that the sample gets no defect.
        placement: "visible" places each defect on a face the camera sees (weighted by
            its pixel count), "anywhere" on any face (weighted by area; the defect may
            then be hidden, which the sample records).
    """
    streams = sample_streams(seed, index)
    nominals = [nominals] if isinstance(nominals, Part) else list(nominals)
    variant = int(streams["variant"].integers(len(nominals))) if len(nominals) > 1 else 0
    nominal = nominals[variant]
    scene_rng = streams["scene"]
    scene = sample_scene(scene_spec, nominal.bounding_radius, size[0], size[1], scene_rng)
    defect_rng = streams["defects"]
    part, refused = nominal, []
    if choices and defect_rng.uniform() >= good_fraction:
        if all(isinstance(c, DefectChoice) for c in choices):
            plan = draw_defects(choices, defect_rng)
            fallbacks = [c.defect for c in choices if c.probability > 0]
        else:  # bare defect types: one defect, of a type drawn uniformly
            fallbacks = [c.defect if isinstance(c, DefectChoice) else c for c in choices]
            plan = [fallbacks[int(defect_rng.integers(len(fallbacks)))]]
        weights = None
        if placement == "visible":
            weights = functools.partial(renderer.face_visibility, scene)
        part, refused = apply_defects(nominal, plan, defect_rng, weights, fallbacks)
    render = renderer.render(scene, part, nominal)
    return Sample(index, seed, nominal, part, scene, render, tuple(refused), variant)


SAMPLE_STREAMS = ("defects", "scene", "variant", "split", "augment")
"""The independent random streams of one sample, in spawn order (never reorder)."""


def sample_streams(seed: int, index: int) -> dict[str, np.random.Generator]:
    """One generator per stage of sample `index` (see SAMPLE_STREAMS)."""
    return dict(zip(SAMPLE_STREAMS, child_rngs(sample_rng(seed, index), 5), strict=True))
