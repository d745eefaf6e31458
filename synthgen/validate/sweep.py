"""Defect-size sweeps: parse ``defect.param=low:high:n``, check it, render the views.

    spec = parse_sweep("bulge.height=0.05:2.0:20")       # 20 sizes, geometric spacing
    check_sweep(job, spec)                               # ConfigError before any rendering
    views = render_views(job, [spec], per_size=10, good=20)

Each size of a sweep is rendered in `per_size` views with the recipe's scene randomisation
(pose, camera, lighting, material, background, augmentation). The swept parameter is fixed
at the size (a degenerate range (v, v)); the other parameters of the defect come from the
recipe's entry of that type if it has one, else from the product's presets. A view whose
defect mask comes out empty (hidden, out of frame), whose defect the part refused, or whose
defect was applied at another size (a bulge capped by a thin wall) is redrawn with the next
sample index; the number of attempts is recorded. View (sweep s, size i, view k, attempt a)
is sample `view_index(s, i, k, a)` of the recipe's seed, good part m is sample
`good_index(m)`, so every image can be made again alone.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from synthgen.defects import DEFECTS
from synthgen.errors import ConfigError, SynthgenError
from synthgen.job import Job

log = logging.getLogger(__name__)

MAX_STEPS, MAX_VIEWS, MAX_ATTEMPTS, MAX_GOOD = 999, 999, 99, 999_999
"""Limits of the sample-index scheme (sizes per sweep, views per size, attempts, goods)."""

_SPEC = re.compile(r"^\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*=\s*([^:]+):([^:]+):([^:]+)"
                   r"(?::(log|lin))?\s*$")


@dataclass(frozen=True)
class SweepSpec:
    """One defect parameter swept over a grid of sizes.

    Attributes:
        defect: registered defect type.
        param: the defect's Range parameter to sweep (mm for lengths).
        low, high: first and last size of the grid (low < high, or one size if equal).
        steps: number of sizes.
        spacing: "log" (geometric, the default: even steps in ln size, as the POD model
            is on ln size) or "lin" (arithmetic).
    """

    defect: str
    param: str
    low: float
    high: float
    steps: int
    spacing: Literal["log", "lin"] = "log"

    @property
    def key(self) -> str:
        """"defect.param", the sweep's name in reports."""
        return f"{self.defect}.{self.param}"

    @property
    def text(self) -> str:
        """The spec as written on the command line (round-trips through parse_sweep)."""
        return f"{self.key}={self.low:g}:{self.high:g}:{self.steps}:{self.spacing}"

    @property
    def sizes(self) -> np.ndarray:
        """(steps,) float64 sizes, ascending."""
        if self.spacing == "log":
            return np.geomspace(self.low, self.high, self.steps)
        return np.linspace(self.low, self.high, self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {"defect": self.defect, "param": self.param, "low": self.low,
                "high": self.high, "steps": self.steps, "spacing": self.spacing,
                "spec": self.text, "sizes": self.sizes.tolist()}


def parse_sweep(text: str) -> SweepSpec:
    """Parse ``defect.param=low:high:n[:log|lin]`` (syntax only; see `check_sweep`).

    Raises:
        ConfigError: naming the spec and the accepted form.
    """
    form = ("expected DEFECT.PARAM=LOW:HIGH:N[:log|lin], for example "
            "bulge.height=0.05:2.0:20")
    match = _SPEC.match(text)
    if match is None:
        raise ConfigError(f"--sweep {text!r}: {form}")
    defect, param, low, high, steps, spacing = match.groups()
    try:
        low_v, high_v = float(low), float(high)
        steps_v = int(steps)
    except ValueError:
        raise ConfigError(f"--sweep {text!r}: LOW and HIGH must be numbers and N a whole "
                          f"number; {form}") from None
    if not (math.isfinite(low_v) and math.isfinite(high_v)) or low_v <= 0 or high_v < low_v:
        raise ConfigError(f"--sweep {text!r}: need 0 < LOW <= HIGH (POD is fitted on ln size)")
    if not 1 <= steps_v <= MAX_STEPS or (steps_v > 1 and high_v == low_v):
        raise ConfigError(f"--sweep {text!r}: N must be in [1, {MAX_STEPS}], and LOW < HIGH "
                          "when N > 1")
    return SweepSpec(defect, param, low_v, high_v, steps_v, spacing or "log")


def _base_settings(job: Job, defect: str) -> dict[str, Any]:
    """The defect's settings in the recipe (its first entry of that type), or {}."""
    for entry in job.defects:
        if entry.type == defect:
            return entry.params
    return {}


def sweepable(defect: str) -> list[str]:
    """The Range parameters of a defect type, the ones a sweep may set."""
    fields = DEFECTS.get(defect).Config.model_fields
    return [name for name, info in fields.items()
            if isinstance(info.default, tuple) and len(info.default) == 2]


def sweep_defect(job: Job, spec: SweepSpec, size: float):
    """The configured defect of the sweep at one size (the parameter fixed at `size`)."""
    from synthgen.products import product_defect

    settings = {**_base_settings(job, spec.defect), spec.param: (float(size), float(size))}
    return product_defect(job.product.type, spec.defect, **settings)


def check_sweep(job: Job, spec: SweepSpec) -> None:
    """Everything about a sweep that can be known without rendering.

    Checks that the defect type exists, that the parameter is one of its ranges, that the
    whole grid lies within the range the defect's Config accepts (its own validators), and
    that the product's nominal part can take the defect at the grid's ends.

    Raises:
        ConfigError: one message naming the sweep, the field and what is accepted.
    """
    where = f"--sweep {spec.text!r}"
    if spec.defect not in DEFECTS:
        raise ConfigError(f"{where}: {spec.defect!r} is not a defect type; known: "
                          f"{', '.join(DEFECTS)}")
    params = sweepable(spec.defect)
    if spec.param not in params:
        raise ConfigError(f"{where}: {spec.defect} has no size parameter {spec.param!r}; "
                          f"sweepable: {', '.join(params)}")
    if job.layout is not None:
        raise ConfigError(f"{where}: validate renders one object per view; the recipe uses "
                          f"the layout script {job.layout}")
    from synthgen.products import product_defect

    settings = {**_base_settings(job, spec.defect), spec.param: (spec.low, spec.high)}
    try:
        product_defect(job.product.type, spec.defect, **settings)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def check_applicable(job: Job, spec: SweepSpec, nominal) -> None:
    """Draw the defect at both ends of the grid on the nominal part (no rendering).

    Raises:
        ConfigError: the part refuses the defect at some size (e.g. a shortened notch
            longer than the notch), naming the sweep and the reason.
    """
    from synthgen.errors import DefectNotApplicable

    for size in {spec.low, spec.high}:
        defect = sweep_defect(job, spec, size)
        try:
            defect.sample(nominal, np.random.default_rng(0))
        except DefectNotApplicable as error:
            raise ConfigError(f"--sweep {spec.text!r}: at {spec.param}={size:g} the defect "
                              f"cannot go on {nominal.product}: {error}") from None


def view_index(sweep: int, size: int, view: int, attempt: int) -> int:
    """Sample index of attempt `attempt` of view `view` at size `size` of sweep `sweep`."""
    return (((sweep + 1) * 1000 + size) * 1000 + view) * 100 + attempt


def good_index(m: int) -> int:
    """Sample index of good part `m` (apart from every view index)."""
    return m * 100


@dataclass(frozen=True, eq=False)
class View:
    """One rendered image of the validation.

    Attributes:
        sweep: the sweep's key ("bulge.height"), or None for a good part.
        size: the swept parameter's value (mm), None for a good part.
        size_index, view: position in the grid (-1 for a good part's size index).
        index: the sample index it was rendered as (of the recipe's seed).
        attempts: renders it took to get the defect visible at the size (1: first try).
        rgb: (H, W, 3) uint8, after the recipe's augmentation.
        mask: (H, W) bool defect mask (all False for a good part).
        record: the sample's manifest line (scene, defect parameters, augmentation).
        redraws: why earlier attempts were discarded.
    """

    sweep: str | None
    size: float | None
    size_index: int
    view: int
    index: int
    attempts: int
    rgb: np.ndarray
    mask: np.ndarray
    record: dict[str, Any]
    redraws: tuple[str, ...] = field(default=())

    @property
    def mask_area_px(self) -> int:
        return int(self.mask.sum())

    @property
    def name(self) -> str:
        """File stem: <defect>_<param>_s<size>_v<view>, or good_<m>."""
        if self.sweep is None:
            return f"good_{self.view:04d}"
        return f"{self.sweep.replace('.', '_')}_s{self.size_index:03d}_v{self.view:03d}"


Progress = Callable[[int, int], None]


def render_views(
    job: Job,
    sweeps: Sequence[SweepSpec],
    per_size: int,
    good: int,
    max_attempts: int = 20,
    progress: Progress | None = None,
) -> list[View]:
    """Render every view of the sweeps and the good parts.

    Args:
        job: the recipe (scene, render size, augmentation, seed); its defects list only
            supplies the swept defects' other settings.
        sweeps: the checked sweeps.
        per_size: views per size (K).
        good: defect-free parts (M), for the false-call rate.
        max_attempts: renders allowed per view before giving up.
        progress: called with (done, total) after each view.

    Returns:
        Views in order: sweep by sweep, size by size, view by view, then the good parts.

    Raises:
        SynthgenError: a view that shows no defect after `max_attempts` renders.
    """
    from synthgen.generate import JobRunner
    from synthgen.pipeline import DefectChoice

    if not 1 <= per_size <= MAX_VIEWS or not 0 <= good <= MAX_GOOD:
        raise ConfigError(f"per-size must be in [1, {MAX_VIEWS}] and good in [0, {MAX_GOOD}]")
    if not 1 <= max_attempts <= MAX_ATTEMPTS:
        raise ConfigError(f"max attempts must be in [1, {MAX_ATTEMPTS}], got {max_attempts}")
    runner = JobRunner(job.model_copy(update={"good_fraction": 0.0, "defects": []}), None)
    total = sum(s.steps for s in sweeps) * per_size + good
    views: list[View] = []
    try:
        for number, spec in enumerate(sweeps):
            for i, size in enumerate(spec.sizes):
                runner.choices = [DefectChoice(sweep_defect(job, spec, size))]
                for k in range(per_size):
                    views.append(_defect_view(runner, spec, number, i, float(size), k,
                                              max_attempts))
                    if progress is not None:
                        progress(len(views), total)
        runner.choices = []
        for m in range(good):
            labelled = runner.make(good_index(m))
            views.append(View(None, None, -1, m, good_index(m), 1, labelled.rgb,
                              np.zeros(labelled.rgb.shape[:2], dtype=bool), labelled.record))
            if progress is not None:
                progress(len(views), total)
    finally:
        runner.close()
    return views


def _defect_view(runner, spec: SweepSpec, number: int, i: int, size: float, k: int,
                 max_attempts: int) -> View:
    """Render view k of size i until its defect shows, at the requested size."""
    redraws = []
    for attempt in range(max_attempts):
        index = view_index(number, i, k, attempt)
        labelled = runner.make(index)
        why = _problem(labelled, spec, size)
        if why is None:
            return View(spec.key, size, i, k, index, attempt + 1, labelled.rgb,
                        labelled.instances[0].mask.copy(), labelled.record, tuple(redraws))
        redraws.append(f"sample {index}: {why}")
    raise SynthgenError(f"--sweep {spec.text!r}: {spec.param}={size:g}, view {k}: no visible "
                        f"defect at that size in {max_attempts} renders (last: {redraws[-1]});"
                        " change the scene or the defect's regions so the camera sees it")


def _problem(labelled, spec: SweepSpec, size: float) -> str | None:
    """Why a rendered view cannot be used, or None when it shows the defect at `size`."""
    defects = labelled.record["defects"]
    if not defects:
        refused = "; ".join(r["reason"] for r in labelled.record.get("refused", []))
        return f"the part refused the defect ({refused or 'no reason given'})"
    applied = defects[0]["params"].get(spec.param)
    if applied is None or not math.isclose(float(applied), size, rel_tol=1e-6, abs_tol=1e-9):
        return f"{spec.param} applied as {applied} (capped by the part's walls)"
    if not labelled.instances[0].mask.any():
        return "the defect mask is empty (hidden or out of frame)"
    return None
