"""Worker processes on this machine: a ProcessPoolExecutor started from a fork server.

Each worker builds one JobRunner (its own renderer and OpenGL context) in its initialiser,
with `LP_NUM_THREADS` (Mesa llvmpipe's rasteriser threads) set before the context exists, so
that K workers on C cores use about C threads rather than K * C.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from synthgen.errors import SynthgenError
from synthgen.storage import Location, RemotePath

if TYPE_CHECKING:
    from synthgen.generate import JobRunner
    from synthgen.job import Job

log = logging.getLogger(__name__)

_RUNNER: JobRunner | None = None


def rasteriser_threads(workers: int, cpus: int | None = None) -> int:
    """Rasteriser threads per worker: the CPUs shared out between the workers (at least 1)."""
    return max(1, (cpus or os.cpu_count() or 1) // max(1, workers))


def location_arg(out: Location) -> str:
    """`out` as a string another process can resolve (absolute local path, or the URL)."""
    return str(out) if isinstance(out, RemotePath) else str(out.resolve())


_MATH_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_LIMITS: Any = None  # the worker's threadpoolctl limits, held for the worker's lifetime


def limit_math_threads(threads: int) -> None:
    """Cap this process's BLAS / OpenMP pools (numpy, scipy, torch) at `threads`.

    K workers that each keep the default pool (one thread per CPU) oversubscribe the CPUs:
    on 2 cores two workers made 23.7 samples/s with default pools and 26.9 with one thread
    each. A pool size the user set through OMP_NUM_THREADS and the like is kept.
    """
    global _LIMITS
    if any(name in os.environ for name in _MATH_THREAD_VARS):
        return
    from threadpoolctl import threadpool_limits

    _LIMITS = threadpool_limits(limits=threads)


def _init_worker(recipe: dict[str, Any], out: str, threads: int) -> None:
    global _RUNNER
    os.environ.setdefault("LP_NUM_THREADS", str(threads))  # before any GL context exists
    limit_math_threads(threads)
    from synthgen.generate import JobRunner
    from synthgen.job import parse_recipe

    _RUNNER = JobRunner(parse_recipe(recipe), out)


def _worker_context(augments: bool = False) -> multiprocessing.context.BaseContext:
    """Workers start from a fork server that has already imported synthgen (about 1 s saved
    per worker) and never holds an OpenGL context, so each worker makes a fresh one; where
    fork servers do not exist (Windows, macOS defaults), plain spawn.

    Args:
        augments: the job augments its images: the fork server also imports albumentations
            (2-3 s of CPU that every worker would otherwise spend on its own). The fork
            server is started once per process, so the first job decides.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        preload = ["synthgen.generate", "synthgen.executors.local", "synthgen.render"]
        context.set_forkserver_preload(preload + (["albumentations"] if augments else []))
        return context
    return multiprocessing.get_context("spawn")


def _produce(index: int) -> int:
    assert _RUNNER is not None, "worker not initialised"
    return _RUNNER.produce(index)


def run(job: Job, out: Location, todo: Sequence[int], *, workers: int,
        progress: Callable[[int, int], None] | None = None) -> None:
    """Make and write samples `todo` with `workers` worker processes.

    Args:
        job: the validated job.
        out: the output folder or RemotePath (prepared by `generate.prepare_output`).
        todo: sample indices to make.
        workers: worker processes (>= 2; each holds a renderer).
        progress: called as progress(done, len(todo)) after each sample.

    Raises:
        SynthgenError: a worker process died (what was written is kept).
        Exception: the first error a worker raised.
    """
    initargs = (job.to_dict(), location_arg(out), rasteriser_threads(workers))
    augments = job.augment.preset != "none" or job.augment.geometric
    context = _worker_context(augments)
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
