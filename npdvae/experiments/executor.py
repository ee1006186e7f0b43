"""Running a grid of runs on a ``concurrent.futures.Executor``.

One code path for every place a grid runs: each run is one task,
:func:`run_task`, submitted to an Executor. On this machine that is a pool of
``--jobs`` fresh processes; on a cluster it is the Executor a Dask ``Client``
hands out (``npdvae/experiments/cluster.py``). Either way a task has
``--threads-per-task`` BLAS threads (a multi-threaded BLAS may sum in another
order), so a run ends with the same bits whichever executor trained it, or
resumed it. No scheduling of our own is written.

A task is idempotent: it resumes its run from the last checkpoint, or only
reads ``eval.json`` when the run is done (``npdvae.experiments.task.run_one``), and the run
folder's lock keeps two tasks from training one run at once. So a task that
a cluster runs again, after the worker that had it died, continues where the
checkpoint left it, and the run ends bit-identical to one never interrupted.

Before a grid is submitted the driver writes a token file under ``--out``;
every task reads it first, so a worker that does not see the driver's files
fails the grid at once with the reason, instead of training into a folder
nobody will read.

Stopping: a task polls a stop flag at every minibatch (``Trainer.stop_requested``).
Locally the flag is raised by SIGINT/SIGTERM/SIGHUP in the pool process, or by the
driver through a shared event; on a cluster it is a Dask ``Event`` the driver sets. A stopped run writes its mid-epoch checkpoint, so rerunning the
grid resumes everything.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from concurrent.futures import wait as wait_for_futures
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from npdvae.run_folder.run_files import replace_file

TOKEN_NAME = ".npdvae-grid-token"
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


class SharedStorageError(RuntimeError):
    """A worker cannot see the files the driver wrote under --out."""


class GridStopped(RuntimeError):
    """The grid was stopped on request; the runs keep their checkpoints."""

    def __init__(self, finished: int, total: int):
        super().__init__(finished, total)   # args rebuild it when it crosses a process boundary
        self.finished, self.total = finished, total

    def __str__(self):
        return f"stopped with {self.finished} of {self.total} runs finished"


@dataclass(frozen=True)
class TaskSettings:
    """What every task of a grid shares (picklable: it travels to the workers)."""

    out: str
    token: str | None = None           # the content of OUT/TOKEN_NAME; None skips the check
    data_dir: str | None = None
    is_samples: int = 5000
    is_examples: int | None = None
    threads: int | None = None         # BLAS threads for the task (threadpoolctl); None leaves them
    stop_event: str | None = None      # the name of a Dask Event that asks the tasks to stop


# --------------------------------------------------------------------------
# The shared-storage token
# --------------------------------------------------------------------------


def write_token(out) -> str:
    token = secrets.token_hex(16)
    replace_file(Path(out) / TOKEN_NAME, token.encode())
    return token


def check_token(out, token: str):
    path = Path(out) / TOKEN_NAME
    try:
        seen = path.read_text().strip()
    except OSError as err:
        seen = f"unreadable ({err.strerror})"
    if seen != token:
        raise SharedStorageError(
            f"worker {socket.gethostname()} (pid {os.getpid()}) cannot read {path} as the driver wrote it "
            f"({'missing' if seen.startswith('unreadable') else 'another content'}): --out must be on "
            "storage shared by all workers (NFS, a cluster file system)")


# --------------------------------------------------------------------------
# Stop flags
# --------------------------------------------------------------------------

# raised by a signal in a pool process, or by the driver on KeyboardInterrupt
_LOCAL_STOP = threading.Event()
# in a pool process: the driver's stop event and pid (None elsewhere)
_POOL = {"stop": None, "driver": None, "busy": False}

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def _die_with_the_driver():
    """Ask Linux to send this process SIGTERM when its parent dies, so no pool process
    trains on as an orphan (elsewhere: nothing, and the parent check below still holds)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _pool_process_init(stop_event, driver_pid: int):
    """In each fresh pool process: SIGINT, SIGTERM and SIGHUP ask the running task to stop at
    its next minibatch (with a checkpoint) instead of killing it mid-kernel; so does the
    driver's stop event, and so does the driver's death."""
    _POOL.update(stop=stop_event, driver=driver_pid)
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_stop_signal)
    _die_with_the_driver()
    if os.getppid() != driver_pid:   # it died before the request above was in place
        _LOCAL_STOP.set()


