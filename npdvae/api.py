"""The public Python API: train a model into a run folder, load a trained one, use it.

    import npdvae
    config = npdvae.TrainConfig(dataset="mnist", noise=0.05, k=5, epochs=2)
    run = npdvae.train(config, out="runs/example")      # resumes if the folder holds the run
    model = npdvae.load("runs/example")                 # or a model file (npdvae export)
    mu, log_sigma2 = model.encode(x)
    bounds = model.bound(x, k=5)                        # (B,) nats
    for run in npdvae.runs("runs"):                     # every run folder: what, how far, state
        print(run.path, run.state, run.best_valid)

The command line (``cli/``) is built on these same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from npdvae.evaluation.evaluate import denoising_bound, importance_sampled_bound
from npdvae.evaluation.pictures import decoder_mean, sample_images
from npdvae.training.config import TrainConfig
from npdvae.training.loop import Trainer
from npdvae.run_folder.run_summary import RunSummary, find_runs, summarize_run
from npdvae.run_folder.runs import load_trained, prepare_dataset, training
from npdvae.vae.model import DVAEModel


def train(config: TrainConfig, out, data_dir=None, progress: Callable | None = None,
          on_epoch: Callable | None = None) -> Trainer:
    """Train ``config`` into the run folder ``out`` (created if needed) and return the Trainer.

    A folder that already holds this run continues it from its last checkpoint (a stop at
    any point loses nothing); one that holds a run of other settings is refused
    (CheckpointError naming them), one that holds other files too (RunDirectoryError). The
    data is found or downloaded as the command line does (``data_dir``, $NPDVAE_DATA_DIR,
    the default folder). ``progress(done, total)`` is called after each minibatch and
    ``on_epoch(record)`` after each epoch; the returned Trainer holds ``history``,
    ``params`` and ``model``. The folder's lock is released when training ends."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig (npdvae.TrainConfig(**settings)), got {type(config).__name__}")
    with training(config, Path(out), prepare_dataset(config, data_dir), progress, on_epoch) as trainer:
        pass   # the folder is left for others to read, resume or list (npdvae runs) at once
    return trainer


@dataclass
class TrainedModel:
    """A trained model and its configuration. Images are (B, D) float arrays: 0/1 pixels for
    MNIST, [0, 1] intensities for Frey Face; every figure is in nats, per image."""

    config: TrainConfig
    model: DVAEModel
    params: dict

    def _images(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=self.params["decoder.hidden0.W"].dtype)
        if x.ndim != 2 or x.shape[1] != self.model.config.input_dim:
            raise ValueError(f"images must be (B, {self.model.config.input_dim}), got {x.shape}")
        if not np.isfinite(x).all() or x.min(initial=0) < 0 or x.max(initial=0) > 1:
            raise ValueError("images must hold pixels in [0, 1] (binary for MNIST), "
                             f"got values from {x.min()} to {x.max()}")
        return x

    @staticmethod
    def _samples(k) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        return int(k)

    def encode(self, x):
        """mu, log_sigma2 (B, Z) of q(z | x)."""
        mu, log_sigma2, _ = self.model.encode(self.params, self._images(x))
        return mu, log_sigma2

    def decode(self, z):
        """The mean of p(x | z) (B, D): Bernoulli probabilities, or the Gaussian's mean."""
        z = np.asarray(z, dtype=self.params["decoder.hidden0.W"].dtype)
        outputs, _ = self.model.decode(self.params, z)
        return decoder_mean(self.model, outputs)

    def sample(self, n: int, seed: int = 0):
        """``n`` decoder means at z ~ p(z) (n, D)."""
        return sample_images(self.model, self.params, n, np.random.default_rng(seed))

    def bound(self, x, k: int = 1, seed: int = 0):
        """The K-sample bound log 1/K sum_k p(x, z_k) / q(z_k | x) (B,) on clean x: the ELBO
        for K = 1, the IWAE bound (eq. 12 with M = 1) above."""
        return importance_sampled_bound(self.model, self.params, self._images(x), self._samples(k),
                                        np.random.default_rng(seed))

    def log_likelihood(self, x, k: int = 5000, seed: int = 0):
        """log p(x) estimated with ``k`` importance samples from q(z | x) (B,)."""
        return self.bound(x, k, seed)

    def denoising_bound(self, x, corruption=None, k: int | None = None, m: int | None = None,
                        seed: int = 0, mean_image=None):
        """The denoising bound the model was trained with, per image (B,) nats: eq. 11 (elbo) or
        eq. 12 (iwae) with ``m`` corrupted copies of each clean image in ``x`` and ``k`` samples
        of z per copy (default: the model's own M and K), the corruption the model's own
        (``noise_type``, ``noise`` and ``noise_params`` of its configuration, made by the
        registered factory; a mean-image one needs ``mean_image``, the mean training image) or
        the ``corruption`` given (any object with ``sample(x, m, rng)``). Draws come from
        ``seed`` in the training step's order (corruption, then eps), so a minibatch and a
        stream give the number the training loop climbed."""
        c = self.config
        k, m = self._samples(c.k if k is None else k), self._samples(c.m if m is None else m)
        if corruption is None:
            if c.noise_type == "mean-image" and mean_image is None:
                raise ValueError("a mean-image corruption needs the mean training image (mean_image=...)")
            corruption = c.corruption(mean_image, ops=self.model.ops)
        return denoising_bound(self.model, self.params, self._images(x), corruption, c.bound, m, k,
                               np.random.default_rng(seed))


def load(path, which: str = "best") -> TrainedModel:
    """A trained model from a run folder (its ``which``.h5, falling back on the other
    checkpoint if it is damaged), a checkpoint file or a model file."""
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    config, model, params = load_trained(path, which)
    return TrainedModel(config, model, params)


def runs(*folders) -> list[RunSummary]:
    """The run folders at or under ``folders`` (default ``runs``), each summarized as
    ``npdvae runs`` prints it: model, corruption, epochs done and asked, best validation
    bound and epoch, test figures when its eval.json is its own, and its state."""
    return [summarize_run(path) for path in find_runs(folders or ("runs",))]
