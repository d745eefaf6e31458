"""Run a dataset job: samples → augmentation → writers, with worker processes, shards and
resume.

    report = generate(job, "out/bottles", workers=2)

Every sample depends on (recipe, seed, index) alone, so the output does not depend on the
number of workers, on the shard a sample was made in, or on interruptions: a sample is done
when its manifest part is written (after all its files), `resume=True` makes only the
missing ones, and `finalize` rebuilds the dataset-level files from what is on disk.
"""

from __future__ import annotations

import importlib.metadata
import logging
import multiprocessing
import os
import platform
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from synthgen.augment import augment
from synthgen.contact_sheet import annotate, contact_sheet
from synthgen.errors import ConfigError, SynthgenError
from synthgen.job import Job, build_variants, load_arrange, make_job_defect
from synthgen.pipeline import DefectChoice, make_sample, sample_streams
from synthgen.writers import WRITERS, DatasetInfo, Instance, LabelledSample
from synthgen.writers.atomic import write_json
from synthgen.writers.manifest import ManifestWriter

log = logging.getLogger(__name__)

JOB_FILE = Path(".parts") / "job.json"
"""Written first in the output folder: the recipe and its hash, checked on resume."""

PACKAGES = ("synthgen", "numpy", "trimesh", "manifold3d", "pyrender", "PyOpenGL", "pydantic",
            "albumentations", "pycocotools", "opencv-python-headless")


@dataclass(frozen=True)
class GenerateReport:
    """What a `generate` call did.

    Attributes:
        out: the output folder.
        made: samples rendered by this call.
        skipped: samples of this shard already on disk (resume).
        done: samples of the whole job on disk now.
        total: samples in the whole job.
        seconds: wall time of the call.
    """

    out: Path
    made: int
    skipped: int
    done: int
    total: int
    seconds: float

    @property
    def complete(self) -> bool:
        return self.done == self.total


class JobRunner:
    """Makes and writes samples of one job; one per process (it holds a renderer).

    Args:
        job: the validated job.
        out: output folder, or None to make samples without writing them (previews).
    """

    def __init__(self, job: Job, out: Path | None):
        from synthgen.render import make_renderer

        self.job, self.out = job, None if out is None else Path(out)
        self.nominals = build_variants(job)
        self.choices = [
            DefectChoice(make_job_defect(job.product.type, entry), entry.probability,
                         (int(entry.count[0]), int(entry.count[1])))
            for entry in job.defects
        ]
        width, height = job.render.width_height
        self.arrange = load_arrange(job)
        self.info = DatasetInfo(job.name, job.defect_types, width, height,
                                job.product.type if self.arrange is not None else None)
        self.writers = [] if out is None else [
            WRITERS.get(name)(self.out, self.info) for name in job.output.formats
        ]
        self.manifest = None if out is None else ManifestWriter(self.out)
        self.renderer = make_renderer(job.render.renderer, **job.render.renderer_options())

    def produce(self, index: int) -> int:
        """Make sample `index`, write it in every format, then its manifest part."""
        labelled = self.make(index)
        for writer in self.writers:
            writer.write(labelled)
        if self.manifest is not None:
            self.manifest.write(labelled)  # last: marks the sample done
        return index

    def make(self, index: int) -> LabelledSample:
        """Sample `index` rendered, augmented, split and labelled (nothing written)."""
        job = self.job
        sample = make_sample(
            self.nominals, self.choices, job.scene, self.renderer, job.seed, index,
            self.info_size, good_fraction=job.good_fraction, placement=job.placement,
            arrange=self.arrange,
        )
        streams = sample_streams(job.seed, index)
        # Defect masks, then (several objects) each object's mask, then the object mask.
        render = sample.render
        objects = render.object_masks[: 0 if self.arrange is None else None]
        n_defects = len(render.defect_masks)
        masks = np.concatenate([render.defect_masks, objects, render.object_mask[None]])
        rgb, masks, augment_params = augment(sample.render.rgb, masks, job.augment,
                                             streams["augment"])
        record = sample.record()
        instances = []
        for i, entry in enumerate(record["defects"]):
            visible = bool(masks[i].any())
            entry.update(visible=visible, mask_area_px=int(masks[i].sum()))
            instances.append(Instance(entry["type"], entry["instance"], masks[i], visible))
        good = not any(i.visible for i in instances)
        test = not good or streams["split"].uniform() < job.output.good_test_fraction
        split = "test" if test else "train"
        record.update(split=split, is_good=good, augment=augment_params, stem=f"{index:06d}")
        object_masks = tuple(masks[n_defects:-1])
        return LabelledSample(index, rgb, masks[-1], tuple(instances), split, record,
                              object_masks)

    @property
    def info_size(self) -> tuple[int, int]:
        return (self.info.width, self.info.height)

    def close(self) -> None:
        self.renderer.close()


