"""A run's identity: every file that carries a run's results says which run it belongs to.

A run gets its identity when it is created::

    run_id = "<16 random hex digits>-<12 hex digits of the SHA-256 of its fixed settings>"

The random part tells apart two runs of the same settings (a folder moved aside and its
run started again elsewhere, the same cell of two grids); the hash part ties the identity
to the configuration, so a file whose identity and configuration disagree was pieced
together by hand. The fixed settings are every setting a resume must keep (all but
``RESUMABLE_CHANGES``): asking a run for more epochs keeps its identity.

``config.json`` records the run's identity; its checkpoints, the header line of
``metrics.jsonl``, its ``eval.json`` and a model file exported from it all carry the same
string, and every read holds them to it (:func:`identity_problem`). A result file of
another run (copied in, or left from an earlier run) is named and refused, never used.
``config.json`` itself is held to its identity and to its checkpoints' (:func:`recorded_run_id`):
an edited or incomplete one, another run's copy, or a symbolic link, is not the run's record.

Runs created before identities existed have none (``None``); their files carry none, and
they are checked by configuration alone, as they always were.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from pathlib import Path

import h5py

from npdvae.training.config import LATER_SETTINGS, RESUMABLE_CHANGES, TrainConfig

RUN_ID_KEY = "run_id"
_PATTERN = re.compile(r"[0-9a-f]{16}-[0-9a-f]{12}")


def settings_digest(config: dict) -> str:
    """12 hex digits of the SHA-256 of the settings a resume must keep, as canonical JSON."""
    fixed = {name: value for name, value in config.items() if name not in RESUMABLE_CHANGES
             and not (name in LATER_SETTINGS and value == LATER_SETTINGS[name])}   # older runs keep their identity
    return hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()[:12]


def new_run_id(config: dict) -> str:
    """A fresh identity for a run of ``config`` (a TrainConfig's dict)."""
    return f"{secrets.token_hex(8)}-{settings_digest(config)}"


def is_run_id(value) -> bool:
    return isinstance(value, str) and _PATTERN.fullmatch(value) is not None


# what recorded_run_id returns when config.json cannot say: nothing can be held to it then
UNKNOWN = object()


def checkpoint_run_ids(run_dir) -> set:
    """The identities the run folder's checkpoints carry (None for one from before identities),
    read from their attributes alone; a file that cannot say is left out."""
    ids = set()
    for name in ("last.h5", "best.h5"):
        path = Path(run_dir) / name
        if path.is_symlink() or not path.is_file():
            continue
        try:
            with h5py.File(path, "r") as f:
                value = f.attrs.get(RUN_ID_KEY)
        except (OSError, ValueError):
            continue
        ids.add(value.decode(errors="replace") if isinstance(value, bytes) else value)
    return ids


def config_problem(run_dir) -> str | None:
    """Why the run folder's ``config.json`` is not its run's record, or None when it is (or when
    there is no such file to judge): a symbolic link; settings other than those its identity was
    made for (edited, or a setting deleted); or an identity (or none) other than the one the
    folder's checkpoints and its ``metrics.jsonl`` agree on (another run's file)."""
    path = Path(run_dir) / "config.json"
    if path.is_symlink():
        return f"{path} is a symbolic link, which is never followed"
    try:
        values = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None   # missing or unreadable: the readers say so themselves
    if not isinstance(values, dict):
        return None
    run_id = values.get(RUN_ID_KEY)
    if run_id is not None:
        try:
            settings = TrainConfig.from_dict(values).to_dict()
        except (TypeError, ValueError):
            return None   # not a configuration: the readers say so
        if not is_run_id(run_id) or run_id.split("-")[1] != settings_digest(settings):
            return f"{path} holds settings other than those its run identity {run_id} was made for (edited by hand?)"
    carried = checkpoint_run_ids(run_dir) - {None}
    # the checkpoints and metrics.jsonl agreeing on another identity outvote config.json; where
    # metrics.jsonl sides with config.json, it is the checkpoints that are another run's
    if len(carried) == 1 and run_id not in carried and _metrics_run_id(run_dir) in carried:
        (other,) = carried
        if run_id is None:
            return f"{path} records no run identity, while the run's checkpoints and metrics.jsonl carry {other}"
        return f"{path} is another run's ({run_id}; the checkpoints and metrics.jsonl here are {other}'s)"
    return None


def _metrics_run_id(run_dir):
    """The identity on the header line of the folder's ``metrics.jsonl`` (None when it has none)."""
    try:
        with open(Path(run_dir) / "metrics.jsonl") as f:
            header = json.loads(f.readline())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return header.get(RUN_ID_KEY) if isinstance(header, dict) and set(header) == {RUN_ID_KEY} else None


def recorded_run_id(run_dir):
    """The identity a run folder's ``config.json`` records (None for a run from before
    identities), or UNKNOWN when the file is missing or unreadable, or is not the run's record
    (:func:`config_problem`): the checkpoints are then held to their own configurations."""
    if config_problem(run_dir):
        return UNKNOWN
    try:
        values = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return UNKNOWN
    return values.get(RUN_ID_KEY) if isinstance(values, dict) else UNKNOWN


def identity_problem(file_id, file_config: dict | None, run_id: str | None) -> str | None:
    """Why a file carrying ``file_id`` (and, when it records one, ``file_config``) is not a
    file of the run ``run_id``; None when it is.

    Both None is a run from before identities, which its configuration alone checks."""
    if file_id is not None and not is_run_id(file_id):
        return f"its run identity {file_id!r} is malformed"
    if file_id != run_id:
        if file_id is None:
            return f"it carries no run identity (written by an older npdvae), and this run is {run_id}"
        if run_id is None:
            return f"it belongs to run {file_id}, and this run has no identity (created by an older npdvae)"
        return f"it belongs to another run ({file_id}; this run is {run_id})"
    if file_id is not None and file_config is not None and file_id.split("-")[1] != settings_digest(file_config):
        return f"its configuration is not the one its run identity {file_id} was made for"
    return None
