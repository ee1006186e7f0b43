"""Where a result came from: the code's version and commit, the numerical libraries, the date.

Recorded in a run's ``config.json`` (the code that created it), in every checkpoint (the code
that wrote it), in ``eval.json`` (the code that scored it), in model files and under every
table, so that a published number can be traced to the code and libraries that computed it.
"""

from __future__ import annotations

import datetime
import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path

import numpy as np

PACKAGE_ROOT = Path(__file__).resolve().parents[2]   # the checkout holding npdvae/


def npdvae_version() -> str:
    try:
        return importlib.metadata.version("npdvae")
    except importlib.metadata.PackageNotFoundError:   # imported from a checkout that was never installed
        return "unknown"


def git_commit(root: Path = PACKAGE_ROOT) -> dict | None:
    """{"commit": SHA, "dirty": bool} of the checkout the package is imported from, or None
    (an installed copy, or no git on the machine)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20,
                               check=True).stdout.strip()
    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root:
            return None   # the package sits inside some other repository
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "npdvae", "cli"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def blas_libraries() -> list[dict]:
    """The BLAS libraries NumPy calls, with their version and thread count where threadpoolctl
    (the ``cluster`` extra) is installed; else NumPy's own build record of them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:   # NumPy is imported, so its BLAS is loaded and seen
        found = [{key: info.get(key) for key in ("internal_api", "version", "num_threads", "threading_layer")}
                 for info in threadpool_info() if info.get("user_api") == "blas"]
        if found:
            return found
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return [{"internal_api": blas.get("name"), "version": blas.get("version"), "num_threads": None,
                 "threading_layer": None}]
    except (TypeError, KeyError):
        return []


@functools.lru_cache(maxsize=None)
def _this_process() -> tuple:
    """What stays the same for the life of a process (the git call runs once)."""
    versions = {}
    for name in ("numpy", "numba", "scipy", "h5py"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return (("npdvae", npdvae_version()), ("git", git_commit()), ("libraries", versions),
            ("python", platform.python_version()), ("platform", platform.platform()), ("host", platform.node()))


def provenance() -> dict:
    """The record itself: versions, commit, BLAS and its threads, Python, platform, host and the UTC date."""
    record = {key: (dict(value) if isinstance(value, dict) else value) for key, value in _this_process()}
    record["blas"] = blas_libraries()   # its threads may be limited for a task, so asked each time
    record["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return record


def describe(record: dict | None) -> str:
    """One line: "npdvae 0.1.0, git 0123456789ab (with local changes)"."""
    if not isinstance(record, dict):
        return "an npdvae that recorded no provenance"
    git = record.get("git")
    commit = f", git {git['commit'][:12]}{' (with local changes)' if git.get('dirty') else ''}" \
        if isinstance(git, dict) and git.get("commit") else ""
    return f"npdvae {record.get('npdvae', 'unknown')}{commit}"
