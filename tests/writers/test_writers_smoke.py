"""Every registered writer, once: any order, twice, and from several processes at once."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from synthgen.writers import WRITERS
from synthgen.writers.manifest import ManifestWriter

from .helpers import INFO, make_samples, records, tree, write_shard


def test_the_documented_formats_are_registered():
    assert {"mvtec", "coco", "yolo", "yolo_detect"} <= set(WRITERS)


@pytest.mark.parametrize("name", WRITERS.names())
def test_writer_writes_every_sample_and_rewrites_identically(tmp_path, name):
    samples = make_samples()
    writer = WRITERS.get(name)(tmp_path, INFO)
    assert writer.name == name
    for s in samples[::-1]:
        writer.write(s)
    writer.finalize(records(samples))
    first = tree(tmp_path)
    assert sum(p.endswith(".png") for p in first) >= len(samples)
    assert not [p for p in first if p.endswith(".tmp")]
    again = WRITERS.get(name)(tmp_path, INFO)
    for s in samples:
        again.write(s)
    again.finalize(records(samples))
    assert tree(tmp_path) == first


def test_concurrent_processes_give_the_same_dataset_as_one(tmp_path):
    names = tuple(WRITERS.names())
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    write_shard(serial, names, [0, 1, 2, 3, 4])
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=3, mp_context=context) as pool:
        futures = [
            pool.submit(write_shard, parallel, names, shard) for shard in ([4, 1], [0, 3], [2])
        ]
        for f in futures:
            f.result()
    for root in (serial, parallel):
        manifest = ManifestWriter(root, INFO)
        assert manifest.done_indices() == {0, 1, 2, 3, 4}
        recs = manifest.records()
        for name in names:
            WRITERS.get(name)(root, INFO).finalize(recs)
        manifest.finalize(recs)
    a, b = tree(serial), tree(parallel)
    assert set(a) == set(b)
    differ = [p for p in a if a[p] != b[p]]
    assert differ == []
    assert len(make_samples()) == 5


def test_importing_the_writers_pulls_in_no_heavy_module():
    code = (
        "import sys, synthgen.writers, synthgen.writers.manifest, synthgen.labels\n"
        "print(','.join(m for m in ('cv2', 'pycocotools', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
