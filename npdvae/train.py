"""Training: one configuration in, a run directory out.

A run directory holds::

    config.json        the full TrainConfig (every hyperparameter, recorded)
    metrics.jsonl      one JSON record per epoch
    best.h5, last.h5   checkpoints (best by validation bound, and latest)
    samples.png, reconstructions.png   pictures, written at the end

Every random draw of a run (shuffling, dynamic binarization, corruption,
eps) comes from one ``numpy.random.Generator`` seeded by ``config.seed``,
whose state is checkpointed at the end of each epoch. Resuming from a
checkpoint therefore continues the exact stream: a run interrupted and
resumed ends with the same parameters as one that never stopped.

The validation bound is the training bound's estimator (same bound, same K)
on the clean validation images, with eps from a fixed seed: the same noise
every epoch, so the curve moves only when the model does.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np

from npdvae.bounds import BOUNDS
from npdvae.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from npdvae.corruption import NOISE_TYPES, Corruption
from npdvae.data import Dataset, load_dataset
from npdvae.data.files import DATASETS
from npdvae.model import DVAEModel, ModelConfig, default_activation
from npdvae.memory import keep_freed_memory
from npdvae.optim import Adam

VALIDATION_SEED = 1234


class NonFiniteBoundError(RuntimeError):
    """The bound became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """Everything a run depends on. Defaults follow the paper (section 4)."""

    dataset: str = "mnist"
    bound: str = "elbo"               # "elbo": VAE / DVAE (eq. 11); "iwae": IWAE / DIWAE (eq. 12)
    noise: float = 0.0                # corruption level; 0 is the plain VAE / IWAE
    noise_type: str | None = None     # default: salt-pepper for binary data, gaussian for Frey Face
    k: int = 1                        # samples of z per corrupted copy
    m: int = 1                        # corrupted copies per example
    encoder: str = "mlp"              # "mlp" or "gru" (Table 3)
    encoder_layers: int = 1
    latent: int = 50
    hidden: int = 200
    activation: str | None = None     # default by bound: softplus (elbo), tanh (iwae)
    epochs: int = 10
    batch_size: int = 100
    lr: float = 1e-3
    schedule: str = "constant"        # or "staged": Burda et al.'s 3^i epochs at lr 10^(-i/7) (see staged_lr)
    clip_grad_norm: float | None = None
    binarize: str = "dynamic"
    seed: int = 0
    patience: int | None = None       # stop after this many epochs without a better validation bound
    train_examples: int | None = None  # use only the first N training examples (quick runs)
    eval_examples: int | None = None   # likewise for validation and test

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {self.dataset!r}")
        if self.bound not in BOUNDS:
            raise ValueError(f"bound must be one of {BOUNDS}, got {self.bound!r}")
        if self.noise_type is None:
            self.noise_type = "gaussian" if self.dataset == "frey-face" else "salt-pepper"
        if self.activation is None:
            self.activation = default_activation(self.bound)
        if self.noise_type not in NOISE_TYPES:
            raise ValueError(f"noise_type must be one of {NOISE_TYPES}, got {self.noise_type!r}")
        Corruption(self.noise_type, self.noise, mean_image=np.zeros(1))  # validates the level
        for name in ("k", "m", "encoder_layers", "latent", "hidden", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be > 0, got {self.clip_grad_norm}")

    @property
    def model_name(self) -> str:
        """As in the paper's tables, e.g. "DIWAE (K=5), 1 hidden layer, noise 5%"."""
        family = "IWAE" if self.bound == "iwae" else "VAE"
        name = ("D" if self.noise > 0 else "") + family + (" (GRU)" if self.encoder == "gru" else "")
        layers = f"{self.encoder_layers} hidden layer" + ("s" if self.encoder_layers > 1 else "")
        text = f"{name} (K={self.k})" + (f", {layers}" if self.encoder == "mlp" else "")
        if self.noise > 0:
            level = f"{100 * self.noise:g}%" if self.noise_type != "gaussian" else f"sigma {self.noise:g}"
            text += f", noise {level}" + (" (mean image)" if self.noise_type == "mean-image" else "")
        if self.m > 1:
            text += f", M={self.m}"
        return text

    def model_config(self, input_dim: int, likelihood: str) -> ModelConfig:
        return ModelConfig(input_dim=input_dim, latent_dim=self.latent, hidden_units=self.hidden,
                           encoder=self.encoder, encoder_layers=self.encoder_layers,
                           activation=self.activation, likelihood=likelihood)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# Settings that may change when a run is resumed; everything else must match.
RESUMABLE_CHANGES = ("epochs", "lr", "patience")
SCHEDULES = ("constant", "staged")


def staged_lr(epoch: int, base_lr: float = 1e-3) -> float:
    """Burda et al.'s schedule for IWAE: stage i = 0, 1, ..., 7 lasts 3^i epochs
    at learning rate base_lr * 10^(-i/7); 3280 epochs in all. ``epoch`` counts
    from 0; after the last stage the rate stays at the last stage's."""
    stage, first_epoch_of_next = 0, 1
    while epoch >= first_epoch_of_next and stage < 7:
        stage += 1
        first_epoch_of_next += 3 ** stage
    return base_lr * 10 ** (-stage / 7)


def clip_by_global_norm(grads: dict, max_norm: float) -> float:
    """Scale all gradients in place so their joint L2 norm is at most max_norm;
    returns the norm before clipping."""
    norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
    if norm > max_norm:
        scale = max_norm / norm
        for g in grads.values():
            g *= scale
    return norm


def check_resume_compatible(stored: TrainConfig, requested: TrainConfig):
    """Raise CheckpointError naming every setting that differs."""
    old, new = stored.to_dict(), requested.to_dict()
    diffs = [f"{k}: checkpoint has {old[k]!r}, requested {new[k]!r}"
             for k in old if k not in RESUMABLE_CHANGES and old[k] != new[k]]
    if diffs:
        raise CheckpointError("the checkpoint does not match the requested configuration: " + "; ".join(diffs))


@dataclass
class EpochRecord:
    epoch: int
    train_bound: float
    valid_bound: float
    seconds: float
    best: bool
    lr: float

    def to_dict(self):
        return asdict(self)


def iterate_minibatches(num_examples: int, batch_size: int, rng: np.random.Generator):
    """Index arrays of one shuffled pass; the last batch may be smaller."""
    order = rng.permutation(num_examples)
    for start in range(0, num_examples, batch_size):
        yield order[start:start + batch_size]


def validation_bound(model, params, dataset: Dataset, config: TrainConfig, split="valid",
                     batch_size=500) -> float:
    """Mean of the training bound's estimator (same bound and K) on clean images."""
    rng = np.random.default_rng(VALIDATION_SEED)
    n = dataset.num_examples(split)
    total = 0.0
    for start in range(0, n, batch_size):
        x = dataset.batch(split, np.arange(start, min(n, start + batch_size)))
        eps = rng.standard_normal((x.shape[0], 1, config.k, config.latent), dtype=np.float32)
        total += float(model.bound(params, x, x[:, None, :], eps, config.bound).sum())
    return total / n


class Trainer:
    """Holds a run's model, parameters, optimizer and random stream.

    ``progress(done, total)`` is called after each minibatch, ``on_epoch(record)``
    after each epoch; the library itself never prints.
    """

    def __init__(self, config: TrainConfig, dataset: Dataset, run_dir: Path):
        self.config, self.dataset, self.run_dir = config, dataset, Path(run_dir)
        keep_freed_memory()  # every step frees and reallocates the same buffers
        self.model = DVAEModel(config.model_config(dataset.input_dim, dataset.likelihood))
        if config.batch_size > dataset.num_examples("train"):
            raise ValueError(f"batch_size {config.batch_size} is larger than the training set "
                             f"({dataset.num_examples('train')} examples)")
        self.rng = np.random.default_rng(config.seed)
        mean_image = dataset.pixel_mean("train")
        self.params = self.model.init_params(self.rng, np.float32, data_mean=mean_image)
        self.adam = Adam(self.params, lr=config.lr)
        self.corruption = Corruption(config.noise_type, config.noise, mean_image)
        self.epoch = 0
        self.history: list[dict] = []

    # -- checkpoints --------------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.params, self.adam.m, self.adam.v, self.adam.step_count, self.epoch,
                          self.config.to_dict(), self.history, self.rng.bit_generator.state)

    def restore(self, checkpoint: Checkpoint):
        check_resume_compatible(TrainConfig.from_dict(checkpoint.config), self.config)
        if set(checkpoint.params) != set(self.params):
            raise CheckpointError("the checkpoint's parameters do not match the model's")
        for name in self.params:
            if checkpoint.params[name].shape != self.params[name].shape:
                raise CheckpointError(f"parameter {name}: checkpoint shape {checkpoint.params[name].shape}, "
                                      f"model shape {self.params[name].shape}")
            self.params[name][...] = checkpoint.params[name]
        self.adam.load_state_dict({"m": checkpoint.adam_m, "v": checkpoint.adam_v, "step": checkpoint.adam_step})
        self.rng.bit_generator.state = checkpoint.rng_state
        self.epoch, self.history = checkpoint.epoch, list(checkpoint.history)

    # -- training -----------------------------------------------------------

    def learning_rate(self) -> float:
        """The rate for the epoch about to run (``self.epoch`` epochs are done)."""
        if self.config.schedule == "staged":
            return staged_lr(self.epoch, self.config.lr)
        return self.config.lr

    def train_epoch(self, progress: Callable[[int, int], None] | None = None) -> float:
        c, n = self.config, self.dataset.num_examples("train")
        lr = self.learning_rate()
        total, done = 0.0, 0
        for idx in iterate_minibatches(n, c.batch_size, self.rng):
            x = self.dataset.batch("train", idx, self.rng)
            x_tilde = self.corruption.sample(x, c.m, self.rng)
            eps = self.rng.standard_normal((x.shape[0], c.m, c.k, c.latent), dtype=np.float32)
            result = self.model.bound_and_gradients(self.params, x, x_tilde, eps, c.bound)
            batch_total = float(result.per_example.sum())
            if not math.isfinite(batch_total) or not all(np.all(np.isfinite(g)) for g in result.grads.values()):
                raise NonFiniteBoundError(
                    f"the bound became {batch_total} in epoch {self.epoch + 1}; the parameters were not updated")
            if c.clip_grad_norm is not None:
                clip_by_global_norm(result.grads, c.clip_grad_norm)
            self.adam.step(result.grads, lr=lr)
            total += batch_total
            done += len(idx)
            if progress:
                progress(done, n)
        return total / n

    def run(self, progress=None, on_epoch: Callable[[EpochRecord], None] | None = None) -> list[dict]:
        """Train up to ``config.epochs`` (counting epochs already done), with
        early stopping on ``config.patience``; returns the metric history."""
        c = self.config
        best = max((h["valid_bound"] for h in self.history), default=-math.inf)
        while self.epoch < c.epochs:
            if c.patience is not None and self._epochs_since_best() >= c.patience:
                break
            start = time.perf_counter()
            lr = self.learning_rate()
            train_bound = self.train_epoch(progress)
            valid = validation_bound(self.model, self.params, self.dataset, c)
            if not math.isfinite(valid):
                raise NonFiniteBoundError(f"the validation bound became {valid} after epoch {self.epoch + 1}")
            self.epoch += 1
            is_best = valid > best
            best = max(best, valid)
            record = EpochRecord(self.epoch, train_bound, valid, time.perf_counter() - start, is_best, lr)
            self.history.append(record.to_dict())
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record.to_dict()) + "\n")
            state = self.checkpoint()
            if is_best:
                save_checkpoint(self.run_dir / "best.h5", state)
            save_checkpoint(self.run_dir / "last.h5", state)
            if on_epoch:
                on_epoch(record)
        return self.history

    def _epochs_since_best(self) -> int:
        if not self.history:
            return 0
        best_epoch = max(self.history, key=lambda h: h["valid_bound"])["epoch"]
        return self.epoch - best_epoch