def _on_stop_signal(signum, frame):
    """A pool process's handler: a running task stops at its next minibatch; an idle process
    whose driver is gone ends at once, since nobody will ever send it work (else it would wait
    on its pipe forever, holding the driver's output open)."""
    _LOCAL_STOP.set()
    if not _POOL["busy"] and os.getppid() != _POOL["driver"]:
        os._exit(128 + signum)


def _local_stop_requested() -> bool:
    return _LOCAL_STOP.is_set() or (_POOL["stop"] is not None and _POOL["stop"].is_set())


class _DaskStopFlag:
    """Callable: is the grid's Dask Event set? Asked at most once a second (each ask is a
    round trip to the scheduler)."""

    def __init__(self, name: str):
        from distributed import Event
        self.event, self.checked, self.value = Event(name), 0.0, False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.value and now - self.checked >= 1.0:
            self.checked, self.value = now, self.event.is_set()
        return self.value


@contextmanager
def _thread_limits(threads: int | None):
    """Pin BLAS (and OpenMP) to ``threads`` for the task. threadpoolctl changes them in a
    running process, which a Dask worker is; environment variables act only at start."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=threads):
        yield


# --------------------------------------------------------------------------
# The task and the driver
# --------------------------------------------------------------------------


def run_task(task: Callable, config: dict, run_dir: str, settings: TaskSettings) -> dict:
    """One run of a grid, on whatever worker the Executor chose: ``task(config, run_dir,
    data_dir, is_samples, is_examples, stop_requested=...)``, a module-level function (it
    travels to the worker by name); returns what it returns."""
    if settings.token is not None:
        check_token(settings.out, settings.token)
    stop = _DaskStopFlag(settings.stop_event) if settings.stop_event else _local_stop_requested
    _POOL["busy"] = True
    try:
        with _thread_limits(settings.threads):
            return task(config, run_dir, settings.data_dir, settings.is_samples, settings.is_examples,
                        stop_requested=stop)
    finally:
        _POOL["busy"] = False
        if _POOL["driver"] is not None and os.getppid() != _POOL["driver"]:
            os._exit(128 + signal.SIGTERM)   # the driver is gone: the run is saved, nobody waits for a result


@contextmanager
def local_executor(jobs: int, threads: int = 1):
    """(executor, request_stop): ``jobs`` fresh processes (one for ``jobs`` 1), each with
    ``threads`` BLAS threads, so that a run trains to the same bits whatever the number of
    jobs, and as on a Dask worker given the same ``--threads-per-task``;
    ``request_stop()`` asks every running task to stop at its next minibatch, whatever
    stopped the driver (a signal to it alone included)."""
    context = get_context("spawn")
    stop_event = context.Event()
    saved = {var: os.environ.get(var) for var in BLAS_VARIABLES}
    os.environ.update({var: str(threads) for var in BLAS_VARIABLES})   # read by the spawned processes at start
    try:
        with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context, initializer=_pool_process_init,
                                 initargs=(stop_event, os.getpid())) as pool:
            yield pool, stop_event.set
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def submit_grid(executor: Executor, task: Callable, specs, settings: TaskSettings, on_done: Callable | None = None,
                request_stop: Callable[[], None] | None = None) -> list[dict]:
    """Submit every spec (``spec.config``, ``spec.run_dir``) as one call of ``task`` (see
    run_task) and collect the results in the specs' order.

    ``on_done(spec, result)`` is called as each run finishes. The first failing
    task cancels the tasks not yet started and its error is raised. On
    KeyboardInterrupt the running tasks are asked to stop (``request_stop``)
    and waited for, the rest cancelled, and GridStopped is raised."""
    from npdvae.training.loop import TrainingInterrupted
    results = [None] * len(specs)
    futures = {executor.submit(run_task, task, spec.config, spec.run_dir, settings): index
               for index, spec in enumerate(specs)}
    finished = 0
    try:
        for future in as_completed(futures):
            index = futures[future]
            try:
                results[index] = future.result()
            except TrainingInterrupted:
                # a task saw the stop (a signal to its process group) before the driver did
                raise KeyboardInterrupt from None
            except BaseException:
                for other in futures:
                    other.cancel()
                raise
            finished += 1
            if on_done:
                on_done(specs[index], results[index])
    except KeyboardInterrupt:
        _LOCAL_STOP.set()
        if request_stop:
            request_stop()
        for future in futures:
            future.cancel()
        wait_for_futures([f for f in futures if not f.cancelled()], timeout=300)
        raise GridStopped(finished, len(specs)) from None
    finally:
        _LOCAL_STOP.clear()
    return results
