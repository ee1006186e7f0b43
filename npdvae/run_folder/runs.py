"""Run directories: creating, resuming and reading them.

A run directory holds::

    config.json        the full TrainConfig (every hyperparameter, recorded), the run's
                       identity, ``run_id`` (npdvae/run_folder/identity.py), and the
                       ``provenance`` of the code that created it
    metrics.jsonl      a header line with the run's identity, then one JSON record per epoch
    best.h5, last.h5   checkpoints (best by validation bound, and latest)
    samples.png, reconstructions.png   pictures, written by the command line
    .lock              the writer's lock (see npdvae.run_folder.run_files)

A run folder is never a dead end. ``last.h5`` is written before the first
minibatch (step 0), so a run can be resumed from its very start; a folder
that holds a configuration but no checkpoint (a run stopped while it was
being created) is restarted, and says so; when one of ``best.h5`` and
``last.h5`` is damaged, or belongs to another run, the other is used, and that
is said too.
"""

from __future__ import annotations

import json
import re
import logging
import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from npdvae.run_folder.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from npdvae.training.config import ConfigError, TrainConfig, check_data_sizes, defining_settings
from npdvae.run_folder.provenance import provenance
from npdvae.run_folder.identity import (RUN_ID_KEY, UNKNOWN, config_problem, identity_problem, new_run_id,
                                       recorded_run_id)
from npdvae.data import Dataset, load_dataset
from npdvae.data.datasets import SPLITS
from npdvae.vae.likelihoods import BernoulliHead, GaussianHead
from npdvae.vae.model import DVAEModel
from npdvae.training.operations import operations
from npdvae.run_folder.model_file import is_model_file, load_model_file
from npdvae.run_folder.run_files import LOCK_NAME, TMP_SUFFIX, RunLock, append_line, remove_stale_temporaries, replace_file
from npdvae.training.loop import Trainer, warm_up_kernels
from npdvae.training.memory import keep_freed_memory

CHECKPOINTS = ("last.h5", "best.h5")
log = logging.getLogger("npdvae")
# files a run writes; a folder holding only these (and no checkpoint) may be restarted
RUN_FILES = ("config.json", "metrics.jsonl", "samples.png", "reconstructions.png", "eval.json", LOCK_NAME)


class RunDirectoryError(ValueError):
    pass


class RunFolderTrainer(Trainer):
    """A :class:`Trainer` whose checkpoints are ``last.h5`` and ``best.h5`` of ``run_dir`` and
    whose epoch records are the lines of its ``metrics.jsonl``; it holds the folder's ``lock``
    (:func:`open_run` takes it) until :meth:`release`. What opening and training it did reaches
    a Python caller: ``opened`` ("created", "restarted" or "resumed"), ``resumed_at`` (the
    epochs done when it was resumed, else None), ``already_done`` (set by :func:`training`:
    nothing was left to train) and ``notes`` (what was said, a checkpoint fallen back on among
    them); each is also logged on the ``npdvae`` logger, which is silent unless the caller
    configures logging."""

    def __init__(self, config: TrainConfig, dataset: Dataset, run_dir, run_id: str | None = None, lock=None):
        super().__init__(config, dataset, run_id)
        self.run_dir, self.lock = Path(run_dir), lock
        self.notes: list[str] = []
        self.opened: str | None = None
        self.resumed_at: int | None = None
        self.already_done = False

    def keep(self, name: str, checkpoint: Checkpoint):
        save_checkpoint(self.run_dir / f"{name}.h5", checkpoint)

    def append_record(self, record: dict):
        append_line(self.run_dir / "metrics.jsonl", json.dumps(record))

    def release(self):
        """Let go of the folder: others may then read, list or resume it at once."""
        if self.lock is not None:
            self.lock.release()


def prepare_dataset(config: TrainConfig, data_dir=None, progress=None, say=None) -> Dataset:
    """The data set a run of ``config`` trains on (train_examples and eval_examples take the
    first images of each split, all of them if the split holds fewer)."""
    dataset = load_dataset(config.dataset, data_dir=data_dir, binarization=config.binarize,
                           binarization_seed=config.seed, progress=progress, say=say)
    if config.train_examples or config.eval_examples:
        dataset = dataset.subset(config.train_examples, config.eval_examples, config.eval_examples)
    return dataset


