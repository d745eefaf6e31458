"""Model presets: a short name maps to a ModelSpec (kind, factory, default config).

The engine talks to a model only through the protocol of its spec's kind, so adding a model is
one `register_model(ModelSpec(...))` call in the module that defines it:

- ``classifier``: ``forward(images (B, 3, S, S) float [0, 1]) -> logits (B, 2)``; trained with
  cross-entropy against ``batch["label"]`` (0 good, 1 defective).
- ``segmenter``: ``forward(images) -> logits (B, 1, S, S)``; trained with binary cross-entropy
  against ``batch["mask"]``; the sigmoid of the logits is the anomaly map.
- ``detector``: ``loss(batch) -> scalar`` in train mode and
  ``predict(images) -> list of {"boxes": (N, 4) xyxy px, "scores": (N,), "classes": (N,) int64}``
  in eval mode (the model maps its own class indices, e.g. torchvision's background 0).
- ``anomaly``: ``loss(batch) -> scalar`` (trained on good images only) and
  ``score(images) -> (image_scores (B,), maps (B, S, S))``, higher = more anomalous; an optional
  ``fit_after(loader, device)`` runs after each training epoch (e.g. to fit a density on latent
  codes of the training images).

This module itself imports no torch (the ``models`` package around it does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from synthgen.errors import ConfigError
from synthgen.registry import Registry

if TYPE_CHECKING:
    from torch import nn

Kind = Literal["classifier", "segmenter", "detector", "anomaly"]
KINDS: tuple[str, ...] = ("classifier", "segmenter", "detector", "anomaly")


@dataclass(frozen=True)
class ModelSpec:
    """One model preset.

    Attributes:
        name: short name configs and the CLI use ("ae_ssim", "resnet18").
        kind: which protocol the engine uses (see the module docstring).
        build: factory taking the merged config dict and returning a fresh ``nn.Module``.
        default_config: the preset's config; ``make(**overrides)`` merges overrides into it.
        description: one line for ``synthgen models`` style listings.
        needs: what training data it needs: "good images only", "labels", "masks" or "boxes".
        train_on: "good" (anomaly models: the good training images only) or "all".
        synthetic_anomalies: train on good images turned into (image, mask) samples by
            ``synthgen.detect.synthetic_anomalies`` (DRAEM); any preset may opt in at train time.
        threshold: how the image threshold is chosen on validation: "f1" (best F1) or
            "between" (where Gaussians fitted to the good and defective scores cross).
        legacy_config: options added after checkpoints already existed, with the values that
            reproduce the behaviour from before them. A checkpoint whose config lacks one is
            rebuilt with this value, not the new default, so an old run still scores as it
            was thresholded.
    """

    name: str
    kind: Kind
    build: Callable[[dict[str, Any]], nn.Module]
    default_config: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    needs: str = "labels"
    train_on: str = ""
    synthetic_anomalies: bool = False
    threshold: str = "f1"
    legacy_config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.train_on:
            object.__setattr__(self, "train_on", "good" if self.kind == "anomaly" else "all")
        if self.train_on not in ("good", "all"):
            raise ConfigError(f"model preset {self.name!r}: train_on must be 'good' or 'all', "
                              f"got {self.train_on!r}")
        if self.threshold not in ("f1", "between"):
            raise ConfigError(f"model preset {self.name!r}: threshold must be 'f1' or "
                              f"'between', got {self.threshold!r}")
        if self.kind not in KINDS:
            raise ConfigError(
                f"model preset {self.name!r} has kind {self.kind!r}; accepted: {', '.join(KINDS)}"
            )
        object.__setattr__(self, "default_config", MappingProxyType(dict(self.default_config)))
        object.__setattr__(self, "legacy_config", MappingProxyType(dict(self.legacy_config)))

    def config(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The default config with `overrides` merged in; unknown keys are a ConfigError."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.default_config))
        if unknown:
            raise ConfigError(
                f"model preset {self.name!r} has no option {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(self.default_config))}"
            )
        return {**self.default_config, **overrides}

    def make(self, **overrides: Any) -> nn.Module:
        """A freshly initialised model built from the default config plus `overrides`."""
        return self.build(self.config(overrides))


MODELS: Registry[ModelSpec] = Registry("model preset")


def register_model(spec: ModelSpec) -> ModelSpec:
    """Adds `spec` to MODELS under its name; raises ValueError on a duplicate name."""
    return MODELS.register(spec.name)(spec)


def get_spec(name: str) -> ModelSpec:
    """The preset called `name`; a ConfigError lists the known presets otherwise."""
    _load_builtin()
    return MODELS.get(name)


def build_model(name: str, **overrides: Any) -> nn.Module:
    """Builds preset `name` with `overrides` merged into its default config."""
    return get_spec(name).make(**overrides)


def model_names() -> list[str]:
    """Names of every registered preset, sorted."""
    _load_builtin()
    return MODELS.names()


def _load_builtin() -> None:
    # Importing the model modules registers their presets (they import torch).
    import synthgen.detect.models  # noqa: F401


def parse_model_options(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings (``--set``) → a preset config dict; values are read as YAML scalars
    (500, 0.1, true, [16, 32])."""
    import yaml

    config = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE, e.g. search_steps=500")
        config[key.strip()] = yaml.safe_load(value)
    return config
