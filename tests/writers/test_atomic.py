"""Atomic writes: whole files or nothing, one clear error, earlier files untouched."""

from __future__ import annotations

import errno
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from synthgen.errors import SynthgenError
from synthgen.writers import atomic
from synthgen.writers.atomic import OutputError


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_creates_the_folder_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "a" / "b" / "x.bin"
    assert atomic.write_bytes(path, b"hello") == path
    assert path.read_bytes() == b"hello"
    atomic.write_bytes(path, b"again")
    assert path.read_bytes() == b"again"
    assert _leftovers(path.parent) == []


def test_failed_rename_raises_one_clear_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "data.json"
    atomic.write_json(path, {"v": 1})
    before = path.read_bytes()

    def refuse(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OutputError) as info:
        atomic.write_json(path, {"v": 2})
    err = info.value
    assert isinstance(err, SynthgenError) and isinstance(err, OSError)
    assert str(path) in str(err) and "No space left on device" in str(err)
    assert err.errno == errno.ENOSPC and err.path == path
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_failed_write_removes_the_temp_file(tmp_path, monkeypatch):
    other = tmp_path / "other.txt"
    atomic.write_text(other, "kept")

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OutputError, match=r"new\.txt: No space left on device"):
        atomic.write_text(tmp_path / "new.txt", "lost")
    monkeypatch.undo()
    assert not (tmp_path / "new.txt").exists()
    assert other.read_text() == "kept"
    assert _leftovers(tmp_path) == []


def test_read_only_folder_raises_output_error(tmp_path):
    folder = tmp_path / "ro"
    atomic.write_text(folder / "old.txt", "old")
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user whom chmod does not stop (root)")
        with pytest.raises(OutputError, match=r"ro/new\.txt"):
            atomic.write_text(folder / "new.txt", "new")
        with pytest.raises(OutputError, match=r"old\.txt"):
            atomic.write_text(folder / "old.txt", "changed")
        assert (folder / "old.txt").read_text() == "old"
    finally:
        folder.chmod(0o755)


def test_json_is_deterministic_with_sorted_keys(tmp_path):
    a = atomic.write_json(tmp_path / "a.json", {"b": [1, 2.5], "a": {"z": None, "y": True}})
    b = atomic.write_json(tmp_path / "b.json", {"a": {"y": True, "z": None}, "b": [1, 2.5]})
    assert a.read_bytes() == b.read_bytes()
    assert a.read_text() == '{"a":{"y":true,"z":null},"b":[1,2.5]}\n'
    assert json.loads(a.read_text()) == {"a": {"y": True, "z": None}, "b": [1, 2.5]}


def test_png_round_trip_and_same_pixels_give_same_bytes(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    p = atomic.write_png(tmp_path / "x.png", rgb)
    assert p.read_bytes() == atomic.encode_png(rgb.copy())
    with Image.open(p) as im:
        assert im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), rgb)
    grey = Image.open(io.BytesIO(atomic.encode_png(np.eye(5, dtype=bool))))
    assert grey.mode == "L" and set(np.unique(np.asarray(grey))) == {0, 255}
    with pytest.raises(ValueError, match="uint8"):
        atomic.encode_png(np.zeros((4, 4, 3), np.float32))


def test_folder_that_cannot_be_made_raises_output_error(tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(OutputError, match=r"blocker/sub/x\.txt"):
        atomic.write_text(tmp_path / "blocker" / "sub" / "x.txt", "x")
    assert (tmp_path / "blocker").read_text() == "a file where a folder should be"