# -- worker processes --------------------------------------------------------------------

_RUNNER: JobRunner | None = None


def _init_worker(recipe: dict[str, Any], out: str, rasteriser_threads: int) -> None:
    global _RUNNER
    os.environ.setdefault("LP_NUM_THREADS", str(rasteriser_threads))
    from synthgen.job import parse_recipe

    _RUNNER = JobRunner(parse_recipe(recipe), Path(out))


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers start from a fork server that has already imported synthgen (about 1 s saved
    per worker) and never holds an OpenGL context, so each worker makes a fresh one; where
    fork servers do not exist (Windows, macOS defaults), plain spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["synthgen.generate", "synthgen.render"])
        return context
    return multiprocessing.get_context("spawn")


def _produce(index: int) -> int:
    assert _RUNNER is not None, "worker not initialised"
    return _RUNNER.produce(index)


# -- the job -----------------------------------------------------------------------------


def shard_indices(total: int, shard: tuple[int, int]) -> list[int]:
    """Indices of shard (I, N): every index i with i % N == I."""
    part, parts = shard
    if not (parts >= 1 and 0 <= part < parts):
        raise ConfigError(f"shard {part}/{parts}: expected I/N with 0 <= I < N")
    return list(range(part, total, parts))


def prepare_output(job: Job, out: Path, resume: bool) -> set[int]:
    """Check the output folder against the job; returns the indices already done.

    Raises:
        ConfigError: the folder holds another job, or this job's samples without resume,
            or unrelated files.
    """
    out = Path(out)
    job_file = out / JOB_FILE
    if job_file.exists():
        import json

        try:
            stored = json.loads(job_file.read_text())
        except (OSError, ValueError):
            stored = {}
        if stored.get("hash") != job.hash:
            raise ConfigError(
                f"{out} holds samples of a different recipe (hash {stored.get('hash')}, this "
                f"one is {job.hash}); use another output folder"
            )
        done = ManifestWriter(out).done_indices()
        if done and not resume:
            raise ConfigError(
                f"{out} already holds {len(done)} samples of this job; pass --resume to "
                "continue it, or choose an empty output folder"
            )
        return done
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty and holds no synthgen job; choose another folder")
    write_json(job_file, {"hash": job.hash, "recipe": job.to_dict()})
    return set()


