"""Pydantic building blocks of job recipes: strict models and numeric ranges.

A `Range` is written in YAML as a number (fixed value) or a two-item list `[low, high]`
(uniform draw). Unknown keys are errors everywhere (`extra="forbid"`).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from synthgen.errors import ConfigError


class StrictModel(BaseModel):
    """A frozen pydantic model that rejects unknown keys.

    Fields named in `omit_at_default` are left out of the dump while they hold their default:
    options added after recipes existed, so that an old recipe keeps its dump and job hash.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    omit_at_default: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for name in self.omit_at_default:
            default = type(self).model_fields[name].get_default(call_default_factory=True)
            if getattr(self, name) == default:
                data.pop(name, None)
        return data


def _as_pair(value: Any) -> tuple[float, float]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (float(value), float(value))
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = (float(v) for v in value)
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError(f"range bounds must be finite numbers, got {list(value)}")
        if low > high:
            raise ValueError(f"range [{low}, {high}] has low > high")
        return (low, high)
    raise ValueError(f"expected a number or a [low, high] pair, got {value!r}")


Range = Annotated[tuple[float, float], BeforeValidator(_as_pair)]
"""A closed interval (low, high) of floats; a single number means a fixed value."""


def check_range_within(
    name: str, value: tuple[float, float], low: float, high: float
) -> tuple[float, float]:
    """Raise ValueError unless `value` lies inside [low, high]; returns `value`."""
    if value[0] < low or value[1] > high:
        raise ValueError(f"{name} range {list(value)} must lie within [{low}, {high}]")
    return value


def within(low: float, high: float):
    """A pydantic field validator keeping a Range inside [low, high]:

        radius: Range = (1.0, 3.0)
        _radius = field_validator("radius")(within(0.05, 500.0))
    """

    def check(cls, value, info):
        return check_range_within(info.field_name, value, low, high)

    return check


def uniform(rng: np.random.Generator, value: tuple[float, float]) -> float:
    """One uniform draw from a Range; a fixed value still consumes one draw (stable streams)."""
    return float(rng.uniform(value[0], value[1]))


def format_validation_error(error: ValidationError, source: str = "") -> str:
    """One line per problem, each naming the dotted path of the bad field."""
    lines = []
    for item in error.errors():
        path = ".".join(
            f"[{p}]" if isinstance(p, int) else str(p) for p in item["loc"]
        ).replace(".[", "[")
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        value = item.get("input")
        quiet = item["type"] in ("missing", "extra_forbidden") or repr(value) in message
        shown = "" if quiet else f" (got {value!r})"
        lines.append(f"{source}{path or '<root>'}: {message}{shown}")
    return "\n".join(lines)


def validate(model: type[BaseModel], data: Any, source: str = "") -> Any:
    """`model.model_validate(data)`, turning a ValidationError into a readable ConfigError."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, source)) from None
