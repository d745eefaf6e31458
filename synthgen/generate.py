"""Run a dataset job: samples → augmentation → writers, with worker processes or a Ray
cluster, shards and resume, into a local folder or an fsspec URL.

    report = generate(job, "out/bottles", workers=2)
    report = generate(job, "s3://bucket/bottles", executor="ray", address="head:6379")

Every sample depends on (recipe, seed, index) alone, so the output does not depend on the
number of workers, on the shard a sample was made in, or on interruptions: a sample is done
when its manifest part is written (after all its files), `resume=True` makes only the
missing ones, and `finalize` rebuilds the dataset-level files from what is on disk. The
executors (`synthgen.executors.local`, `synthgen.executors.ray`) only decide which process
makes which index; the files are the same.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from synthgen.augment import augment
from synthgen.contact_sheet import annotate, contact_sheet
from synthgen.errors import ConfigError
from synthgen.job import Job, build_variants, load_arrange, make_job_defect
from synthgen.pipeline import DefectChoice, make_sample, sample_streams
from synthgen.storage import Location, is_process_local, resolve
from synthgen.writers import WRITERS, DatasetInfo, Instance, LabelledSample
from synthgen.writers.atomic import write_json
from synthgen.writers.manifest import ManifestWriter

log = logging.getLogger(__name__)

JOB_FILE = Path(".parts") / "job.json"
"""Written first in the output folder: the recipe and its hash, checked on resume."""

EXECUTORS = ("local", "ray")
"""Where samples are made: worker processes on this machine, or a Ray cluster."""

FAULT_ENV = "SYNTHGEN_FAULT_EXIT_ONCE"
"""Testing aid for retries and resume: "<index>:<flag file>" makes the process writing sample
<index> exit abruptly (`os._exit`) after the sample's files and before its manifest part,
once: the flag file, created atomically just before the exit, disarms it."""

PACKAGES = ("synthgen", "numpy", "trimesh", "manifold3d", "pyrender", "PyOpenGL", "pydantic",
            "albumentations", "pycocotools", "opencv-python-headless")


@dataclass(frozen=True)
class GenerateReport:
    """What a `generate` call did.

    Attributes:
        out: the output folder (a Path, or a RemotePath for an fsspec URL).
        made: samples rendered by this call.
        skipped: samples of this shard already on disk (resume).
        done: samples of the whole job on disk now.
        total: samples in the whole job.
        seconds: wall time of the call.
    """

    out: Location
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
        out: output folder or fsspec URL, or None to make samples without writing them
            (previews).
    """

    def __init__(self, job: Job, out: Location | str | None):
        from synthgen.render import make_renderer

        self.job, self.out = job, None if out is None else resolve(out)
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
        self.translate = None
        if job.translate is not None:
            from synthgen.translate.apply import TranslateStage

            self.translate = TranslateStage.from_spec(job.translate)
        self._fault = _parse_fault(os.environ.get(FAULT_ENV, ""))

    def produce(self, index: int) -> int:
        """Make sample `index`, write it in every format, then its manifest part."""
        labelled = self.make(index)
        for writer in self.writers:
            writer.write(labelled)
        if self._fault is not None and self._fault[0] == index:
            _exit_once(self._fault[1])
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
        defect_masks, rgb, record = render.defect_masks, render.rgb, sample.record()
        if self.translate is not None:
            rgb, painted = self.translate(rgb, streams["translate"])
            defect_masks = np.concatenate([defect_masks, (painted & render.object_mask)[None]])
            record["defects"].append({"type": "translated", "instance": len(defect_masks)})
            record["translate"] = self.translate.last_params
        n_defects = len(defect_masks)
        masks = np.concatenate([defect_masks, objects, render.object_mask[None]])
        rgb, masks, augment_params = augment(rgb, masks, job.augment, streams["augment"])
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


def _parse_fault(value: str) -> tuple[int, str] | None:
    """FAULT_ENV's "<index>:<flag file>" as (index, flag file); None when unset."""
    index, _, flag = value.partition(":")
    if not value:
        return None
    if not index.isdigit() or not flag:
        raise ConfigError(f"{FAULT_ENV}={value!r}: expected <sample index>:<flag file>")
    return int(index), flag


