"""log p(x) by annealed importance sampling (Neal 2001), as used for VAEs by Wu et al. (2017).

The path. From a start density q0(z) to the posterior p(z | x), which is proportional to
p(x, z), through T intermediate densities

    f_t(z) = q0(z)^(1 - beta_t) p(x, z)^beta_t,    0 = beta_0 < beta_1 < ... < beta_T = 1.

q0 is the prior p(z) (``start="prior"``), where f_t(z) = p(z) p(x | z)^beta_t, or the
encoder's q(z | x) (``start="encoder"``), which begins the path nearer its end.

The weight. Each chain starts at z_0 ~ q0 and, for t = 1..T, adds

    log w += (beta_t - beta_{t-1}) [log p(x, z_{t-1}) - log q0(z_{t-1})]

and then moves z by one HMC transition that leaves f_t invariant. E[w] = p(x) exactly, for
any T; log of the mean of w over C chains is a stochastic lower bound on log p(x) that
tightens as T grows (the variance of log w falls).

The transition. Hamiltonian Monte Carlo on U(z) = -log f_t(z) with unit mass: a momentum
p ~ N(0, I), ``leapfrog`` steps of size eps_t, then a Metropolis accept of the end point
with probability min(1, exp(H_0 - H_L)), H = U + |p|^2 / 2, chain by chain. The step sizes
eps_t are settled beforehand by :func:`adapt_step_sizes` on warm-up images (never the
images being scored): run the same path and, after each transition, multiply eps by 1.02
when the chains' acceptance rate is above the target (0.65) and by 0.98 when below (Wu et
al.'s rule); the values met on the way are the schedule. A fixed schedule keeps every
transition a valid MCMC kernel for its f_t, so the estimate stays unbiased in w.

The schedule of beta. Sigmoidal (Grosse et al. 2015): beta_t proportional to
sigmoid(delta (2t/T - 1)), shifted and scaled to run from 0 to 1, with delta = 4: small
steps at both ends of the path, where f_t changes fastest.

Gradients. d log f_t / dz = (1 - beta) d log q0/dz + beta (d log p(x|z)/dz - z), with
d log p(x|z)/dz from the decoder's backward (:mod:`npdvae.evaluation.joint`) and
d log q0/dz = -(z - mu) / sigma^2 (or -z for the prior). All sums of log-weights are in
float64; the decoder runs in the parameters' dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npdvae.evaluation.joint import log_joint
from npdvae.vae import distributions as dist

STARTS = ("prior", "encoder")
TARGET_ACCEPTANCE = 0.65
SIGMOID_DELTA = 4.0


@dataclass(frozen=True)
class AISSettings:
    """T intermediate densities, C chains per image, L leapfrog steps per transition."""

    steps: int = 500
    chains: int = 16
    leapfrog: int = 10
    start: str = "encoder"     # settled on training images: 500 steps from q(z|x) match 2000 (results/README.md)
    initial_step_size: float = 0.05

    def __post_init__(self):
        for name in ("steps", "chains", "leapfrog"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ValueError(f"AIS {name} must be an integer >= 1, got {getattr(self, name)}")
        if self.start not in STARTS:
            raise ValueError(f"AIS start must be one of {STARTS}, got {self.start!r}")
        if not self.initial_step_size > 0:
            raise ValueError(f"AIS initial_step_size must be > 0, got {self.initial_step_size}")


def sigmoid_schedule(steps: int, delta: float = SIGMOID_DELTA) -> np.ndarray:
    """beta_0 = 0 < ... < beta_T = 1, (T + 1,) float64: sigmoid(delta (2t/T - 1)) rescaled."""
    s = 1.0 / (1.0 + np.exp(-delta * (2.0 * np.arange(steps + 1) / steps - 1.0)))
    return (s - s[0]) / (s[-1] - s[0])


class _Path:
    """log f_beta and its z-gradient for a batch of images, given the start density."""

    def __init__(self, model, params, x, chains, start):
        self.model, self.params, self.x, self.start = model, params, x, start
        self.dtype = params["decoder.hidden0.W"].dtype
        B, Z = x.shape[0], model.config.latent
        if start == "encoder":
            mu, log_sigma2, _ = model.encode(params, np.ascontiguousarray(x))
            self.mu = mu.astype(np.float64)[:, None, :]                    # (B, 1, Z)
            self.log_sigma2 = log_sigma2.astype(np.float64)[:, None, :]
        else:
            self.mu = np.zeros((B, 1, Z))
            self.log_sigma2 = np.zeros((B, 1, Z))
        self.shape = (B, chains, Z)

    def sample_start(self, rng):
        eps = rng.standard_normal(self.shape)
        return self.mu + np.exp(0.5 * self.log_sigma2) * eps

    def log_q0(self, z):
        sq = (z - self.mu) ** 2 * np.exp(-self.log_sigma2)
        return -0.5 * (dist.LOG_2PI + self.log_sigma2 + sq).sum(axis=2)

    def evaluate(self, z, beta, with_grad=True):
        """(log p(x, z) - log q0(z), log f_beta(z), d log f_beta / dz); float64 except the decoder."""
        terms = log_joint(self.model, self.params, self.x, z.astype(self.dtype), with_grad)
        log_p = terms.log_likelihood.astype(np.float64) + dist.standard_normal_log_prob(z)
        log_q0 = self.log_q0(z)
        log_f = (1.0 - beta) * log_q0 + beta * log_p
        if not with_grad:
            return log_p - log_q0, log_f, None
        d_log_p = terms.d_log_likelihood.astype(np.float64) - z
        d_log_q0 = -(z - self.mu) * np.exp(-self.log_sigma2)
        return log_p - log_q0, log_f, (1.0 - beta) * d_log_q0 + beta * d_log_p


def hmc_transition(path: _Path, z, beta, step_size, leapfrog, rng):
    """One HMC move leaving f_beta invariant, chain by chain. Returns (z, log p - log q0 at z,
    acceptance rate over the chains). ``step_size`` is a scalar."""
    difference, log_f, grad = path.evaluate(z, beta)
    momentum = rng.standard_normal(z.shape)
    h_start = -log_f + 0.5 * (momentum ** 2).sum(axis=2)
    z_new, p = z.copy(), momentum + 0.5 * step_size * grad
    for step in range(leapfrog):
        z_new += step_size * p
        new_difference, new_log_f, new_grad = path.evaluate(z_new, beta)
        p += (step_size if step < leapfrog - 1 else 0.5 * step_size) * new_grad
    h_end = -new_log_f + 0.5 * (p ** 2).sum(axis=2)
    # a NaN end (a step far into a region the decoder scores as -inf) is rejected
    log_accept = np.where(np.isfinite(h_end), h_start - h_end, -np.inf)
    accept = np.log(rng.random(log_accept.shape)) < log_accept
    z = np.where(accept[..., None], z_new, z)
    difference = np.where(accept, new_difference, difference)
    return z, difference, float(accept.mean())


def anneal(model, params, x, settings: AISSettings, step_sizes, rng, adapt=False, tick=None):
    """One AIS run for images x (B, D): per image log 1/C sum_c w_c, (B,) float64, and the
    step sizes used ((T,); when ``adapt``, the ones the adaptation rule met). ``tick(fraction)``
    hears the share of the path done, about 50 times along it."""
    betas = sigmoid_schedule(settings.steps)
    path = _Path(model, params, x, settings.chains, settings.start)
    z = path.sample_start(rng)
    log_w = np.zeros(z.shape[:2])
    difference, _, _ = path.evaluate(z, 0.0, with_grad=False)
    used = np.empty(settings.steps)
    step_size = settings.initial_step_size if adapt else None
    for t in range(1, settings.steps + 1):
        log_w += (betas[t] - betas[t - 1]) * difference
        if not adapt:
            step_size = float(step_sizes[t - 1])
        used[t - 1] = step_size
        z, difference, accepted = hmc_transition(path, z, betas[t], step_size, settings.leapfrog, rng)
        if adapt:
            step_size *= 1.02 if accepted > TARGET_ACCEPTANCE else 0.98
        if tick and (t % max(1, settings.steps // 50) == 0 or t == settings.steps):
            tick(t / settings.steps)
    return model.ops.log_mean_exp(log_w)[0], used


def adapt_step_sizes(model, params, warmup_x, settings: AISSettings, rng, tick=None) -> np.ndarray:
    """The step-size schedule (T,) for ``settings``, adapted on ``warmup_x`` (images that will
    not be scored); see the module docstring."""
    _, used = anneal(model, params, warmup_x, settings, None, rng, adapt=True, tick=tick)
    return used


def ais_log_likelihood(model, params, images_of, num_examples, settings: AISSettings, step_sizes, rng,
                       batch_size=25, progress=None) -> np.ndarray:
    """Per-example AIS estimates of log p(x), (N,) float64, ``batch_size`` images at a time
    (memory: batch_size * chains decoder rows). ``images_of(indices) -> (B, D)``."""
    if len(step_sizes) != settings.steps:
        raise ValueError(f"{len(step_sizes)} step sizes for {settings.steps} AIS steps")
    estimates = []
    for first in range(0, num_examples, batch_size):
        x = images_of(np.arange(first, min(num_examples, first + batch_size)))
        estimate, _ = anneal(model, params, x, settings, step_sizes, rng)
        estimates.append(estimate)
        if progress:
            progress(min(num_examples, first + batch_size), num_examples)
    return np.concatenate(estimates) if estimates else np.empty(0)


__all__ = ["AISSettings", "sigmoid_schedule", "hmc_transition", "anneal", "adapt_step_sizes",
           "ais_log_likelihood", "STARTS", "TARGET_ACCEPTANCE"]
