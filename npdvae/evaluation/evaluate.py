"""Evaluation: bounds and the importance-sampled log-likelihood, in bounded memory.

For each example x (clean: no corruption at test time):

* ELBO:  1 sample,  log p(x, z) - log q(z | x);
* the K-sample bound  log 1/K sum_k w_k  (IWAE, eq. 12 with M = 1);
* log p(x) ~ log 1/S sum_s w_s  with S = 5000 importance samples, the
  estimate Burda et al. report; it is itself a (tight) lower bound;
* the denoising bound under the training corruption (eq. 11 or 12 with the
  run's noise, M and K): the quantity training maximized.

The S samples are drawn in chunks of ``chunk_k`` and combined with a running
log-sum-exp, so memory is that of ``batch_size * chunk_k`` decoder rows
whatever S is. Each figure comes back as mean and standard error in nats.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Estimate:
    mean: float
    stderr: float
    n: int

    @classmethod
    def of(cls, values: np.ndarray) -> "Estimate":
        values = np.asarray(values, dtype=np.float64)
        stderr = float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else float("nan")
        return cls(float(values.mean()), stderr, int(values.size))

    def __str__(self):
        return f"{self.mean:.2f} +- {self.stderr:.2f}"


# Decoder rows per forward pass in evaluation. A pass holds about 5 KB per row
# (784 logits, the hidden units, z), so 2,000 rows keep it near 10 MB, where a
# whole chunk (100 images x 500 samples) in one pass would hold hundreds of MB;
# a pass this size is still large enough that the matrix products run at speed.
ROWS_PER_FORWARD = 2000


def importance_sampled_bound(model, params, x, num_samples, rng, chunk_k=500):
    """Per-example log 1/S sum_s w_s for clean x: (B, D), drawing S = ``num_samples``
    samples in chunks. Returns (B,) float64.

    eps is drawn a chunk at a time for all B images, so the random stream
    depends only on B, S and ``chunk_k``; the model then sees a few images at
    a time (:data:`ROWS_PER_FORWARD`), which changes no draw. (The estimates
    can move by float32 rounding, about 1e-5 nats on MNIST, as BLAS may sum in
    another order for another number of rows.)
    """
    B, Z = x.shape[0], model.config.latent
    x_tilde = x[:, None, :]
    running = np.full(B, -np.inf)          # log sum_s w_s so far
    drawn = 0
    while drawn < num_samples:
        k = min(chunk_k, num_samples - drawn)
        eps = model.ops.standard_normal(rng, (B, 1, k, Z), x.dtype)
        chunk_lme = np.empty(B)
        images_per_pass = max(1, ROWS_PER_FORWARD // k)
        for first in range(0, B, images_per_pass):
            part = slice(first, first + images_per_pass)
            log_w, _ = model.forward(params, x[part], x_tilde[part], eps[part], with_grad=False)
            chunk_lme[part] = model.ops.log_mean_exp(log_w[:, 0, :])[0]
        running = np.logaddexp(running, chunk_lme + math.log(k))
        drawn += k
    return running - math.log(num_samples)


def denoising_bound(model, params, x, corruption, bound, num_corruptions_m, num_samples_k, rng):
    """The training objective (eq. 11 or 12) on x with fresh corruption and eps."""
    x_tilde = corruption.sample(x, num_corruptions_m, rng)
    eps = model.ops.standard_normal(rng, (x.shape[0], num_corruptions_m, num_samples_k, model.config.latent),
                                    x.dtype)
    return model.bound(params, x, x_tilde, eps, bound).astype(np.float64)


EVALUATION_BATCH = 50   # images per batch; the importance samples' stream depends on it


def evaluate_model(model, params, images_of, num_examples, *, k=5, is_samples=5000, corruption=None,
                   bound="elbo", num_corruptions_m=1, num_samples_k=1, seed=0, batch_size=EVALUATION_BATCH,
                   chunk_k=500, progress=None) -> dict:
    """All figures for ``num_examples`` images, ``images_of(indices) -> (B, D)``.

    Returns {"elbo", "iwae_k", "log_likelihood", "denoising_bound"} -> Estimate
    (the last only with a ``corruption``), plus "k" and "is_samples". The denoising
    bound draws from a stream of its own, so asking for it changes no other figure.
    """
    rng = np.random.default_rng(seed)
    corruption_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    per_example = {"elbo": [], "iwae_k": [], "log_likelihood": []}
    if corruption is not None:
        per_example["denoising_bound"] = []
    for start in range(0, num_examples, batch_size):
        x = images_of(np.arange(start, min(num_examples, start + batch_size)))
        per_example["elbo"].append(importance_sampled_bound(model, params, x, 1, rng, chunk_k))
        per_example["iwae_k"].append(importance_sampled_bound(model, params, x, k, rng, chunk_k))
        per_example["log_likelihood"].append(importance_sampled_bound(model, params, x, is_samples, rng, chunk_k))
        if corruption is not None:
            per_example["denoising_bound"].append(denoising_bound(
                model, params, x, corruption, bound, num_corruptions_m, num_samples_k, corruption_rng))
        if progress:
            progress(min(num_examples, start + batch_size), num_examples)
    results = {name: Estimate.of(np.concatenate(values)) for name, values in per_example.items()}
    return {"k": k, "is_samples": is_samples, **results}


def results_to_dict(results: dict) -> dict:
    return {name: (asdict(value) if isinstance(value, Estimate) else value) for name, value in results.items()}


def evaluate_run(model, params, dataset, config, split="test", num_examples=None, *, k=None, is_samples=5000,
                 seed=None, batch_size=EVALUATION_BATCH, corruption=None, progress=None) -> dict:
    """The evaluation protocol of a trained run, the one ``npdvae evaluate`` and the grids
    share: :func:`evaluate_model` on the first ``num_examples`` images of ``split`` (default:
    all), with the run's K and seed unless others are given; the training split's dynamic
    binarization draws from its own stream (seed + 1)."""
    n = dataset.num_examples(split) if num_examples is None else min(num_examples, dataset.num_examples(split))
    seed = config.seed if seed is None else seed
    images_rng = np.random.default_rng(seed + 1)
    return evaluate_model(model, params, lambda idx: dataset.batch(split, idx, images_rng), n,
                          k=config.k if k is None else k, is_samples=is_samples, corruption=corruption,
                          bound=config.bound, num_corruptions_m=config.m, num_samples_k=config.k, seed=seed,
                          batch_size=batch_size, progress=progress)
