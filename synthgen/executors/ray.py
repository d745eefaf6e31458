"""Ray actors on a cluster: sample indices in small chunks, retried when a worker dies.

    run(job, out, todo, workers=None, address="head:6379", progress=callback)

One actor per worker (one CPU each) holds a JobRunner, so each has its own renderer context
(EGL for pyrender, bpy for Blender) built once. The driver hands every actor a couple of
chunks at a time (a few indices each) and reports `progress(done, total)` as chunks come
back. An actor whose process dies is restarted and its unfinished chunks are re-run
(`max_restarts`, `max_task_retries`): a sample is written file by file, atomically, with its
manifest part last, so a re-run rewrites identical bytes and the merged manifest (built by
`generate.finalize` from the parts, as for local runs) has neither duplicates nor holes.

The output must be reachable from every node: an object store URL (s3://, gs://) or a shared
folder. Workers get `LP_NUM_THREADS` (one rasteriser thread per actor CPU) and the driver's
`PYOPENGL_PLATFORM`, `SYNTHGEN_FSYNC` and `SYNTHGEN_FAULT_EXIT_ONCE` through the actors'
runtime environment; credentials for object stores come from each node's own environment.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from synthgen.errors import MissingDependency, SynthgenError
from synthgen.executors.local import location_arg
from synthgen.storage import Location

if TYPE_CHECKING:
    from synthgen.job import Job

log = logging.getLogger(__name__)

FORWARDED_ENV = ("PYOPENGL_PLATFORM", "SYNTHGEN_FSYNC", "SYNTHGEN_FAULT_EXIT_ONCE",
                 "LP_NUM_THREADS", "EGL_DEVICE_ID")
"""Driver environment variables passed on to the actors (when set)."""

MAX_RETRIES = 3
"""Restarts of a dead actor, and re-runs of the chunk it was running."""

IN_FLIGHT = 2
"""Chunks queued per actor, so that an actor never waits for the driver."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependency("the Ray executor", "distributed", "ray") from exc
    return ray


class SampleActor:
    """The body of a Ray actor: one JobRunner, and so one renderer, per actor process.

    Args:
        recipe: the job as `Job.to_dict()`.
        out: absolute output folder or fsspec URL.
    """

    def __init__(self, recipe: dict[str, Any], out: str) -> None:
        from synthgen.generate import JobRunner
        from synthgen.job import parse_recipe

        self.runner = JobRunner(parse_recipe(recipe), out)

    def produce(self, indices: list[int]) -> list[int]:
        """Make and write the samples `indices`; returns them."""
        for index in indices:
            self.runner.produce(index)
        return indices

    def pid(self) -> int:
        return os.getpid()


def chunk_size(todo: int, actors: int) -> int:
    """Indices per chunk: about four chunks per actor, 1 to 8 indices each."""
    return max(1, min(8, todo // (4 * max(1, actors))))


def actor_env(threads: int = 1) -> dict[str, str]:
    """Environment of the actors: one rasteriser thread each unless LP_NUM_THREADS is set,
    plus the FORWARDED_ENV variables the driver has."""
    env = {"LP_NUM_THREADS": str(threads)}
    env.update({k: os.environ[k] for k in FORWARDED_ENV if k in os.environ})
    return env


def _connect(ray: Any, address: str | None) -> bool:
    """Connect to the cluster (or start a local one); True when this call started Ray."""
    if ray.is_initialized():
        return False
    try:
        if address is None and "RAY_ADDRESS" not in os.environ:
            ray.init(include_dashboard=False)
        else:
            ray.init(address=address)
    except ConnectionError as exc:
        raise SynthgenError(
            f"cannot reach the Ray cluster at {address or os.environ.get('RAY_ADDRESS')}: "
            f"{exc}; start one with `ray start --head` or leave out --address"
        ) from exc
    return True


def run(job: Job, out: Location, todo: Sequence[int], *, workers: int | None = None,
        address: str | None = None,
        progress: Callable[[int, int], None] | None = None) -> None:
    """Make and write samples `todo` on a Ray cluster.

    Args:
        job: the validated job.
        out: the output folder or RemotePath (prepared by `generate.prepare_output`);
            it must be reachable from every node.
        todo: sample indices to make.
        workers: actors (one CPU each); None: one per CPU of the cluster. At most the CPUs
            the cluster has when the job starts (an actor without a CPU would hold its
            chunks forever), so give an autoscaling cluster its size as minimum replicas.
        address: the cluster ("head:6379", "auto", "ray://head:10001"); None starts a local
            Ray instance unless RAY_ADDRESS is set. A Ray already initialised in this process
            is used as it is.
        progress: called as progress(done, len(todo)) as chunks complete.

    Raises:
        MissingDependency: ray is not installed.
        SynthgenError: the cluster cannot be reached, or a chunk failed after its retries
            (what was written is kept: run again with --resume).
        Exception: the first error a worker raised (a SynthgenError as it is).
    """
    ray = _ray()
    started = _connect(ray, address)
    actors: list[Any] = []
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        count = max(1, min(workers or cpus, cpus, len(todo)))
        if workers and workers > count and workers > cpus:
            log.warning("the Ray cluster has %d CPUs: using %d workers, not %d", cpus, count,
                        workers)
        remote = ray.remote(num_cpus=1, max_restarts=MAX_RETRIES,
                            max_task_retries=MAX_RETRIES)(SampleActor)
        options = {"runtime_env": {"env_vars": actor_env()}}
        recipe, target = job.to_dict(), location_arg(out)
        actors = [remote.options(**options).remote(recipe, target) for _ in range(count)]
        size = chunk_size(len(todo), count)
        chunks = [list(todo[i : i + size]) for i in range(0, len(todo), size)]
        log.info("ray: %d samples in %d chunks on %d actors", len(todo), len(chunks), count)
        _schedule(ray, actors, chunks, len(todo), progress)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()


def _schedule(ray: Any, actors: list[Any], chunks: list[list[int]], total: int,
              progress: Callable[[int, int], None] | None) -> None:
    """Keep IN_FLIGHT chunks queued on every actor until all chunks are done."""
    queue = iter(chunks)
    pending: dict[Any, tuple[Any, list[int]]] = {}

    def submit(actor: Any) -> None:
        chunk = next(queue, None)
        if chunk is not None:
            pending[actor.produce.remote(chunk)] = (actor, chunk)

    for _ in range(IN_FLIGHT):
        for actor in actors:
            submit(actor)
    done = 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        actor, chunk = pending.pop(ready[0])
        _result(ray, ready[0], chunk)
        done += len(chunk)
        if progress:
            progress(done, total)
        submit(actor)


def _result(ray: Any, ref: Any, chunk: list[int]) -> None:
    """Wait for one chunk; a worker's error is raised once, in terms the user can act on."""
    try:
        ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, SynthgenError):
            raise cause from None
        raise SynthgenError(
            f"samples {chunk} failed on a Ray worker: {cause!r}; what was written is kept"
        ) from cause
    except ray.exceptions.RayActorError as error:
        if getattr(error, "actor_init_failed", False):
            lines = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()
            raise SynthgenError(
                f"a Ray worker could not start ({lines[-1] if lines else error!r}); check that "
                "every node has synthgen and its renderer installed"
            ) from None
        raise SynthgenError(
            f"a Ray worker died while making samples {chunk} and stayed dead after "
            f"{MAX_RETRIES} restarts ({type(error).__name__}: {str(error).splitlines()[0]}); "
            "what was written is kept: run again with --resume"
        ) from None