# --------------------------------------------------------------------------
# Run directories
# --------------------------------------------------------------------------


class RunDirectoryError(ValueError):
    pass


def prepare_dataset(config: TrainConfig, data_dir=None, progress=None) -> Dataset:
    dataset = load_dataset(config.dataset, data_dir=data_dir, binarization=config.binarize,
                           binarization_seed=config.seed, progress=progress)
    if config.train_examples or config.eval_examples:
        dataset = dataset.subset(config.train_examples, config.eval_examples, config.eval_examples)
    return dataset


def open_run(config: TrainConfig, run_dir, dataset: Dataset, resume: bool = False) -> Trainer:
    """A Trainer for a new run directory, or for continuing one (``resume``).

    A new run refuses an existing non-empty directory (nothing is ever
    overwritten); resuming needs ``last.h5`` and a matching configuration.
    """
    run_dir = Path(run_dir)
    if resume:
        checkpoint = load_checkpoint(run_dir / "last.h5")
        trainer = Trainer(config, dataset, run_dir)
        trainer.restore(checkpoint)
        _rewrite_metrics(run_dir, trainer.history)  # drop records of epochs after the checkpoint
    else:
        if run_dir.exists() and any(run_dir.iterdir()):
            raise RunDirectoryError(f"{run_dir} already exists and is not empty; "
                                    "use --resume to continue it or choose another --out")
        trainer = Trainer(config, dataset, run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    return trainer


def _rewrite_metrics(run_dir: Path, history):
    with open(run_dir / "metrics.jsonl", "w") as f:
        for record in history:
            f.write(json.dumps(record) + "\n")


def read_run_config(run_dir) -> TrainConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise RunDirectoryError(f"{run_dir}: no config.json, not a run directory")
    return TrainConfig.from_dict(json.loads(path.read_text()))


def read_metrics(run_dir) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def checkpoint_path(run_or_checkpoint, which: str = "best") -> Path:
    """A checkpoint file as given, or ``best.h5`` / ``last.h5`` inside a run directory."""
    path = Path(run_or_checkpoint)
    if path.is_dir():
        path = path / f"{which}.h5"
    if not path.is_file():
        raise RunDirectoryError(f"{path}: no such checkpoint (give a run directory or a .h5 file)")
    return path


def load_trained(run_or_checkpoint, which: str = "best"):
    """(config, model, params) of a trained run, for evaluation and pictures."""
    checkpoint = load_checkpoint(checkpoint_path(run_or_checkpoint, which))
    config = TrainConfig.from_dict(checkpoint.config)
    params = checkpoint.params
    likelihood = "bernoulli" if "decoder.logits.W" in params else "gaussian"
    model = DVAEModel(config.model_config(params["encoder.hidden0.W"].shape[0], likelihood))
    return config, model, params