def _exit_once(flag: str) -> None:
    """Exit the process abruptly unless `flag` exists; create it first (atomically)."""
    try:
        os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    log.warning("%s: exiting on purpose (flag %s)", FAULT_ENV, flag)
    os._exit(70)


# -- the job -----------------------------------------------------------------------------


def shard_indices(total: int, shard: tuple[int, int]) -> list[int]:
    """Indices of shard (I, N): every index i with i % N == I."""
    part, parts = shard
    if not (parts >= 1 and 0 <= part < parts):
        raise ConfigError(f"shard {part}/{parts}: expected I/N with 0 <= I < N")
    return list(range(part, total, parts))


def prepare_output(job: Job, out: Location | str, resume: bool) -> set[int]:
    """Check the output folder against the job; returns the indices already done.

    Args:
        job: the validated job.
        out: output folder or fsspec URL.
        resume: whether samples of this job already in `out` may be continued.

    Raises:
        ConfigError: the folder holds another job, or this job's samples without resume,
            or unrelated files.
    """
    out = resolve(out)
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
    out: str | os.PathLike[str] | Location,
    *,
    workers: int | None = None,
    shard: tuple[int, int] = (0, 1),
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
    executor: str = "local",
    address: str | None = None,
) -> GenerateReport:
    """Make the job's samples of `shard` into `out`, then finalise the dataset files.

    Args:
        job: the validated job.
        out: output folder or fsspec URL (s3://, gs://, file://, memory://; created; must be
            empty or hold this same job).
        workers: local: worker processes (each with its own renderer; None or 1 runs in
            this process); ray: Ray actors (None: one per CPU of the cluster).
        shard: (I, N): make only the indices i with i % N == I.
        resume: continue a job already started in `out`.
        progress: called as progress(done_in_this_call, todo_in_this_call).
        executor: "local" (this machine) or "ray" (a Ray cluster).
        address: ray only: the cluster to connect to ("head:6379", "auto",
            "ray://head:10001"); None starts a local Ray instance (or uses RAY_ADDRESS).

    Raises:
        ConfigError: unknown executor, bad worker count, an output that worker processes
            cannot reach (memory://), or an output folder that does not fit the job.
        MissingDependency: ray or fsspec is needed but not installed.
    """
    start = time.perf_counter()
    out = resolve(out)
    _check_executor(executor, workers, address, out)
    done = prepare_output(job, out, resume)
    indices = shard_indices(job.samples, shard)
    todo = [i for i in indices if i not in done]
    if todo:
        _run(job, out, todo, workers, progress, executor, address)
    records = finalize(job, out)
    return GenerateReport(out, len(todo), len(indices) - len(todo), len(records), job.samples,
                          time.perf_counter() - start)


def _check_executor(executor: str, workers: int | None, address: str | None,
                    out: Location) -> None:
    if executor not in EXECUTORS:
        raise ConfigError(f"executor {executor!r} is not one of {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if address is not None and executor != "ray":
        raise ConfigError(f"--address {address} needs --executor ray")
    if is_process_local(out) and (executor == "ray" or (workers or 1) > 1):
        raise ConfigError(
            f"output {out} lives in this process's memory, which worker processes cannot "
            "reach; use --executor local --workers 1, or a shared folder or object store"
        )


def _run(job: Job, out: Location, todo: Sequence[int], workers: int | None,
         progress: Callable[[int, int], None] | None, executor: str,
         address: str | None) -> None:
    if executor == "ray":
        from synthgen.executors import ray as ray_executor

        ray_executor.run(job, out, todo, workers=workers, address=address, progress=progress)
        return
    if (workers or 1) <= 1:
        runner = JobRunner(job, out)
        try:
            for n, index in enumerate(todo, 1):
                runner.produce(index)
                if progress:
                    progress(n, len(todo))
        finally:
            runner.close()
        return
    from synthgen.executors import local

    local.run(job, out, todo, workers=workers, progress=progress)


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


def finalize(job: Job, out: str | os.PathLike[str] | Location) -> list[dict[str, Any]]:
    """Rebuild the dataset-level files (COCO JSON, YOLO data.yaml, manifests) from the
    samples on disk (or in the object store); returns their records in index order."""
    out = resolve(out)
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
