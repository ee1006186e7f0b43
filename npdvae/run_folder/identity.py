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

Runs created before identities existed have none (``None``); their files carry none, and
they are checked by configuration alone, as they always were.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from pathlib import Path

from npdvae.training.config import RESUMABLE_CHANGES

RUN_ID_KEY = "run_id"
_PATTERN = re.compile(r"[0-9a-f]{16}-[0-9a-f]{12}")


def settings_digest(config: dict) -> str:
    """12 hex digits of the SHA-256 of the settings a resume must keep, as canonical JSON."""
    fixed = {name: value for name, value in config.items() if name not in RESUMABLE_CHANGES}
    return hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()[:12]


def new_run_id(config: dict) -> str:
    """A fresh identity for a run of ``config`` (a TrainConfig's dict)."""
    return f"{secrets.token_hex(8)}-{settings_digest(config)}"


def is_run_id(value) -> bool:
    return isinstance(value, str) and _PATTERN.fullmatch(value) is not None


# what recorded_run_id returns when config.json cannot say: nothing can be held to it then
UNKNOWN = object()


def recorded_run_id(run_dir):
    """The identity a run folder's ``config.json`` records (None for a run from before
    identities), or UNKNOWN when the file is missing or unreadable."""
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