def generate(
    job: Job,
    out: str | Path,
    *,
    workers: int = 1,
    shard: tuple[int, int] = (0, 1),
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> GenerateReport:
    """Make the job's samples of `shard` into `out`, then finalise the dataset files.

    Args:
        job: the validated job.
        out: output folder (created; must be empty or hold this same job).
        workers: worker processes (each with its own renderer); 1 runs in this process.
        shard: (I, N): make only the indices i with i % N == I.
        resume: continue a job already started in `out`.
        progress: called as progress(done_in_this_call, todo_in_this_call).
    """
    start = time.perf_counter()
    out = Path(out)
    done = prepare_output(job, out, resume)
    indices = shard_indices(job.samples, shard)
    todo = [i for i in indices if i not in done]
    if todo:
        _run(job, out, todo, workers, progress)
    records = finalize(job, out)
    return GenerateReport(out, len(todo), len(indices) - len(todo), len(records), job.samples,
                          time.perf_counter() - start)


def _run(job: Job, out: Path, todo: Sequence[int], workers: int,
         progress: Callable[[int, int], None] | None) -> None:
    if workers <= 1:
        runner = JobRunner(job, out)
        try:
            for n, index in enumerate(todo, 1):
                runner.produce(index)
                if progress:
                    progress(n, len(todo))
        finally:
            runner.close()
        return
    context = _worker_context()
    threads = max(1, (os.cpu_count() or 1) // workers)
    initargs = (job.to_dict(), str(out), threads)
    with ProcessPoolExecutor(workers, context, _init_worker, initargs) as pool:
        pending = {pool.submit(_produce, index) for index in todo[: 4 * workers]}
        queue = iter(todo[4 * workers :])
        n = 0
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    future.result()  # a worker's error surfaces here, once
                    n += 1
                    if progress:
                        progress(n, len(todo))
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(pool.submit(_produce, nxt))
        except BrokenProcessPool as error:
            raise SynthgenError(
                f"a worker process died ({error}); what was written is kept: run again "
                "with --resume (or with --workers 1 to see the error)"
            ) from None
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def contact_sheet_of(job: Job, samples: int = 16, columns: int = 4) -> Image.Image:
    """The first `samples` samples of a job as a contact sheet, masks outlined."""
    runner = JobRunner(job, None)
    tiles, captions = [], []
    try:
        for index in range(min(samples, job.samples)):
            sample = runner.make(index)
            masks = np.array([i.mask for i in sample.instances], dtype=bool).reshape(
                -1, *sample.rgb.shape[:2]
            )
            types = [i.defect_type for i in sample.instances]
            tiles.append(annotate(sample.rgb, masks, types))
            shown = [i.defect_type if i.visible else f"{i.defect_type} (not visible)"
                     for i in sample.instances]
            captions.append(f"{index}: {', '.join(shown) or 'good'}")
    finally:
        runner.close()
    return contact_sheet(tiles, captions, columns)


def finalize(job: Job, out: str | Path) -> list[dict[str, Any]]:
    """Rebuild the dataset-level files (COCO JSON, YOLO data.yaml, manifests) from the
    samples on disk; returns their records in index order."""
    out = Path(out)
    manifest = ManifestWriter(out)
    records = manifest.records()
    width, height = job.render.width_height
    info = DatasetInfo(job.name, job.defect_types, width, height,
                       job.product.type if job.layout is not None else None)
    for name in job.output.formats:
        WRITERS.get(name)(out, info).finalize(records)
    manifest.finalize(records)
    write_json(out / "manifest.json", _summary(job, records))
    return records


def _summary(job: Job, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """manifest.json: the recipe, its hash, package versions and counts."""
    per_type: dict[str, int] = {}
    for record in records:
        for defect in record["defects"]:
            if defect["visible"]:
                per_type[defect["type"]] = per_type.get(defect["type"], 0) + 1
    return {
        "name": job.name,
        "recipe": job.to_dict(),
        "recipe_hash": job.hash,
        "samples": job.samples,
        "complete": len(records) == job.samples,
        "counts": {
            "samples": len(records),
            "good": sum(1 for r in records if r["is_good"]),
            "defective": sum(1 for r in records if not r["is_good"]),
            "train": sum(1 for r in records if r["split"] == "train"),
            "test": sum(1 for r in records if r["split"] == "test"),
            "visible_defects": dict(sorted(per_type.items())),
        },
        "formats": list(job.output.formats),
        "versions": {"python": platform.python_version(), **_versions()},
    }


def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found
