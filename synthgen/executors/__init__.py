"""Executors: which process makes which sample of a dataset job.

- `local`: worker processes on this machine (a fork server's ProcessPoolExecutor).
- `ray`: Ray actors on a cluster (imports ray; `pip install "synthgen[distributed]"`).

Both call `JobRunner.produce(index)` in processes that each hold one JobRunner (and so one
renderer context), and report `progress(done, total)` in the calling process; the files a
sample gets depend on (recipe, seed, index) alone, so the executor never changes the output.
"""
