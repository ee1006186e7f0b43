"""The locally optimal factorized Gaussian q*(z) of each example (Cremer, Li and Duvenaud 2018).

The encoder gives every image x a Gaussian q(z | x) = N(mu(x), diag exp(log_sigma2(x))).
The best Gaussian of the same family for that one image is the one that maximizes the ELBO

    L(mu, log_sigma2) = E_{eps ~ N(0, I)} [log p(x, z)] + H(q),   z = mu + sigma * eps,
    H(q) = 1/2 sum_j (log 2 pi e + log_sigma2_j),

found here by Adam on (mu, log_sigma2), started from the encoder's output, with S fresh
samples of eps per step and a rate that falls over the steps. The gradients, by the reparameterization (eq. 4's trick):

    dL/dmu         = E[g],                       g = d log p(x, z) / dz,
    dL/dlog_sigma2 = E[g * sigma * eps] / 2 + 1/2,

with g from the decoder's backward (:mod:`npdvae.evaluation.joint`). The entropy is taken in
closed form during the search (a lower-variance gradient); the bound reported for q* is
scored afterwards with the same estimator as the encoder's, log p(x, z) - log q(z), on fresh
samples, so the two can be compared term for term.

Whether the search has converged: the mean bound estimate of the last tenth of the steps
against that of the tenth before it (``last_change``); near 0 means it stopped moving.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npdvae.evaluation.joint import log_joint
from npdvae.training.optim import Adam
from npdvae.vae import distributions as dist
from npdvae.vae.bounds import log_mean_exp


@dataclass(frozen=True)
class LocalOptimumSettings:
    """Adam steps and rate, and S samples of eps per step. The rate falls geometrically to
    ``final_lr_fraction`` of itself over the steps: large steps to travel, small ones to
    settle where the noise of the sampled gradient would otherwise keep q* jittering."""

    steps: int = 2000          # settled on training images: 500 left 0.05 nats to gain (results/README.md)
    lr: float = 1e-2
    samples: int = 10
    final_lr_fraction: float = 0.1

    def __post_init__(self):
        for name in ("steps", "samples"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ValueError(f"local optimum {name} must be an integer >= 1, got {getattr(self, name)}")
        if self.steps < 20:
            raise ValueError(f"local optimum steps must be >= 20 (the convergence check compares tenths), "
                             f"got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"local optimum lr must be > 0, got {self.lr}")
        if not 0 < self.final_lr_fraction <= 1:
            raise ValueError(f"local optimum final_lr_fraction must be in (0, 1], got {self.final_lr_fraction}")


def gaussian_log_weights(model, params, x, mu, log_sigma2, eps) -> np.ndarray:
    """log w_s = log p(x, z_s) - log q(z_s), z_s = mu + sigma * eps_s, for q = N(mu, diag
    exp(log_sigma2)) (B, Z) and eps (B, S, Z): (B, S) float64."""
    z = dist.reparameterize(mu, log_sigma2, eps)
    terms = log_joint(model, params, x, z, with_grad=False)
    log_q = dist.gaussian_log_prob(z, mu, log_sigma2)
    return terms.log_joint.astype(np.float64) - log_q


def gaussian_bound(model, params, x, mu, log_sigma2, eps) -> np.ndarray:
    """The ELBO estimator log p(x, z) - log q(z) averaged over eps (B, S, Z), for q = N(mu,
    diag exp(log_sigma2)) (B, Z): (B,) float64, the figure both the encoder and q* are scored by."""
    return gaussian_log_weights(model, params, x, mu, log_sigma2, eps).mean(axis=1)


def grouped_iw_bound(log_w, k: int) -> np.ndarray:
    """The importance-weighted bound with K = k samples (eq. 12 at M = 1), estimated from
    log_w (B, S): the S log-weights are split into floor(S / k) groups of k, and

        L_k = 1/G sum_g log 1/k sum_{s in g} w_s,

    (B,) float64. At k = 1 it is the ELBO estimate; as k grows it rises toward log p(x)."""
    groups = log_w.shape[1] // k
    if groups < 1:
        raise ValueError(f"{log_w.shape[1]} samples cannot make a group of k = {k}")
    lme, _ = log_mean_exp(log_w[:, :groups * k].reshape(log_w.shape[0], groups, k))
    return lme.mean(axis=1)


def bound_gradients(model, params, x, mu, log_sigma2, eps):
    """The ELBO with closed-form entropy, (B,) float64, and its gradients with respect to mu and
    log_sigma2, each (B, Z), estimated with eps (B, S, Z); see the module docstring."""
    sigma = np.exp(0.5 * log_sigma2)
    z = mu[:, None, :] + sigma[:, None, :] * eps
    terms = log_joint(model, params, x, z)
    g = terms.d_log_likelihood - z                                  # d log p(x, z) / dz, (B, S, Z)
    entropy = 0.5 * (log_sigma2.shape[1] * (dist.LOG_2PI + 1.0) + log_sigma2.sum(axis=1))
    value = terms.log_joint.astype(np.float64).mean(axis=1) + entropy
    d_mu = g.mean(axis=1)
    d_log_sigma2 = 0.5 * (g * eps).mean(axis=1) * sigma + 0.5
    return value, d_mu, d_log_sigma2


def optimize_gaussian(model, params, x, mu, log_sigma2, settings: LocalOptimumSettings, rng):
    """Adam from (mu, log_sigma2) (B, Z) toward q*; returns (mu*, log_sigma2*, trace), where
    trace (steps,) is the batch's mean bound estimate at each step."""
    adam = Adam({"mu": mu, "log_sigma2": log_sigma2}, lr=settings.lr)
    B, Z = mu.shape
    trace = np.empty(settings.steps)
    for step in range(settings.steps):
        eps = rng.standard_normal((B, settings.samples, Z)).astype(mu.dtype)
        value, d_mu, d_log_sigma2 = bound_gradients(model, params, x, adam.params["mu"],
                                                    adam.params["log_sigma2"], eps)
        trace[step] = value.mean()
        adam.step({"mu": d_mu.astype(mu.dtype), "log_sigma2": d_log_sigma2.astype(mu.dtype)},
                  lr=settings.lr * settings.final_lr_fraction ** (step / settings.steps))
    return adam.params["mu"], adam.params["log_sigma2"], trace


def last_change(trace: np.ndarray) -> float:
    """Mean of the last tenth of a trace minus the mean of the tenth before it."""
    tenth = max(1, len(trace) // 10)
    return float(trace[-tenth:].mean() - trace[-2 * tenth:-tenth].mean())


__all__ = ["LocalOptimumSettings", "gaussian_log_weights", "gaussian_bound", "grouped_iw_bound", "bound_gradients", "optimize_gaussian", "last_change"]
