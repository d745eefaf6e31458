"""Near-duplicate grouping and group-aware splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthgen.detect.data import Item, split_items
from synthgen.detect.duplicates import near_duplicate_groups
from synthgen.errors import ConfigError


def _save(path, array):
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


def _smooth(rng) -> np.ndarray:
    """(40, 30, 3) float in [0, 255]: coarse random structure, as photos have."""
    coarse = Image.fromarray(rng.integers(0, 255, (5, 4, 3)).astype(np.uint8))
    return np.asarray(coarse.resize((30, 40), Image.BILINEAR), dtype=np.float64)


def test_near_copies_share_a_group_and_different_images_do_not(tmp_path):
    rng = np.random.default_rng(0)
    base, other = (_smooth(rng) for _ in range(2))
    brighter = np.clip(base * 0.8 + 30, 0, 255)  # the same part under another light
    items = [Item(_save(tmp_path / "a.png", base)),
             Item(_save(tmp_path / "b.png", other)),
             Item(_save(tmp_path / "c.png", brighter)),
             Item(_save(tmp_path / "d.png", base[:, :28]))]  # other size: not grouped
    assert near_duplicate_groups(items, size_tolerance=0) == [0, 1, 0, 2]
    assert near_duplicate_groups(items, size_tolerance=None)[3] == 0
    assert near_duplicate_groups(items, size_tolerance=0.1)[3] == 0  # 28 vs 30 px wide
    assert near_duplicate_groups(items)[3] == 2  # beyond the default 2 %
    with pytest.raises(ConfigError, match="threshold"):
        near_duplicate_groups(items, threshold=0)
    with pytest.raises(ConfigError, match="size_tolerance"):
        near_duplicate_groups(items, size_tolerance=-1)


def test_blocks_of_rows_give_the_same_groups_as_one_block(tmp_path, monkeypatch):
    from synthgen.detect import duplicates

    rng = np.random.default_rng(5)
    bases = [_smooth(rng) for _ in range(6)]
    images = bases + [np.clip(b * 0.9 + 10, 0, 255) for b in bases[:3]] + [bases[0]]
    items = [Item(_save(tmp_path / f"{k}.png", im)) for k, im in enumerate(images)]
    whole = near_duplicate_groups(items)
    monkeypatch.setattr(duplicates, "BLOCK", 4)  # pairs now span blocks
    assert near_duplicate_groups(items) == whole == [0, 1, 2, 3, 4, 5, 0, 1, 2, 0]


def test_a_group_never_straddles_parts_and_singletons_split_as_before():
    items = [Item(f"{i}.png", label=int(i % 3 == 0)) for i in range(60)]
    groups = [i // 4 for i in range(60)]  # 15 groups of 4; labels mix inside a group
    parts = split_items(items, (0.6, 0.2, 0.2), rng=3, groups=groups)
    where = {str(it.image): k for k, part in enumerate(parts) for it in part}
    assert len(where) == 60
    for g in range(15):
        assert len({where[f"{i}.png"] for i in range(60) if groups[i] == g}) == 1
    assert all(len(p) for p in parts)
    # one key per Item is the plain split, draw for draw
    assert split_items(items, (0.6, 0.2, 0.2), rng=3, groups=list(range(60))) == \
        split_items(items, (0.6, 0.2, 0.2), rng=3)
    with pytest.raises(ConfigError, match="groups"):
        split_items(items, groups=[0, 1])


def test_train_run_keeps_near_copies_in_one_part(tmp_path):
    """An MVTec-layout folder whose good images include brighter copies of each other."""
    pytest.importorskip("torch")
    from synthgen.detect.run import train_run

    rng = np.random.default_rng(2)
    root = tmp_path / "part"
    for folder in ("train/good", "test/good"):
        (root / folder).mkdir(parents=True)
    bases = [_smooth(rng) for _ in range(12)]
    for k, base in enumerate(bases):
        _save(root / "train/good" / f"{k:02d}.png", base[:32])
        if k < 4:  # the same part again under another light
            _save(root / "test/good" / f"copy{k:02d}.png", np.clip(base[:32] * 0.9 + 20, 0, 255))
    run = train_run("ae_l2", root, tmp_path / "run", epochs=1, size=32, batch_size=4,
                    group_duplicates=True)
    part_of = {Path(p).name: name for name, paths in run["split"].items() for p in paths}
    for k in range(4):
        assert part_of[f"{k:02d}.png"] == part_of[f"copy{k:02d}.png"]
