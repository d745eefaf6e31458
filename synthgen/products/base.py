"""The product registry: parametric families that build a nominal `Part` from parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from synthgen.config import StrictModel, validate
from synthgen.defects.base import DefectType, make_defect
from synthgen.part import Part
from synthgen.registry import Registry


@dataclass(frozen=True)
class ProductType:
    """One registered product family.

    Attributes:
        name: short name used in recipes ("capped_bottle").
        params_model: pydantic model of its parameters; every field has a default and a
            validated range (mm, degrees or counts, as the field's description says).
        build: params → nominal Part (watertight, mm, +Z up, centred on the origin).
        description: one line for listings.
        defect_presets: defect type → settings (mm ranges, regions) that suit this
            product's size, so defects are visible at a typical framing; recipes start
            from them and the user's own settings override them key by key.
    """

    name: str
    params_model: type[StrictModel]
    build: Callable[[Any], Part]
    description: str
    defect_presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


PRODUCTS: Registry[ProductType] = Registry("product type")


def register_product(
    name: str,
    params_model: type[StrictModel],
    description: str,
    defect_presets: Mapping[str, Mapping[str, Any]] | None = None,
) -> Callable[[Callable[[Any], Part]], Callable[[Any], Part]]:
    """Decorator for a build function: registers it as product `name`."""

    def add(build: Callable[[Any], Part]) -> Callable[[Any], Part]:
        product = ProductType(name, params_model, build, description, defect_presets or {})
        PRODUCTS.register(name)(product)
        return build

    return add


def product_defect(product: str, defect: str, **settings: Any) -> DefectType:
    """A configured defect for `product`: its preset for `defect`, overridden by `settings`."""
    preset = dict(PRODUCTS.get(product).defect_presets.get(defect, {}))
    return make_defect(defect, **{**preset, **settings})


def product_params(name: str, params: Mapping[str, Any] | None = None) -> StrictModel:
    """Validated parameters of product `name`; a ConfigError names any bad field."""
    product = PRODUCTS.get(name)
    return validate(product.params_model, dict(params or {}), source=f"product {name}: ")


def build_product(name: str, params: Mapping[str, Any] | None = None) -> Part:
    """Build the nominal Part of product `name` with `params` (defaults for the rest)."""
    product = PRODUCTS.get(name)
    return product.build(product_params(name, params))
