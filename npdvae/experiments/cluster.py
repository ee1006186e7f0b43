"""A Dask cluster as the Executor of a grid: the optional ``cluster`` extra.

Dask's distributed scheduler is the engine: ``dask scheduler`` and ``dask
worker`` processes started by hand, by dask-jobqueue on SLURM or PBS, or by a
cloud deployment; anything that gives a scheduler address. We only connect,
take the ``concurrent.futures.Executor`` the Client hands out, and give the
grid a Dask ``Event`` through which the driver asks running tasks to stop.
A worker that dies has its task run again elsewhere by Dask itself.

Before the Client is made, the address is checked (:func:`scheduler_address_problem`)
and the scheduler is asked who it is, with a deadline (:func:`probe_scheduler`): a
Client would otherwise wait without end on a listener that is not a Dask scheduler,
and one that fails to connect stalls the process on its way out.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from contextlib import contextmanager


class ClusterError(RuntimeError):
    """The cluster cannot be used: the extra is missing or the scheduler cannot be reached."""


def scheduler_address_problem(address: str) -> str | None:
    """Why ``address`` is not a scheduler address Dask can connect to; None when it is
    (or when the cluster extra is missing, which dask_executor says)."""
    try:
        from distributed.comm.addressing import parse_address, parse_host_port
        from distributed.comm.registry import backends
    except ImportError:
        return None
    try:
        scheme, location = parse_address(address)
        if scheme not in backends:
            return f"unknown scheme {scheme!r} (known: {', '.join(sorted(backends))})"
        host, port = parse_host_port(location)
    except ValueError as err:
        return str(err)
    if not host:
        return f"no host name in {address!r}"
    if any(c.isspace() for c in host):
        return f"{host!r} is not a host name"
    return None


async def _identity(address: str, timeout: float) -> dict:
    from distributed.comm import connect

    # connect's own timeout covers reaching the port (and says so); the outer one, longer, its
    # handshake, which a listener that is not Dask never answers
    comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout + 5)
    try:
        await asyncio.wait_for(comm.write({"op": "identity"}), timeout)
        return await asyncio.wait_for(comm.read(), timeout)
    finally:
        comm.abort()


def probe_scheduler(address: str, timeout: float = 10.0):
    """Ask whatever listens at ``address`` who it is, within ``timeout`` seconds; ClusterError
    unless a Dask scheduler answers."""
    problem = scheduler_address_problem(address)
    if problem:
        raise ClusterError(f"--scheduler {address}: {problem}")
    try:
        identity = asyncio.run(_identity(address, timeout))
    except (TimeoutError, asyncio.TimeoutError):
        raise ClusterError(f"no Dask scheduler answered at {address} within {timeout + 5:g} s: is the address "
                           "a Dask scheduler's (dask scheduler prints it), and is it running?") from None
    except (OSError, ValueError) as err:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({err})") from None
    kind = identity.get("type") if isinstance(identity, dict) else None
    if kind != "Scheduler":
        raise ClusterError(f"{address} answered as {kind or 'something that is not Dask'}, not as a Dask scheduler")


def scheduler_went_away(address: str) -> bool:
    """True when no Dask scheduler answers at ``address`` any more."""
    try:
        probe_scheduler(address, timeout=5.0)
    except ClusterError:
        return True
    return False


@contextmanager
def dask_executor(address: str, connect_timeout: float = 10.0):
    """Yield (executor, stop event name, request_stop) for the scheduler at ``address``."""
    try:
        from distributed import Client, Event
    except ImportError:
        raise ClusterError("--scheduler needs Dask's distributed scheduler: pip install -e '.[cluster]'") from None
    # the client logs a failed task with its traceback; the error reaches the caller anyway,
    # who reports it in one line (the worker's and scheduler's own logs keep the details)
    probe_scheduler(address, connect_timeout)
    # Dask's own logging config gives some of its loggers levels of their own: quiet each one
    names = ["distributed"] + [name for name in logging.root.manager.loggerDict if name.startswith("distributed.")]
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL)
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
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def describe_task_failure(error: BaseException, address: str) -> ClusterError:
    """A task that failed on the cluster for a reason of the cluster's (a worker or scheduler
    that cannot import npdvae, a lost connection), said in one line."""
    if scheduler_went_away(address):
        return ClusterError(f"the Dask scheduler at {address} went away; every run keeps its last checkpoint: "
                            "start the scheduler and workers again and rerun the same command to resume")
    first_line = (str(error).strip().splitlines() or [""])[0]
    return ClusterError(f"the Dask cluster at {address} could not run a task ({type(error).__name__}: "
                        f"{first_line}); the scheduler's and workers' logs have the details, and every "
                        "worker needs the same npdvae installed")
