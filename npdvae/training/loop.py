"""Training: the loop over epochs and minibatches, validation, and the state that continues it.

Every random draw of a run (shuffling, dynamic binarization, corruption,
eps) comes from one ``numpy.random.Generator`` seeded by ``config.seed``,
whose state is checkpointed before the first minibatch (step 0), at the end
of each epoch, and at the minibatch where a stop was asked for (with the
epoch's order and position). Resuming from a checkpoint therefore continues
the exact stream: a run interrupted and resumed ends with the same
parameters as one that never stopped. :class:`Trainer` keeps that state in memory; the run
folder's trainer (:class:`npdvae.run_folder.runs.RunFolderTrainer`) writes it to files.

The validation bound is the training bound's estimator (same bound, same K)
on the clean validation images, with eps from a fixed seed: the same noise
every epoch, so the curve moves only when the model does.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from npdvae.data import Dataset
from npdvae.data.datasets import SPLITS
from npdvae.training.operations import operations
from npdvae.training.config import TrainConfig, check_data_sizes, settings_differences
from npdvae.training.adam_released import OPTIMIZERS
from npdvae.training.optim import Adam, NonFiniteGradientError
from npdvae.training.schedule import released_staged_lr, staged_lr
from npdvae.training.selection import best_record, is_selectable
from npdvae.training.state import Checkpoint, CheckpointError, EpochState
from npdvae.training.step import NonFiniteBoundError, train_step
from npdvae.vae.model import DVAEModel

VALIDATION_SEED = 1234


class TrainingInterrupted(Exception):
    """Training stopped at a minibatch boundary because a stop was asked for;
    ``last.h5`` holds that point. ``epoch`` is the epoch under way (1-based)."""

    def __init__(self, epoch: int, position: int, batches: int):
        super().__init__(epoch, position, batches)   # args rebuild it when it crosses a process boundary
        self.epoch, self.position, self.batches = epoch, position, batches

    def __str__(self):
        return f"stopped in epoch {self.epoch} after minibatch {self.position} of {self.batches}"


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


def minibatches_of(order: np.ndarray, batch_size: int, first: int = 0):
    """The minibatches of an epoch's shuffled ``order``, from minibatch number ``first`` on;
    the last one may be smaller."""
    for start in range(first * batch_size, len(order), batch_size):
        yield order[start:start + batch_size]


def split_bound(model, params, dataset: Dataset, config: TrainConfig, split="valid",
                batch_size=500, num_examples=None) -> float:
    """Mean of the training bound's estimator (same bound and K) on the clean images of a
    split: on the validation split, the figure model selection goes by; on the test split, the
    figure the tables report. Over the first ``num_examples`` images (default: all)."""
    rng = np.random.default_rng(VALIDATION_SEED)
    n = dataset.num_examples(split) if num_examples is None else min(num_examples, dataset.num_examples(split))
    total = 0.0
    for start in range(0, n, batch_size):
        x = dataset.batch(split, np.arange(start, min(n, start + batch_size)))
        eps = model.ops.standard_normal(rng, (x.shape[0], 1, config.k, config.latent), np.float32)
        total += float(model.bound(params, x, x[:, None, :], eps, config.bound).sum())
    return total / n


class Trainer:
    """Holds a run's model, parameters, optimizer and random stream, in memory.

    ``progress(done, total)`` is called after each minibatch, ``on_epoch(record)``
    after each epoch; the library itself never prints. Checkpoints and epoch records go to
    :meth:`keep` and :meth:`append_record`, which hold them here and write them to the run
    folder in :class:`npdvae.run_folder.runs.RunFolderTrainer`.
    """

    def __init__(self, config: TrainConfig, dataset: Dataset, run_id: str | None = None):
        self.config, self.dataset = config, dataset
        self.run_id = run_id   # carried by every checkpoint (npdvae/run_folder/identity.py)
        self.kept: dict[str, Checkpoint] = {}
        ops = operations(config.kernels)
        self.model = DVAEModel(config.model_config(dataset.input_dim, dataset.likelihood), ops)
        check_data_sizes(config, {split: dataset.num_examples(split) for split in SPLITS}, subsets=False)
        self.rng = np.random.default_rng(config.seed)
        mean_image = dataset.pixel_mean("train")
        initial = self.model.init_params(self.rng, np.float32, data_mean=mean_image)
        self.adam = OPTIMIZERS[config.optimizer](initial, lr=config.lr, ops=ops)   # textbook Adam, or the released one
        self.params = self.adam.params   # Adam holds them (in one buffer, for its one-pass update)
        self.corruption = config.corruption(mean_image, ops=ops)   # by its registered name
        self.epoch = 0
        self.history: list[dict] = []
        self.epoch_state: EpochState | None = None   # an interrupted epoch to continue
        # polled at every minibatch boundary; True stops training there (see run)
        self.stop_requested: Callable[[], bool] = lambda: False
        self._epoch_start = time.perf_counter()   # of the epoch under way, less the seconds it had before a stop

    # -- checkpoints --------------------------------------------------------

    def checkpoint(self, epoch_state: EpochState | None = None) -> Checkpoint:
        return Checkpoint(self.params, self.adam.m, self.adam.v, self.adam.step_count, self.epoch,
                          self.config.to_dict(), self.history, self.rng.bit_generator.state, epoch_state,
                          self.run_id)

    def keep(self, name: str, checkpoint: Checkpoint):
        """Keep ``checkpoint`` as ``last`` (the latest state) or ``best`` (the best validation bound)."""
        self.kept[name] = checkpoint

    def append_record(self, record: dict):
        """An epoch's record, once the epoch is done (the history holds it already)."""

    def restore(self, checkpoint: Checkpoint):
        differences = settings_differences(TrainConfig.from_dict(checkpoint.config), self.config)
        if differences:
            raise CheckpointError("the checkpoint does not match the requested configuration: "
                                  + "; ".join(differences))
        if set(checkpoint.params) != set(self.params):
            raise CheckpointError("the checkpoint's parameters do not match the model's")
        for name in self.params:
            if checkpoint.params[name].shape != self.params[name].shape:
                raise CheckpointError(f"parameter {name}: checkpoint shape {checkpoint.params[name].shape}, "
                                      f"model shape {self.params[name].shape}")
            self.params[name][...] = checkpoint.params[name]
        self.adam.load_state(checkpoint.adam_m, checkpoint.adam_v, checkpoint.adam_step)
        try:
            self.rng.bit_generator.state = checkpoint.rng_state
        except (TypeError, ValueError, KeyError) as err:
            raise CheckpointError(f"the checkpoint's generator state is not usable ({err})") from None
        state = checkpoint.epoch_state
        if state is not None:
            n = self.dataset.num_examples("train")
            batches = -(-n // self.config.batch_size)
            if (len(state.order) != n or state.position > batches
                    or not np.array_equal(np.sort(state.order), np.arange(n))):
                raise CheckpointError("the checkpoint's interrupted epoch does not fit the training set")
        self.epoch, self.history, self.epoch_state = checkpoint.epoch, list(checkpoint.history), state

    # -- training -----------------------------------------------------------

    def learning_rate(self) -> float:
        """The rate for the epoch about to run (``self.epoch`` epochs are done)."""
        if self.config.schedule == "staged":
            return staged_lr(self.epoch, self.config.lr)
        if self.config.schedule == "released":
            return released_staged_lr(self.epoch, self.config.epochs, self.config.lr)
        return self.config.lr

    def train_epoch(self, progress: Callable[[int, int], None] | None = None) -> float:
        """One pass over the training set (or the rest of an interrupted one); the mean bound.

        Raises TrainingInterrupted, after writing ``last.h5`` at that minibatch,
        when ``stop_requested()`` turns true."""
        c, n = self.config, self.dataset.num_examples("train")
        lr = self.learning_rate()
        if self.epoch_state is not None:   # continue where the interrupted epoch stopped
            order, first, total = self.epoch_state.order, self.epoch_state.position, self.epoch_state.total
            self.epoch_state = None
        else:
            order, first, total = self.rng.permutation(n), 0, 0.0
        batches = -(-n // c.batch_size)
        done = min(n, first * c.batch_size)
        for position, idx in enumerate(minibatches_of(order, c.batch_size, first), start=first):
            if self.stop_requested():
                self._save_interrupted(EpochState(order, position, total, time.perf_counter() - self._epoch_start))
                raise TrainingInterrupted(self.epoch + 1, position, batches)
            x = self.dataset.batch("train", idx, self.rng)   # dynamic binarization draws here
            try:
                total += train_step(self.model, self.adam, self.corruption, x, self.rng, bound=c.bound, k=c.k,
                                    m=c.m, lr=lr, clip_grad_norm=c.clip_grad_norm, encoder_gradient=c.encoder_gradient)
            except NonFiniteBoundError as error:
                raise NonFiniteBoundError(
                    f"{error} in {self._where(position, batches)}; the parameters were not updated") from None
            except NonFiniteGradientError as error:
                raise NonFiniteBoundError(f"in {self._where(position, batches)}: {error}") from error
            done += len(idx)
            if progress:
                progress(done, n)
        return total / n

    def _where(self, position: int, batches: int) -> str:
        return f"epoch {self.epoch + 1}, minibatch {position + 1} of {batches}"

    def _save_interrupted(self, state: EpochState):
        self.keep("last", self.checkpoint(state))

    def save_start(self):
        """The step-0 checkpoint: initialized parameters, Adam's zero state and the generator,
        so that a run stopped before its first epoch ends can be resumed from its start."""
        self.keep("last", self.checkpoint())

    def run(self, progress=None, on_epoch: Callable[[EpochRecord], None] | None = None) -> list[dict]:
        """Train up to ``config.epochs`` (counting epochs already done), with
        early stopping on ``config.patience``; returns the metric history.

        A non-finite bound or gradient raises NonFiniteBoundError naming the
        quantity, the epoch and the minibatch; NumPy's own overflow warnings,
        which would only repeat it less precisely, are silenced."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._run(progress, on_epoch)

    def _run(self, progress, on_epoch) -> list[dict]:
        c = self.config
        kept = best_record(self.history)
        best = kept["valid_bound"] if kept is not None else -math.inf
        while self.epoch < c.epochs:
            if c.patience is not None and self._epochs_since_best() >= c.patience:
                break
            # an interrupted epoch counts the seconds it had already spent
            start = time.perf_counter() - (self.epoch_state.seconds if self.epoch_state is not None else 0.0)
            self._epoch_start = start
            lr = self.learning_rate()
            train_bound = self.train_epoch(progress)
            valid = split_bound(self.model, self.params, self.dataset, c)
            if not math.isfinite(valid):
                raise NonFiniteBoundError(f"the validation bound became {valid} after epoch {self.epoch + 1}")
            self.epoch += 1
            is_best = valid > best and is_selectable(self.epoch, c.epochs, c.select_every, c.select_after)
            best = valid if is_best else best
            record = EpochRecord(self.epoch, train_bound, valid, time.perf_counter() - start, is_best, lr)
            self.history.append(record.to_dict())
            self.append_record(record.to_dict())
            state = self.checkpoint()
            if is_best:
                self.keep("best", state)
            self.keep("last", state)
            if on_epoch:
                on_epoch(record)
        return self.history

    def _epochs_since_best(self) -> int:
        if not self.history:
            return 0
        kept = best_record(self.history)
        return self.epoch - (kept["epoch"] if kept is not None else 0)


def warm_up_kernels(trainer: Trainer):
    """Call every kernel a training step and the validation bound use, once, on two training
    images, so that Numba compiles them (or loads them from its cache) now rather than inside
    the first epoch, whose time would then include it.

    Nothing of the run is touched: the step climbs a throwaway copy of the parameters, and
    every draw comes from a throwaway generator, so a run trains to the same bits whether or
    not this was called."""
    c = trainer.config
    rng = np.random.default_rng(0)
    x = trainer.dataset.batch("train", np.arange(min(2, trainer.dataset.num_examples("train"))), rng)
    scratch = Adam({name: p.copy() for name, p in trainer.params.items()}, lr=c.lr, ops=trainer.model.ops)
    try:
        train_step(trainer.model, scratch, trainer.corruption, x, rng, bound=c.bound, k=c.k, m=c.m,
                   lr=trainer.learning_rate(), clip_grad_norm=c.clip_grad_norm)
    except (NonFiniteBoundError, NonFiniteGradientError):
        pass   # the first real minibatch says so, with where
    split_bound(trainer.model, trainer.params, trainer.dataset, c, num_examples=2)
