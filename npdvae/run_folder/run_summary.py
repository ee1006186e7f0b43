"""What a run folder holds, in one record: the runs one has, and where each stands.

:func:`find_runs` walks folders for run folders (a ``config.json`` or a checkpoint);
:func:`summarize_run` reads one without writing anything, taking no lock:

* what it is: the model's label (as the paper's tables name it), the corruption and level;
* how far it is: epochs done of those asked, the best validation bound and its epoch;
* what it scored: the test bound and log p(x) of its ``eval.json``, only when that file is
  this run's result (npdvae/run_folder/evaluation_record.py);
* its state: ``finished``, ``interrupted`` (resumable from its last checkpoint), ``in use``
  (another process holds its lock: the pid is given) or ``damaged`` (with what is wrong).
"""

from __future__ import annotations

import errno
import fcntl
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from npdvae.run_folder.checkpoint import CheckpointError
from npdvae.training.config import TrainConfig
from npdvae.training.selection import best_record
from npdvae.run_folder.evaluation_record import EVALUATION_NAME, evaluation_problem, read_evaluation
from npdvae.run_folder.run_files import LOCK_NAME
from npdvae.run_folder.runs import CHECKPOINTS, RunDirectoryError, load_run_checkpoint, read_run_config


@dataclass
class RunSummary:
    path: str
    model: str | None = None
    corruption: str | None = None      # noise type and level, or "none"
    epochs_done: int | None = None
    epochs_asked: int | None = None
    best_valid: float | None = None    # the best validation bound (nats; higher is better)
    best_epoch: int | None = None
    test_bound: float | None = None    # of the scored checkpoint, when eval.json is this run's
    log_likelihood: float | None = None
    state: str = "damaged"
    detail: str | None = None          # the holder's pid, or what is damaged

    def to_dict(self) -> dict:
        return asdict(self)


def find_runs(folders) -> list[Path]:
    """Every run folder at or under ``folders``, sorted; a run's own sub-folders are not searched."""
    found = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for root, dirs, files in os.walk(folder):
            if "config.json" in files or any(name in files for name in CHECKPOINTS):
                found.append(Path(root))
                dirs[:] = []
            else:
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(set(found))


def lock_holder(run_dir) -> int | None:
    """The pid holding the run folder's lock, or None when nobody does (asked with a shared,
    non-blocking flock, released at once: a reader never keeps a writer out)."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _corruption(config: TrainConfig) -> str:
    if not config.corrupted:
        return "none"
    params = "".join(f" {k}={v}" for k, v in sorted((config.noise_params or {}).items()))
    level = f" {config.noise_level}" if config.noise or config.noise_source is None else ""
    return f"{config.noise_type}{level}{params}"


def summarize_run(run_dir) -> RunSummary:
    """The record of one run folder (see the module docstring); never raises for a bad folder."""
    run_dir = Path(run_dir)
    summary = RunSummary(path=str(run_dir))
    try:
        config = read_run_config(run_dir)
        summary.model, summary.corruption = config.model_name, _corruption(config)
        summary.epochs_asked = config.epochs
        checkpoint, note = load_run_checkpoint(run_dir, "last")
    except (RunDirectoryError, CheckpointError, ValueError, TypeError) as err:
        summary.detail = str(err)
        holder = lock_holder(run_dir)
        if holder is not None:   # a run being created has no checkpoint yet
            summary.state, summary.detail = "in use", f"pid {holder}"
        return summary
    history = checkpoint.history
    summary.epochs_done = checkpoint.epoch
    best = best_record(history)
    if best is not None:
        summary.best_valid, summary.best_epoch = best["valid_bound"], best["epoch"]
    evaluation, problem = read_evaluation(run_dir / EVALUATION_NAME)
    if evaluation is not None and not evaluation_problem(evaluation, checkpoint.config, checkpoint.run_id,
                                                         summary.best_epoch):
        summary.test_bound, summary.log_likelihood = evaluation["test_bound"], evaluation["log_likelihood"]
    # the best checkpoint is what a finished run is used by: once the run has kept a best epoch, it
    # must be there and the run's (a rule that starts late keeps none in the first epochs)
    if not note and best is not None:
        try:
            load_run_checkpoint(run_dir, "best", fall_back=False)
        except (CheckpointError, RunDirectoryError) as err:
            note = str(err)
    holder = lock_holder(run_dir)
    if holder is not None:
        summary.state, summary.detail = "in use", f"pid {holder}"
    elif note:
        summary.state, summary.detail = "damaged", note
    elif checkpoint.epoch_state is None and (checkpoint.epoch >= config.epochs or _stopped_early(config, history)):
        summary.state = "finished"
    else:
        summary.state = "interrupted"
    return summary


def _stopped_early(config: TrainConfig, history) -> bool:
    best = best_record(history)
    if config.patience is None or best is None:
        return False
    return history[-1]["epoch"] - best["epoch"] >= config.patience

