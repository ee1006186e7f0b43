"""The signal-to-noise ratio of a trained model's gradient, per estimator and K.

Rainforth et al. (2018) measure how well a gradient estimate points: for each parameter,
the mean of the estimate over repeated draws divided by its standard deviation,

    SNR_i = |E[g_i]| / std[g_i],

and show that under the IWAE bound the encoder's SNR falls like 1/sqrt(K) while the
decoder's grows like sqrt(K); Tucker et al.'s DReG estimator keeps the encoder's from
falling. Here each draw is one training step's gradient on the same images: the minibatch
mean over the first ``examples`` training images of eq. 12's gradient with K samples of z
per copy (eq. 11 at K = 1), each image's copies corrupted afresh by the model's own
corruption (``corrupted``) or clean. The figures are summarized per parameter array and for
the encoder and the decoder: the mean and the median of SNR_i over their parameters (those
whose estimate has any spread; an exactly constant one has no SNR).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from npdvae.vae.model import ENCODER_GRADIENTS


@dataclass(frozen=True)
class SNRSettings:
    ks: tuple = (1, 5, 50)
    estimators: tuple = ENCODER_GRADIENTS
    draws: int = 200
    corrupted: bool = False
    seed: int = 0

    def __post_init__(self):
        if not self.ks or any(int(k) != k or k < 1 for k in self.ks):
            raise ValueError(f"ks must be integers >= 1, got {self.ks}")
        if not self.estimators or any(e not in ENCODER_GRADIENTS for e in self.estimators):
            raise ValueError(f"estimators must be among {ENCODER_GRADIENTS}, got {self.estimators}")
        if int(self.draws) != self.draws or self.draws < 2:
            raise ValueError(f"draws must be an integer >= 2 (a standard deviation needs two), got {self.draws}")


@dataclass
class SNRSummary:
    """SNR_i of one (estimator, K) summarized: per array and per group, its mean and median."""

    estimator: str
    k: int
    arrays: dict = field(default_factory=dict)   # name -> {"mean", "median", "parameters"}
    groups: dict = field(default_factory=dict)   # "encoder" / "decoder" -> {"mean", "median", "parameters"}


def _summary(values: np.ndarray) -> dict:
    return {"mean": float(values.mean()) if values.size else float("nan"),
            "median": float(np.median(values)) if values.size else float("nan"), "parameters": int(values.size)}


def per_parameter_snr(sums: dict, squares: dict, draws: int) -> dict:
    """{array: SNR_i per element}, from the sum and sum of squares of ``draws`` estimates, with
    the elements whose estimate never varied left out."""
    snr = {}
    for name, total in sums.items():
        mean = total / draws
        variance = np.maximum(squares[name] / draws - mean ** 2, 0.0) * draws / (draws - 1)
        std = np.sqrt(variance)
        spread = std > 1e-12 * (np.abs(mean) + 1e-30)
        snr[name] = (np.abs(mean[spread]) / std[spread]).ravel()
    return snr


def gradient_snr(model, params, x, corruption, settings: SNRSettings, m: int = 1,
                 progress: Callable[[int, int], None] | None = None) -> list[SNRSummary]:
    """One :class:`SNRSummary` per (estimator, K) of ``settings``, from ``settings.draws``
    gradient estimates each on the images ``x`` (B, D). ``corruption`` (an object with
    ``sample(x, m, rng)``) corrupts them afresh at every draw when ``settings.corrupted``.
    Every estimator of one K sees the same draws (corruption and eps), so their figures
    differ by the estimator alone."""
    rng_of = np.random.default_rng(settings.seed)
    seeds = {k: int(s) for k, s in zip(settings.ks, rng_of.integers(0, 2 ** 63 - 1, len(settings.ks)))}
    total, done = len(settings.ks) * settings.draws, 0
    results = []
    for k in settings.ks:
        rng = np.random.default_rng(seeds[k])
        sums = {e: {} for e in settings.estimators}
        squares = {e: {} for e in settings.estimators}
        for _ in range(settings.draws):
            x_tilde = corruption.sample(x, m, rng) if settings.corrupted else \
                np.repeat(x[:, None, :], m, axis=1)
            eps = model.ops.standard_normal(rng, (x.shape[0], m, k, model.config.latent), x.dtype)
            for estimator in settings.estimators:
                grads = model.bound_and_gradients(params, x, x_tilde, eps, "iwae", estimator).grads
                for name, g in grads.items():
                    g = g.astype(np.float64)
                    sums[estimator][name] = sums[estimator].get(name, 0.0) + g
                    squares[estimator][name] = squares[estimator].get(name, 0.0) + g * g
            done += 1
            if progress:
                progress(done, total)
        for estimator in settings.estimators:
            snr = per_parameter_snr(sums[estimator], squares[estimator], settings.draws)
            summary = SNRSummary(estimator, k, {name: _summary(v) for name, v in snr.items()})
            for group in ("encoder", "decoder"):
                values = [v for name, v in snr.items() if name.startswith(group)]
                summary.groups[group] = _summary(np.concatenate(values) if values else np.empty(0))
            results.append(summary)
    return results