def is_run_folder(folder) -> bool:
    """Whether ``folder`` holds a run (its configuration, a checkpoint or its epoch records):
    no command writes anything there but the run's own writer."""
    return any((Path(folder) / name).exists() for name in ("config.json", "metrics.jsonl", *CHECKPOINTS))


def has_checkpoint(run_dir) -> bool:
    return any((Path(run_dir) / name).exists() for name in CHECKPOINTS)


def _only_run_files(run_dir: Path) -> bool:
    return all(p.name in RUN_FILES or p.name.endswith(TMP_SUFFIX) for p in run_dir.iterdir())


def _lock(run_dir: Path) -> RunLock:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirectoryError(f"cannot create {run_dir}: {err.strerror}") from None
    if not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir} is not a directory")
    lock = RunLock(run_dir).acquire()
    remove_stale_temporaries(run_dir)   # left by a killed write; nobody else can own them now
    return lock


def open_run(config: TrainConfig, run_dir, dataset: Dataset, resume: bool = False) -> RunFolderTrainer:
    """A trainer for a new run directory, or for continuing one (``resume``).

    Takes the folder's lock first (RunLockedError if another process holds it).
    A new run refuses a folder that holds a checkpoint or files that are not a
    run's (nothing is ever overwritten); a folder with a run's files but no
    checkpoint is restarted. Resuming loads ``last.h5`` (or ``best.h5`` when
    ``last.h5`` is damaged) and needs a matching configuration; with no
    checkpoint at all it restarts. ``trainer.notes`` says what was done.
    """
    run_dir = Path(run_dir)
    # before anything is created; a new run must not record a size it does not use
    check_data_sizes(config, {split: dataset.num_examples(split) for split in SPLITS},
                     subsets=not has_checkpoint(run_dir))
    lock = _lock(run_dir)
    notes = []
    resumed = resume and has_checkpoint(run_dir)
    if resumed:
        checkpoint, note = load_run_checkpoint(run_dir, "last")
        if note:
            notes.append(note)
        if config.epochs < checkpoint.epoch:   # before anything of the folder is rewritten
            lock.release()
            raise ConfigError("epochs", f"epochs {config.epochs} is fewer than the {checkpoint.epoch} epochs {run_dir} "
                                        f"has trained; ask for at least {checkpoint.epoch}")
        trainer = RunFolderTrainer(config, dataset, run_dir, run_id=checkpoint.run_id, lock=lock)
        trainer.restore(checkpoint)
    else:
        if has_checkpoint(run_dir):
            raise RunDirectoryError(f"{run_dir} already exists and holds a run; "
                                    "use --resume to continue it or choose another --out")
        if not _only_run_files(run_dir):
            raise RunDirectoryError(f"{run_dir} already exists and holds files that are not a run's; "
                                    "choose another --out")
        if (run_dir / "config.json").exists() or (run_dir / "metrics.jsonl").exists():
            notes.append(f"{run_dir} held no checkpoint (the run stopped before its first one): started afresh")
            for name in ("metrics.jsonl", "eval.json", "samples.png", "reconstructions.png"):
                (run_dir / name).unlink(missing_ok=True)
        trainer = RunFolderTrainer(config, dataset, run_dir, run_id=new_run_id(config.to_dict()), lock=lock)
    recorded = config.to_dict() if trainer.run_id is None else {**config.to_dict(), RUN_ID_KEY: trainer.run_id}
    recorded["provenance"] = _created_by(run_dir) if resume and has_checkpoint(run_dir) else provenance()
    replace_file(run_dir / "config.json", (json.dumps(recorded, indent=2, sort_keys=True) + "\n").encode())
    _rewrite_metrics(run_dir, trainer.run_id, trainer.history)   # drops records of epochs after the checkpoint
    if not has_checkpoint(run_dir):
        trainer.save_start()
    trainer.notes = notes
    if resumed:
        trainer.opened, trainer.resumed_at = "resumed", trainer.epoch
        log.info("%s: resumed after epoch %d%s", run_dir, trainer.epoch, "" if trainer.epoch_state is None
                 else f", in epoch {trainer.epoch + 1} at minibatch {trainer.epoch_state.position}")
    else:
        trainer.opened = "restarted" if notes and "started afresh" in notes[-1] else "created"
        log.info("%s: %s", run_dir, trainer.opened)
    for note in notes:
        log.info("%s: %s", run_dir, note)
    keep_freed_memory()   # a training process frees and reallocates the same buffers every step
    return trainer


