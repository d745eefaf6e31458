"""The manifest: part files mark done samples; manifest.jsonl is byte-identical."""

from __future__ import annotations

import json

import pytest

from synthgen.errors import SynthgenError
from synthgen.writers.manifest import ManifestWriter

from .helpers import make_samples, records


@pytest.fixture
def manifest(tmp_path):
    writer = ManifestWriter(tmp_path)
    samples = make_samples()
    for s in reversed(samples):
        writer.write(s)
    return writer, samples


def test_done_indices_ignore_temp_and_corrupt_parts(manifest):
    writer, samples = manifest
    assert writer.done_indices() == {s.index for s in samples}
    (writer.parts / ".000007.json.123.abcd.tmp").write_text('{"index": 7}')
    (writer.parts / "000003.json").write_text('{"index": 3, "trunc')  # corrupt: not done
    (writer.parts / "notes.json").write_text("{}")
    assert writer.done_indices() == {0, 1, 2, 4}


def test_done_indices_of_a_fresh_folder_is_empty(tmp_path):
    assert ManifestWriter(tmp_path / "new").done_indices() == set()
    assert ManifestWriter(tmp_path / "new").records() == []


def test_records_in_index_order(manifest):
    writer, samples = manifest
    assert writer.records() == records(samples)
    assert [r["index"] for r in writer.records([4, 1])] == [1, 4]
    with pytest.raises(SynthgenError, match=r"not done.*: 9"):
        writer.records([1, 9])


def test_finalize_is_byte_identical_and_sorted(manifest, tmp_path_factory):
    writer, samples = manifest
    writer.finalize(writer.records())
    first = writer.manifest_file.read_bytes()
    other = ManifestWriter(tmp_path_factory.mktemp("other"))
    other.finalize(list(reversed(records(samples))))  # order given does not matter
    assert other.manifest_file.read_bytes() == first
    lines = first.decode().splitlines()
    assert [json.loads(line)["index"] for line in lines] == [0, 1, 2, 3, 4]
    for line in lines:
        assert line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":"))
