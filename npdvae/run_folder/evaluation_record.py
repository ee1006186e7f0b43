"""A run's ``eval.json``: its test figures, read only as the result of the run they belong to.

``npdvae reproduce`` writes it when a run is scored; ``npdvae export`` puts it in a model
file. It records the run's configuration, its identity (npdvae/run_folder/identity.py) and
the epoch of the checkpoint it scored. A file that cannot be read, or that is another
run's (another identity, another configuration, another checkpoint), is never used: the
reader is told why (:func:`evaluation_problem`) and scores the run again.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path

from npdvae.training.config import LATER_SETTINGS, TrainConfig
from npdvae.run_folder.identity import RUN_ID_KEY, identity_problem

EVALUATION_NAME = "eval.json"


def read_evaluation(path) -> tuple[dict | None, str | None]:
    """(the evaluation, None), (None, why it cannot be read), or (None, None) when there is none."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return None, None
    if path.is_symlink() or not path.is_file():
        return None, "it is not a regular file"
    try:
        evaluation = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return None, f"it cannot be read ({err})"
    if not isinstance(evaluation, dict):
        return None, "it is not a JSON object"
    return evaluation, None


def evaluation_problem(evaluation: dict, config: dict, run_id: str | None, epoch: int | None = None) -> str | None:
    """Why ``evaluation`` is not the result of the run of ``config`` and identity ``run_id``
    (scoring the checkpoint of ``epoch``, when given); None when it is."""
    recorded = evaluation.get("config")
    if not isinstance(recorded, dict):
        return "it records no configuration"
    try:
        TrainConfig.from_dict(recorded)
    except (TypeError, ValueError) as err:
        return f"its configuration is not valid ({err})"
    # a run may be asked for more epochs after it was scored; every other setting must agree
    settings = {f.name for f in fields(TrainConfig)} - {"epochs"}   # not the run_id or provenance beside them
    # a record (or a configuration) written before a later setting existed has it at its default
    recorded, config = ({**{k: v for k, v in LATER_SETTINGS.items() if k not in c}, **c} for c in (recorded, config))
    differs = sorted(k for k in settings if recorded.get(k) != config.get(k))
    if differs:
        return f"{differs[0]}: {recorded.get(differs[0])!r} against the run's {config.get(differs[0])!r}"
    problem = identity_problem(evaluation.get(RUN_ID_KEY), recorded, run_id)
    if problem:
        return problem
    # runs scored before the checkpoint was recorded have no checkpoint_epoch: the grid scores them again
    required = ("epochs", "test_bound", "log_likelihood") + (("checkpoint_epoch",) if epoch is not None else ())
    for key in required:
        value = evaluation.get(key)
        if isinstance(value, bool) or not isinstance(value, float if key in ("test_bound", "log_likelihood") else int):
            return f"its {key!r} is missing or not a number"
    for key in ("test_bound", "log_likelihood", "log_likelihood_stderr", "valid_bound"):
        value = evaluation.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            return f"its {key!r} is {value!r}, not a finite number: it is no result"
    if epoch is not None and evaluation["checkpoint_epoch"] != epoch:
        return f"it scored the checkpoint of epoch {evaluation['checkpoint_epoch']}, the best is of epoch {epoch}"
    return None