@contextmanager
def training(config: TrainConfig, run_dir, dataset: Dataset, progress=None, on_epoch=None, stop_requested=None):
    """Train ``config`` in the folder ``run_dir`` up to its epochs, continuing the run there if
    it has one (:func:`open_run`), the kernels compiled first so that epoch 1's time is
    training only; yields the trainer, which holds the folder's lock until the block ends.
    ``npdvae.train`` and a grid's task both train this way."""
    trainer = open_run(config, run_dir, dataset, resume=(Path(run_dir) / "last.h5").exists())
    try:
        if stop_requested is not None:
            trainer.stop_requested = stop_requested
        trainer.already_done = trainer.epoch >= config.epochs and trainer.epoch_state is None
        if trainer.already_done:
            log.info("%s: already finished at epoch %d; nothing to train", run_dir, trainer.epoch)
        else:
            warm_up_kernels(trainer)
            trainer.run(progress, on_epoch)
        yield trainer
    finally:
        trainer.release()


def _created_by(run_dir: Path):
    """The provenance ``config.json`` recorded when the run was created (None if it has none)."""
    try:
        values = json.loads((run_dir / "config.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return values.get("provenance") if isinstance(values, dict) else None


def _rewrite_metrics(run_dir: Path, run_id: str | None, history):
    header = [] if run_id is None else [{RUN_ID_KEY: run_id}]   # runs from before identities have none
    replace_file(run_dir / "metrics.jsonl", "".join(json.dumps(line) + "\n" for line in header + history).encode())


def load_run_checkpoint(run_dir, which: str = "last", fall_back: bool = True) -> tuple[Checkpoint, str | None]:
    """``which``.h5 of a run folder, falling back on the other checkpoint when it is
    missing, damaged or another run's (unless not ``fall_back``: then CheckpointError
    says what to do); returns (checkpoint, a note saying what was used, or None)."""
    run_dir = Path(run_dir)
    first, second = (f"{which}.h5", "best.h5" if which == "last" else "last.h5")
    run_id = recorded_run_id(run_dir)
    try:
        return _checked(load_checkpoint(run_dir / first), run_dir / first, run_id), None
    except CheckpointError as err:
        problem = err
    if not fall_back:
        raise CheckpointError(f"{problem}; the run's {first} cannot be used: move {run_dir} aside "
                              "and train the run again") from None
    try:
        checkpoint = _checked(load_checkpoint(run_dir / second), run_dir / second, run_id)
    except CheckpointError as other:
        if not has_checkpoint(run_dir):
            raise RunDirectoryError(f"{run_dir}: no checkpoint (no {first} or {second})") from None
        raise CheckpointError(f"{problem}; and {other}. Neither checkpoint can be used: move {run_dir} "
                              "aside and start the run again") from None
    return checkpoint, f"{problem}; using {run_dir / second} (epoch {checkpoint.epoch}) instead"


def _checked(checkpoint: Checkpoint, path, run_id=UNKNOWN) -> Checkpoint:
    """The checkpoint, if its configuration and history are a run's, and the run is
    ``run_id`` (when known); else CheckpointError."""
    try:
        TrainConfig.from_dict(checkpoint.config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its configuration is not valid ({err})") from None
    problem = identity_problem(checkpoint.run_id, checkpoint.config,
                               checkpoint.run_id if run_id is UNKNOWN else run_id)
    if problem:
        raise CheckpointError(f"{path} is not this run's checkpoint: {problem}")
    for record in checkpoint.history:
        if not (isinstance(record, dict) and isinstance(record.get("epoch"), int)
                and isinstance(record.get("valid_bound"), (int, float))):
            raise CheckpointError(f"{path}: its metric history is malformed")
    if len(checkpoint.history) != checkpoint.epoch:
        raise CheckpointError(f"{path}: epoch {checkpoint.epoch} but {len(checkpoint.history)} epochs of history")
    return checkpoint


def read_run_config(run_dir, notes: list | None = None) -> TrainConfig:
    """A run's configuration from ``config.json``, or from its checkpoint when that file
    is missing or damaged (said in ``notes``); RunDirectoryError, naming the file and
    the fault, otherwise."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir} does not exist: there is no run there")
    problem = config_problem(run_dir)
    if path.is_file() and not problem:
        try:
            values = json.loads(path.read_text())
            if not isinstance(values, dict):
                raise ValueError("not a JSON object")
            return TrainConfig.from_dict(values)
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as err:
            problem = f"{path} is not a valid configuration ({err})"
    if has_checkpoint(run_dir):
        try:
            checkpoint, _ = load_run_checkpoint(run_dir, "last")
            config = TrainConfig.from_dict(checkpoint.config)
            if notes is not None:
                notes.append(f"{problem or f'{path} is missing'}; using the configuration stored in the checkpoint")
            return config
        except (CheckpointError, RunDirectoryError) as err:
            problem = f"{problem or f'{path} is missing'}, and {err}"
    if problem is None:
        if _only_run_files(run_dir):
            raise RunDirectoryError(f"{run_dir} holds no run yet (no config.json, no checkpoint)")
        raise RunDirectoryError(f"{run_dir}: no config.json, not a run directory")
    raise RunDirectoryError(f"{problem}; nothing of this run can be continued: move {run_dir} aside "
                            "and start it again")


# the settings a default folder name carries when they differ from the defaults, in this
# order, each with the short prefix it is written with (epochs, patience and kernels may
# change on resume, and the seed always ends the name)
_NAME_SETTINGS = (("m", "m"), ("encoder", ""), ("encoder_layers", "enc"), ("latent", "z"), ("hidden", "h"),
                  ("activation", ""), ("noise_type", ""), ("noise_params", ""), ("lr", "lr"), ("schedule", ""), ("optimizer", ""), ("encoder_gradient", ""),
                  ("select_every", "sel"), ("select_after", "after"),
                  ("clip_grad_norm", "clip"), ("binarize", ""), ("batch_size", "bs"),
                  ("train_examples", "train"), ("eval_examples", "eval"))


def _number(value: float) -> str:
    """Short (5e-05, 0.05, 5), yet never the same text for two different numbers."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def default_run_dir(config: TrainConfig) -> Path:
    """The folder a run of ``config`` gets when none is named, under ``runs/``: the data set,
    bound, K and noise, then every setting that differs from its default (the defaults of
    this data set and bound), then the seed; e.g. ``mnist-elbo-k5-noise0.05-enc2-staged-seed0``.
    Two runs of different settings never share it."""
    values = defining_settings(config.to_dict())
    defaults = TrainConfig(dataset=config.dataset, bound=config.bound).to_dict()
    parts = [f"{config.dataset}-{config.bound}-k{config.k}-noise{_number(config.noise)}"]
    for name, prefix in _NAME_SETTINGS:
        if name not in values or values[name] == defaults[name]:
            continue
        value = values[name]
        if isinstance(value, dict):   # a corruption's parameters: size7 for {"size": 7}
            parts += [re.sub(r"[^A-Za-z0-9._=-]", "_", f"{key}{_number(v) if isinstance(v, float) else v}")
                      for key, v in sorted(value.items())]
            continue
        parts.append(f"{prefix}{_number(value)}" if isinstance(value, float) else f"{prefix}{value}")
    return Path("runs") / "-".join(parts + [f"seed{config.seed}"])


def resumed_config(run_dir, changes: dict, notes: list | None = None) -> TrainConfig:
    """The configuration a resumed run continues with: the one it recorded (see
    read_run_config), with ``changes`` (settings given anew, e.g. more epochs) laid
    over it; whether a change is allowed is for the checkpoint to say on restore."""
    if not Path(run_dir).is_dir():
        raise RunDirectoryError(f"{run_dir} does not exist: there is no run to resume; start it without --resume")
    try:
        stored = read_run_config(run_dir, notes).to_dict()
    except RunDirectoryError as err:
        if _only_run_files(Path(run_dir)):   # nothing to resume: the way out
            raise RunDirectoryError(f"{err}: there is no run to resume; start it without --resume") from None
        raise
    return TrainConfig(**{**stored, **changes})


def read_metrics(run_dir) -> list[dict]:
    """The per-epoch records of ``metrics.jsonl`` (none if it is missing); RunDirectoryError
    naming the line when one is not a record, or the file when its header names another run."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    records, header = [], None
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise RunDirectoryError(f"{path} cannot be read ({err})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if number == 1 and isinstance(record, dict) and set(record) == {RUN_ID_KEY}:
                header = record[RUN_ID_KEY]
                continue
            if not all(isinstance(record.get(key), (int, float)) for key in ("epoch", "train_bound", "valid_bound")):
                raise ValueError("epoch, train_bound and valid_bound must be numbers")
            if not all(math.isfinite(record[key]) for key in ("train_bound", "valid_bound")):
                raise ValueError("a bound that is not a finite number is no epoch's record")
        except (ValueError, AttributeError) as err:
            raise RunDirectoryError(f"{path}, line {number}: not an epoch record ({err})") from None
        records.append(record)
    run_id = recorded_run_id(run_dir)
    problem = None if run_id is UNKNOWN else identity_problem(header, None, run_id)
    if problem:
        raise RunDirectoryError(f"{path} is not this run's: {problem}")
    return records


def checkpoint_path(run_or_checkpoint, which: str = "best") -> Path:
    """A checkpoint file as given, or ``best.h5`` / ``last.h5`` inside a run directory."""
    path = Path(run_or_checkpoint)
    if path.is_dir():
        path = path / f"{which}.h5"
    if not path.is_file():
        raise RunDirectoryError(f"{path}: no such checkpoint (give a run directory or a .h5 file)")
    return path


def load_trained(run_or_checkpoint, which: str = "best", notes: list | None = None, fall_back: bool = True):
    """(config, model, params) of a trained run (a run directory, a checkpoint or a model
    file, npdvae/run_folder/model_file.py), for evaluation and pictures.

    Given a run directory, a damaged ``which``.h5 falls back on the other
    checkpoint (unless not ``fall_back``); the note saying so is appended to ``notes``."""
    path = Path(run_or_checkpoint)
    if path.is_dir():
        checkpoint, note = load_run_checkpoint(path, which, fall_back)
        if note and notes is not None:
            notes.append(note)
        recorded, params = checkpoint.config, checkpoint.params
    elif is_model_file(path):
        model_file = load_model_file(path)
        recorded, params = model_file.config, model_file.params
    else:
        checkpoint = _checked(load_checkpoint(checkpoint_path(path, which)), path)
        recorded, params = checkpoint.config, checkpoint.params
    config = TrainConfig.from_dict(recorded)
    likelihood = "bernoulli" if BernoulliHead.output_bias in params else "gaussian"
    # the decoder's output bias has one entry per pixel, whatever the encoder (an MLP or the GRU)
    output_bias = params.get((BernoulliHead if likelihood == "bernoulli" else GaussianHead).output_bias)
    if output_bias is None or output_bias.ndim != 1:
        raise CheckpointError(f"{path}: the parameters are not those of an npdvae model")
    model = DVAEModel(config.model_config(output_bias.shape[0], likelihood), operations(kernels=True))
    expected = {name: value.shape for name, value in model.init_params(np.random.default_rng(0), np.float32).items()}
    found = {name: value.shape for name, value in params.items()}
    if expected != found:
        wrong = sorted(set(expected) ^ set(found)) or sorted(n for n in expected if expected[n] != found[n])
        raise CheckpointError(f"{path}: the parameters do not match the recorded configuration ({wrong[0]})")
    other = sorted(name for name, value in params.items() if value.dtype != np.float32)
    if other:   # npdvae trains and scores in float32; another precision would meet float32 images
        raise CheckpointError(f"{path}: parameter {other[0]} is {params[other[0]].dtype}, not the float32 "
                              "npdvae writes")
    return config, model, params
