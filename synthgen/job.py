"""Dataset job recipes: a YAML file (or a Python scene script) → a validated, hashed `Job`.

    job = load_recipe("scenes/capped_bottle.yaml", overrides={"samples": 50})

Every error names the recipe path of the bad field, the bad value and what is accepted:

    defects[1].type: 'bulgee' is not a defect type; known: bulge, chip, crack, ...

Unknown keys are errors. A defect entry's own parameters (radius, height, ...) sit beside
its `type` and start from the product's presets for that defect; product parameters may be
numbers or `[low, high]` ranges (each of `product.variants` nominal parts draws its own).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import (
    Field,
    ValidationError,
    field_validator,
)

from synthgen.augment import AugmentSpec
from synthgen.config import Range, StrictModel, format_validation_error, validate, within
from synthgen.defects import DEFECTS
from synthgen.defects.base import DefectType
from synthgen.errors import ConfigError
from synthgen.part import Part
from synthgen.products import PRODUCTS, build_product
from synthgen.scene.spec import SceneSpec
from synthgen.translate.apply import TranslateSpec

FORMATS = ("mvtec", "coco", "yolo", "yolo_detect")


class ProductSpec(StrictModel):
    """Which product, with which parameters.

    Attributes:
        type: registered product type.
        params: product parameters; numbers, strings, booleans, or [low, high] ranges for
            numeric ones (a CAD `path` is taken relative to the recipe file).
        variants: how many nominal parts to draw from the ranges (each sample uses one);
            1 when no parameter is a range.
    """

    type: str = "capped_bottle"
    params: dict[str, Any] = Field(default_factory=dict)
    variants: int = Field(1, ge=1, le=256)

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in PRODUCTS:
            raise ValueError(f"{value!r} is not a product type; known: {', '.join(PRODUCTS)}")
        return value


class DefectSpec(StrictModel):
    """One defect type a defective sample may get.

    Attributes:
        type: registered defect type.
        probability: chance that a defective sample gets this type (at least one type is
            always drawn: when none comes up, one is chosen in proportion to these).
        count: how many instances of it such a sample gets, [low, high] integers.
        params: the defect's own settings (ranges in mm, regions); written in the recipe
            beside `type`, not under a `params` key.
    """

    model_config = StrictModel.model_config | {"extra": "allow"}

    type: str
    probability: float = Field(1.0, ge=0.0, le=1.0)
    count: Range = (1.0, 1.0)

    _count = field_validator("count")(within(1.0, 20.0))

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in DEFECTS:
            raise ValueError(f"{value!r} is not a defect type; known: {', '.join(DEFECTS)}")
        return value

    @field_validator("count")
    @classmethod
    def _integers(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(float(v).is_integer() for v in value):
            raise ValueError(f"count must be whole numbers, got {list(value)}")
        return value

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class BlenderSpec(StrictModel):
    """Settings of the Blender renderer (`render.renderer: blender`); part of RenderSpec.

    Attributes:
        engine: "cycles" (path tracing; CPU or GPU) or "eevee" (rasterised; needs a GPU
            context, so not on a headless machine without one).
        samples: samples per pixel.
        denoise: run OpenImageDenoise on the Cycles image.
        device: "auto" (OptiX, then CUDA, then the CPU), "cpu", "cuda" or "optix".
        environment: "ambient" (uniform world light at the scene's ambient level), "none"
            (no world light) or the path of an equirectangular image (.hdr, .exr, .png,
            .jpg) that lights the part and shows in its reflections (never behind it: the
            background is the scene's).
        environment_strength: multiplier of the environment's light.
    """

    engine: Literal["cycles", "eevee"] = "cycles"
    samples: int = Field(32, ge=1, le=65536)
    denoise: bool = True
    device: Literal["auto", "cpu", "cuda", "optix"] = "auto"
    environment: str = "ambient"
    environment_strength: float = Field(1.0, ge=0.0, le=1000.0)

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: str) -> str:
        if value in ("ambient", "none"):
            return value
        path = Path(value)
        if path.suffix.lower() not in (".hdr", ".exr", ".png", ".jpg", ".jpeg"):
            raise ValueError(
                f"{value!r} is not ambient, none or an .hdr/.exr/.png/.jpg image path"
            )
        if not path.is_file():
            raise ValueError(f"environment image {value!r} does not exist")
        return str(path.resolve())


class RenderSpec(StrictModel):
    """Renderer and image size.

    Attributes:
        renderer: "pyrender" (embedded, headless; the default) or "blender" (Cycles or
            Eevee through the bpy module).
        size: image side in pixels, or [width, height].
        antialias: "auto", "msaa", "edge" or "none" (see the pyrender backend; Blender
            filters every pixel and ignores it).
        blender: the Blender renderer's settings (see `BlenderSpec`). Left at its defaults
            it is not written into the recipe dump, so recipes that do not set it keep the
            job hash they had before the Blender backend existed.
    """

    renderer: Literal["pyrender", "blender"] = "pyrender"
    size: int | tuple[int, int] = 256
    antialias: Literal["auto", "msaa", "edge", "none"] = "auto"
    blender: BlenderSpec = Field(default_factory=BlenderSpec)
    omit_at_default = ("blender",)

    @field_validator("size")
    @classmethod
    def _size(cls, value: int | tuple[int, int]) -> int | tuple[int, int]:
        sides = (value, value) if isinstance(value, int) else value
        if not all(16 <= side <= 8192 for side in sides):
            raise ValueError(f"image sides must lie within [16, 8192] pixels, got {value}")
        return value


    @property
    def width_height(self) -> tuple[int, int]:
        return (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)

    def renderer_options(self) -> dict[str, Any]:
        """Keyword options of `synthgen.render.make_renderer` for this renderer."""
        if self.renderer == "blender":
            return self.blender.model_dump()
        return {"antialias": self.antialias}


class OutputSpec(StrictModel):
    """What the job writes.

    Attributes:
        formats: any of mvtec, coco, yolo (segment labels), yolo_detect (box labels).
        name: dataset / MVTec category name (default: the product type).
        good_test_fraction: share of defect-free samples put in the test split (the rest
            are MVTec's train/good); defective samples are always test samples.
    """

    formats: list[Literal["mvtec", "coco", "yolo", "yolo_detect"]] = Field(
        default_factory=lambda: ["mvtec", "coco", "yolo"]
    )
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")
    good_test_fraction: float = Field(0.2, ge=0.0, le=1.0)


class Job(StrictModel):
    """A whole dataset job.

    Attributes:
        product: the product and its parameters.
        defects: the defect types defective samples draw from (empty: only good samples).
        good_fraction: share of samples drawn without defects.
        placement: "visible" puts each defect where the camera sees it; "anywhere" on any
            face (it may then be hidden, which the manifest records).
        scene: pose, camera, lighting, material and background ranges.
        render: renderer and image size.
        augment: augmentation preset.
        output: formats and splits.
        samples: number of samples.
        seed: job seed; sample i is made from (seed, i) alone.
        layout: a Python scene script whose `arrange(rng, radius)` returns the poses of
            several objects per sample (set automatically when the recipe is that script);
            None: one object per sample.
        translate: a trained defect translator applied to a share of the renders (its
            painted defect becomes an instance of type "translated"); None: no translation.
            Left unset it is not written into the recipe dump, so the job hash is unchanged.
    """

    product: ProductSpec = Field(default_factory=ProductSpec)
    defects: list[DefectSpec] = Field(default_factory=list)
    good_fraction: float = Field(0.3, ge=0.0, le=1.0)
    placement: Literal["visible", "anywhere"] = "visible"
    scene: SceneSpec = Field(default_factory=SceneSpec)
    render: RenderSpec = Field(default_factory=RenderSpec)
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    samples: int = Field(100, ge=1, le=100_000_000)
    seed: int = Field(0, ge=0, le=2**63 - 1)
    layout: str | None = None
    translate: TranslateSpec | None = None
    omit_at_default = ("translate",)


    @field_validator("layout")
    @classmethod
    def _script(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"{value!r} is not a file; layout names a Python scene script")
        return value

    @property
    def name(self) -> str:
        return self.output.name or self.product.type

    @property
    def defect_types(self) -> tuple[str, ...]:
        """Defect types the job can produce, in recipe order, each once."""
        types = [d.type for d in self.defects] + (["translated"] if self.translate else [])
        return tuple(dict.fromkeys(types))

    def to_dict(self) -> dict[str, Any]:
        """The full recipe with every default filled in, JSON-ready."""
        return self.model_dump(mode="json")

    @property
    def hash(self) -> str:
        """sha256 (16 hex digits) of the canonical JSON of the full recipe."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- loading ---------------------------------------------------------------------------


def load_recipe(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Job:
    """Read a YAML recipe or a Python scene script and validate it.

    A Python script defines `recipe() -> dict` (or `Job`) using the public API, for what
    YAML cannot say; its dict goes through the same validation as YAML.

    Args:
        path: the recipe file (.yaml, .yml or .py).
        overrides: top-level keys replacing the recipe's (e.g. samples, seed).

    Raises:
        ConfigError: a missing or unreadable file, bad YAML, or any invalid field.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {str(path)!r} does not exist")
    if path.suffix == ".py":
        data = _run_script(path)
        if isinstance(data, dict) and callable(getattr(_script_module(path), "arrange", None)):
            data = {"layout": str(path.resolve()), **data}
    elif path.suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from None
    else:
        raise ConfigError(f"recipe {str(path)!r}: expected a .yaml, .yml or .py file")
    if isinstance(data, Job):
        data = data.to_dict()
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of keys, got {type(data).__name__}")
    data = {**data, **dict(overrides or {})}
    return parse_recipe(data, base_dir=path.parent, source=f"{path.name}: ")


def _script_module(path: Path) -> Any:
    """The scene script at `path`, imported (once per process)."""
    name = f"synthgen_scene_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's script: report, do not crash
        raise ConfigError(f"{path}: the scene script failed: {error!r}") from error
    sys.modules[name] = module
    return module


def _run_script(path: Path) -> Any:
    module = _script_module(path)
    if not callable(getattr(module, "recipe", None)):
        raise ConfigError(f"{path}: a scene script must define recipe() returning a dict")
    try:
        return module.recipe()
    except Exception as error:
        raise ConfigError(f"{path}: recipe() failed: {error!r}") from error


def load_arrange(job: Job):
    """The `arrange` function of the job's layout script, or None for one object."""
    if job.layout is None:
        return None
    arrange = getattr(_script_module(Path(job.layout)), "arrange", None)
    if not callable(arrange):
        raise ConfigError(f"layout: {job.layout} defines no arrange(rng, radius) function")
    return arrange


def parse_recipe(data: Mapping[str, Any], base_dir: Path | None = None, source: str = "") -> Job:
    """Validate a recipe mapping into a Job (see `load_recipe`)."""
    data = dict(data)
    product = data.get("product")
    if isinstance(product, dict) and base_dir is not None:
        params = dict(product.get("params") or {})
        if isinstance(params.get("path"), str) and not Path(params["path"]).is_absolute():
            params["path"] = str((base_dir / params["path"]).resolve())
            data["product"] = {**product, "params": params}
    translate = data.get("translate")
    if isinstance(translate, dict) and isinstance(translate.get("run"), str) and base_dir:
        if not Path(translate["run"]).is_absolute():
            data["translate"] = {**translate, "run": str((base_dir / translate["run"]).resolve())}
    job = validate(Job, data, source=source)
    problems = _check_product(job.product) + _check_defects(job)
    if job.translate is not None and not Path(job.translate.run).exists():
        problems.append(f"translate.run: {str(job.translate.run)!r} does not exist; it names "
                        f"a run folder of synthgen translate train (or its last.pt)")
    if problems:
        raise ConfigError("\n".join(f"{source}{p}" for p in problems))
    return job


def _check_product(spec: ProductSpec) -> list[str]:
    """Validate the product params at both ends of every range."""
    model = PRODUCTS.get(spec.type).params_model
    problems = []
    for key, value in spec.params.items():
        if key not in model.model_fields:
            known = ", ".join(model.model_fields)
            problems.append(f"product.params.{key}: not a parameter of {spec.type}; known: {known}")
        elif isinstance(value, list | tuple) and len(value) != 2:
            problems.append(f"product.params.{key}: a range is [low, high], got {value}")
    if problems:
        return problems
    for end in (0, 1):
        chosen = {k: (v[end] if isinstance(v, list | tuple) else v) for k, v in spec.params.items()}
        try:
            model.model_validate(chosen)
        except ValidationError as error:
            text = format_validation_error(error).replace("<root>: ", "")
            for line in text.splitlines():
                field_name = line.split(":", 1)[0]
                joint = "." if field_name in model.model_fields else ": "
                problems.append(f"product.params{joint}{line}")
    path = spec.params.get("path")
    if isinstance(path, str) and "path" in model.model_fields and not Path(path).exists():
        problems.append(f"product.params.path: {path!r} does not exist")
    return sorted(set(problems))


def _check_defects(job: Job) -> list[str]:
    problems = []
    for i, entry in enumerate(job.defects):
        try:
            make_job_defect(job.product.type, entry)
        except ConfigError as error:
            for line in str(error).splitlines():
                problems.append(f"defects[{i}].{line.split(': ', 1)[-1]}")
    return problems


def make_job_defect(product: str, entry: DefectSpec) -> DefectType:
    """The configured defect of a recipe entry: product presets, then the entry's params."""
    from synthgen.products import product_defect

    return product_defect(product, entry.type, **entry.params)


# -- product variants -------------------------------------------------------------------


def variant_params(spec: ProductSpec, seed: int) -> list[dict[str, Any]]:
    """The parameter sets of the job's nominal parts (ranges drawn uniformly, seeded)."""
    ranged = {k: v for k, v in spec.params.items() if isinstance(v, list | tuple)}
    if not ranged:
        return [dict(spec.params)]
    model = PRODUCTS.get(spec.type).params_model
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED_9A27]))
    out = []
    for _ in range(spec.variants):
        params = dict(spec.params)
        for key, (low, high) in ranged.items():
            value = float(rng.uniform(low, high))
            annotation = model.model_fields[key].annotation
            params[key] = math.floor(value + 0.5) if annotation is int else value
        out.append(params)
    return out


def build_variants(job: Job) -> list[Part]:
    """The job's nominal parts, one per variant."""
    return [build_product(job.product.type, p) for p in variant_params(job.product, job.seed)]
