"""Running an experiment of section 4: every run of its grid as one task, on local processes or
a Dask cluster, under one driver per grid folder.

An experiment is a list of cells (a model row x a noise column), each trained once per seed
(:mod:`npdvae.experiments.grids`); every run has its own run directory under ``OUT/runs/``,
so a grid is resumable: a run with an ``eval.json`` is done and skipped, one with a
checkpoint is resumed, the rest start fresh (:mod:`npdvae.experiments.task`). The tables are
written from the results (:mod:`npdvae.experiments.tables`).

Per run we report, on the clean test set and for the run's best checkpoint by validation
bound (model selection on the validation set, as the paper does for its hyper-parameters):

* the bound the paper reports: the model's own training estimator (eq. 11 with its K for
  DVAE rows, eq. 12 with its K for DIWAE rows), negated for the MNIST tables as the paper
  does;
* the importance-sampled log-likelihood with ``is_samples`` samples, which the paper does
  not report.
"""

from __future__ import annotations

import errno
from contextlib import contextmanager
from pathlib import Path

from npdvae.run_folder.run_files import RunLock, RunWriteError
from npdvae.experiments.executor import TOKEN_NAME, TaskSettings, local_executor, submit_grid, write_token
from npdvae.run_folder.runs import RunDirectoryError
from npdvae.experiments.grids import check_existing_runs
from npdvae.experiments.task import run_one


def run_grid(specs, jobs=1, data_dir=None, is_samples=5000, is_examples=None, on_done=None,
             scheduler=None, threads_per_task=1) -> list[dict]:
    """Run every spec as one task of an Executor (npdvae/experiments/executor.py): ``jobs`` local processes,
    or the Dask cluster whose scheduler is at ``scheduler``, ``threads_per_task`` BLAS
    threads each. The grid's folder (OUT, above ``runs/``) is created only once the
    Executor is there, so an unreachable scheduler leaves nothing behind."""
    if not specs:
        return []
    out = Path(specs[0].run_dir).parent.parent
    check_existing_runs(specs)
    return _run_grid(specs, out, jobs, data_dir, is_samples, is_examples, on_done, scheduler, threads_per_task)


def _run_grid(specs, out, jobs, data_dir, is_samples, is_examples, on_done, scheduler, threads_per_task):
    common = dict(out=str(out), data_dir=str(data_dir) if data_dir else None, is_samples=is_samples,
                  is_examples=is_examples)
    if scheduler:
        from npdvae.run_folder.checkpoint import CheckpointError
        from npdvae.experiments.cluster import dask_executor, describe_task_failure
        from npdvae.data import DataError
        from npdvae.experiments.executor import GridStopped, SharedStorageError
        from npdvae.run_folder.run_files import RunLockedError, RunWriteError
        ours = (GridStopped, SharedStorageError, RunDirectoryError, CheckpointError, DataError, RunLockedError,
                RunWriteError, KeyboardInterrupt)
        with dask_executor(scheduler) as (executor, stop_event, request_stop), _driver_lock(out):
            settings = TaskSettings(token=write_token(out), threads=threads_per_task, stop_event=stop_event,
                                    **common)
            try:
                return submit_grid(executor, run_one, specs, settings, on_done, request_stop)
            except ours:
                raise
            except Exception as err:   # the cluster's own failures: environment, connection
                raise describe_task_failure(err, scheduler) from err
    with _driver_lock(out), local_executor(jobs, threads_per_task) as (executor, request_stop):
        return submit_grid(executor, run_one, specs, TaskSettings(token=write_token(out), **common), on_done,
                           request_stop)


GRID_LOCK_NAME = ".npdvae-grid-lock"


@contextmanager
def _driver_lock(out: Path):
    """One driver per grid folder: a second ``reproduce`` on the same --out is refused at once,
    told the holder's pid, before it writes the token the first one's tasks check. The token
    is the holder's: it is removed when the holder's grid ends (leaving only the runs), and a
    refused driver never touches it."""
    if out.exists() and not out.is_dir():
        raise RunWriteError(out, OSError(errno.ENOTDIR, "it is not a folder; --out names the grid's folder"))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunWriteError(out, err) from None
    lock = RunLock(out, GRID_LOCK_NAME, holder="another `npdvae reproduce` driving its grid").acquire()
    try:
        yield lock
    finally:
        (out / TOKEN_NAME).unlink(missing_ok=True)
        lock.release()


