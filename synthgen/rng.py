"""Seeds: one job seed gives one independent generator per sample index.

`sample_rng(seed, index)` depends only on (seed, index), so any sample can be regenerated
alone, in any shard, on any machine.
"""

from __future__ import annotations

import numpy as np


def sample_seed_sequence(seed: int, index: int) -> np.random.SeedSequence:
    """The SeedSequence of sample `index` of a job seeded with `seed`."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    return np.random.SeedSequence(entropy=seed, spawn_key=(index,))


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """A PCG64 generator for sample `index`; independent of every other index."""
    return np.random.Generator(np.random.PCG64(sample_seed_sequence(seed, index)))


def child_rngs(rng: np.random.Generator, n: int) -> list[np.random.Generator]:
    """`n` independent generators derived from `rng` (one per stage of a sample)."""
    return [np.random.Generator(np.random.PCG64(s)) for s in rng.bit_generator.seed_seq.spawn(n)]
