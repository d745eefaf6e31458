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
from synthgen.render.placement import Placed
from synthgen.render.result import Renderer, RenderResult
from synthgen.rng import child_rngs, sample_rng
from synthgen.scene.model import Scene
from synthgen.scene.sampling import sample_scene
from synthgen.scene.spec import SceneSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Sample:
    """One labelled sample: one object, or several (a scene script's arrangement).

    Attributes:
        index: sample index within the job.
        seed: the job seed.
        placed: the objects: each part as rendered (with its defect records), its nominal
            twin and its pose (object → world, mm).
        scene: the scene it was rendered in.
        render: the rendered images and masks (defect masks in object order).
        refused: defect types drawn for this sample that could not be applied, with why.
        variants: which of the job's nominal product variants each object is.
    """

    index: int
    seed: int
    placed: tuple[Placed, ...]
    scene: Scene
    render: RenderResult
    refused: tuple[tuple[str, str], ...] = ()
    variants: tuple[int, ...] = (0,)

    @property
    def part(self) -> Part:
        """The (first) object's part as rendered."""
        return self.placed[0].part

    @property
    def nominal(self) -> Part:
        """The (first) object's nominal part."""
        return self.placed[0].nominal

    @property
    def is_good(self) -> bool:
        """True when no defect is visible in the image."""
        return not bool(np.any(self.render.defect_visible))

    def record(self) -> dict[str, Any]:
        """Every sampled value of this sample as a JSON-ready dict (a manifest line).

        Defects of all objects are listed in one list; "instance" numbers them across the
        sample (1, 2, ...), "object" and "object_instance" say whose defect it is.
        """
        masks, defects = self.render.defect_masks, []
        for k, obj in enumerate(self.placed):
            for record in obj.part.records:
                i = len(defects)
                defects.append({
                    **record.as_dict(),
                    "instance": i + 1,
                    "object": k,
                    "object_instance": record.instance,
                    "visible": bool(self.render.defect_visible[i]),
                    "mask_area_px": int(masks[i].sum()),
                })
        out = {
            "index": self.index,
            "seed": self.seed,
            "product": self.nominal.product,
            "variant": self.variants[0],
            "product_params": dict(self.nominal.params),
            "defects": defects,
            "refused": [{"type": t, "reason": r} for t, r in self.refused],
            "scene": self.scene.as_dict(),
            "object_area_px": int(self.render.object_mask.sum()),
        }
        if len(self.placed) > 1:
            out["objects"] = [
                {"variant": v, "pose": obj.pose.tolist(), "area_px": int(m.sum()),
                 "product_params": dict(obj.nominal.params)}
                for v, obj, m in zip(self.variants, self.placed, self.render.object_masks,
                                     strict=True)
            ]
        return out


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


Arrange = Callable[[np.random.Generator, float], Sequence[np.ndarray]]
"""A scene script's layout: (rng, largest nominal bounding radius mm) → one (4, 4) pose
(object → arrangement frame, mm) per object of the sample."""


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
    arrange: Arrange | None = None,
) -> Sample:
    """Draw, apply, pose and render sample `index` of a job seeded with `seed`.

    The sample's generator is split into independent streams, one per stage (nominal
    variant, defects, scene, layout; `SAMPLE_STREAMS` lists them), so changing one stage's
    settings does not shift the draws of the others.

    Args:
        nominals: the defect-free part, or the job's product variants (one is drawn per
            object).
        choices: DefectChoices (each type with its probability and count), or bare
            DefectTypes (a defective object gets one defect, of a type drawn uniformly);
            empty: only good samples.
        scene_spec: randomisation ranges of the scene (its pose turns the whole
            arrangement).
        renderer: the backend.
        seed, index: the job seed and sample index.
        size: (width, height) in pixels.
        good_fraction: probability in [0, 1] that an object gets no defect.
        placement: "visible" places each defect on a face the camera sees (weighted by
            its pixel count, other objects' occlusion included), "anywhere" on any face
            (weighted by area; the defect may then be hidden, which the sample records).
        arrange: several objects in one view (a scene script's layout); None: one object
            at the origin.
    """
    streams = sample_streams(seed, index)
    nominals = [nominals] if isinstance(nominals, Part) else list(nominals)

    def variant() -> int:
        return int(streams["variant"].integers(len(nominals))) if len(nominals) > 1 else 0

    if arrange is None:
        local = [np.eye(4)]
    else:
        reach = max(n.bounding_radius for n in nominals)
        local = [np.asarray(p, dtype=np.float64) for p in arrange(streams["layout"], reach)]
        if not local or any(p.shape != (4, 4) for p in local):
            raise ValueError("arrange() must return one or more (4, 4) poses")
    variants = [variant() for _ in local]
    objects = [nominals[v] for v in variants]
    radius = max(float(np.linalg.norm(p[:3, 3])) + o.bounding_radius
                 for p, o in zip(local, objects, strict=True))
    scene = sample_scene(scene_spec, radius, size[0], size[1], streams["scene"])
    poses = [scene.object_pose @ p for p in local]
    parts, refused = _defective_objects(
        objects, poses, choices, scene, renderer, streams["defects"], good_fraction, placement
    )
    placed = tuple(Placed(p, o, pose) for p, o, pose in zip(parts, objects, poses, strict=True))
    if arrange is None:
        render = renderer.render(scene, placed[0].part, placed[0].nominal)
    else:
        render = renderer.render_placed(scene, placed)
    return Sample(index, seed, placed, scene, render, tuple(refused), tuple(variants))


def _defective_objects(objects, poses, choices, scene, renderer, rng, good_fraction, placement):
    """Each object's part after its defects (drawn object by object), and the refusals."""
    parts, refused = list(objects), []
    for k, nominal in enumerate(objects):
        if not choices or rng.uniform() < good_fraction:
            continue
        if all(isinstance(c, DefectChoice) for c in choices):
            plan = draw_defects(choices, rng)
            fallbacks = [c.defect for c in choices if c.probability > 0]
        else:  # bare defect types: one defect, of a type drawn uniformly
            fallbacks = [c.defect if isinstance(c, DefectChoice) else c for c in choices]
            plan = [fallbacks[int(rng.integers(len(fallbacks)))]]
        weights = None
        if placement == "visible" and len(objects) == 1:
            weights = functools.partial(renderer.face_visibility, scene)
        elif placement == "visible":

            def weights(part, k=k):
                current = [*parts[:k], part, *parts[k + 1 :]]
                return renderer.placed_visibility(scene, current, poses)[k]

        parts[k], why = apply_defects(nominal, plan, rng, weights, fallbacks)
        refused += why
    return parts, refused


SAMPLE_STREAMS = ("defects", "scene", "variant", "split", "augment", "layout", "translate")
"""The independent random streams of one sample, in spawn order (never reorder)."""


def sample_streams(seed: int, index: int) -> dict[str, np.random.Generator]:
    """One generator per stage of sample `index` (see SAMPLE_STREAMS)."""
    streams = child_rngs(sample_rng(seed, index), len(SAMPLE_STREAMS))
    return dict(zip(SAMPLE_STREAMS, streams, strict=True))
