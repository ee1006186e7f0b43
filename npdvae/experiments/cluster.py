"""A Dask cluster as the Executor of a grid: the optional ``cluster`` extra.

Dask's distributed scheduler is the engine: ``dask scheduler`` and ``dask
worker`` processes started by hand, by dask-jobqueue on SLURM or PBS, or by a
cloud deployment; anything that gives a scheduler address. We only connect,
take the ``concurrent.futures.Executor`` the Client hands out, and give the
grid a Dask ``Event`` through which the driver asks running tasks to stop.
A worker that dies has its task run again elsewhere by Dask itself.
"""

from __future__ import annotations

import logging
import secrets
from contextlib import contextmanager


class ClusterError(RuntimeError):
    """The cluster cannot be used: the extra is missing or the scheduler cannot be reached."""


@contextmanager
def dask_executor(address: str, connect_timeout: float = 10.0):
    """Yield (executor, stop event name, request_stop) for the scheduler at ``address``."""
    try:
        from distributed import Client, Event
    except ImportError:
        raise ClusterError("--scheduler needs Dask's distributed scheduler: pip install -e '.[cluster]'") from None
    # the client logs a failed task with its traceback; the error reaches the caller anyway,
    # who reports it in one line (the worker's and scheduler's own logs keep the details)
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        try:
            client = Client(address, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            raise ClusterError(f"cannot reach the Dask scheduler at {address} ({err})") from None
        try:
            name = f"npdvae-stop-{secrets.token_hex(8)}"
            event = Event(name, client=client)
            # pure=False: a task is a side effect (a run folder), never to be merged with an equal-looking one
            yield client.get_executor(pure=False), name, event.set
        finally:
            client.close()
    finally:
        logger.setLevel(level)


def describe_task_failure(error: BaseException, address: str) -> ClusterError:
    """A task that failed on the cluster for a reason of the cluster's (a worker or scheduler
    that cannot import npdvae, a lost connection), said in one line."""
    first_line = (str(error).strip().splitlines() or [""])[0]
    return ClusterError(f"the Dask cluster at {address} could not run a task ({type(error).__name__}: "
                        f"{first_line}); the scheduler's and workers' logs have the details, and every "
                        "worker needs the same npdvae installed")
