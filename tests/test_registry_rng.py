"""Registries refuse duplicates and name the known entries; seeds are per sample."""

import numpy as np
import pytest

from synthgen.errors import ConfigError
from synthgen.registry import Registry
from synthgen.rng import child_rngs, sample_rng


def test_registry_rejects_duplicates_and_lists_known_names():
    registry: Registry[int] = Registry("widget type")
    registry.register("b")(2)
    registry.register("a")(1)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a")(3)
    assert registry.get("a") == 1
    with pytest.raises(ConfigError, match="'c' is not a widget type; known: a, b"):
        registry.get("c")


def test_sample_rng_depends_only_on_seed_and_index():
    a = sample_rng(5, 10).uniform(size=4)
    np.testing.assert_array_equal(a, sample_rng(5, 10).uniform(size=4))
    assert not np.array_equal(a, sample_rng(5, 11).uniform(size=4))
    assert not np.array_equal(a, sample_rng(6, 10).uniform(size=4))
    with pytest.raises(ValueError):
        sample_rng(-1, 0)


def test_child_rngs_are_independent_and_reproducible():
    first = [g.uniform() for g in child_rngs(sample_rng(1, 2), 3)]
    again = [g.uniform() for g in child_rngs(sample_rng(1, 2), 3)]
    assert first == again and len(set(first)) == 3
