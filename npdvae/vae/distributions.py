"""The densities of the model and the reparameterized sampler, each beside its backward.

Shapes, with N = B*M rows of the encoder (one per corrupted copy x~), K samples of z per
row, Z latent units, D pixels and S = M*K decoder rows per example:

    mu, log_sigma2 : (N, Z)        parameters of q(z | x~), a diagonal Gaussian
    eps, z         : (N, K, Z)     z = mu + sigma * eps
    x              : (B, D)        the CLEAN data: likelihoods always score x
    logits         : (B, S, D)     Bernoulli decoder output
    mean, log_var  : (B, S, D)     Gaussian decoder output

Everywhere ``log_sigma2`` is a log-variance: sigma = exp(log_sigma2 / 2). Sampling with
exp(log_sigma2) as a standard deviation while scoring it as a log-variance would silently
stop the objective from being a bound. The fused Numba twins are in
:mod:`npdvae.kernels.distributions`.
"""

from __future__ import annotations

import numpy as np

LOG_2PI = float(np.log(2.0 * np.pi))

# --------------------------------------------------------------------------
# Reparameterization: z = mu + exp(log_sigma2 / 2) * eps,  eps ~ N(0, I)
# --------------------------------------------------------------------------


def reparameterize(mu, log_sigma2, eps):
    """mu, log_sigma2 (N, Z), eps (N, K, Z) -> z (N, K, Z)."""
    return mu[:, None, :] + np.exp(0.5 * log_sigma2)[:, None, :] * eps


def reparameterize_backward(d_z, log_sigma2, eps):
    """dz/dmu = 1 and dz/dlog_sigma2 = sigma * eps / 2, summed over the K samples:
    d_z (N, K, Z) -> d_mu, d_log_sigma2 (N, Z)."""
    sigma = np.exp(0.5 * log_sigma2)
    d_mu = d_z.sum(axis=1)
    d_log_sigma2 = 0.5 * sigma * (d_z * eps).sum(axis=1)
    return d_mu, d_log_sigma2


# --------------------------------------------------------------------------
# log q(z | x~) = sum_j log N(z_j; mu_j, sigma_j^2)
#              = -1/2 sum_j [log 2 pi + log_sigma2_j + (z_j - mu_j)^2 / sigma_j^2]
# --------------------------------------------------------------------------


def gaussian_log_prob(z, mu, log_sigma2):
    """z (N, K, Z), mu, log_sigma2 (N, Z) -> log q (N, K)."""
    inv_var = np.exp(-log_sigma2)[:, None, :]
    sq = (z - mu[:, None, :]) ** 2 * inv_var
    return -0.5 * (LOG_2PI + log_sigma2[:, None, :] + sq).sum(axis=2)


def gaussian_log_prob_backward(d_lp, z, mu, log_sigma2):
    """Partial derivatives, with z held fixed (the sampler's path adds the rest):

        d/dz = -(z - mu) / sigma^2,   d/dmu = (z - mu) / sigma^2,
        d/dlog_sigma2 = -1/2 + (z - mu)^2 / (2 sigma^2).
    """
    inv_var = np.exp(-log_sigma2)[:, None, :]
    diff = z - mu[:, None, :]
    d = d_lp[:, :, None]
    d_z = -d * diff * inv_var
    d_mu = (d * diff * inv_var).sum(axis=1)
    d_log_sigma2 = (d * (0.5 * diff * diff * inv_var - 0.5)).sum(axis=1)
    return d_z, d_mu, d_log_sigma2


# --------------------------------------------------------------------------
# log p(z) = -1/2 sum_j [log 2 pi + z_j^2]   (standard normal prior)
# --------------------------------------------------------------------------


def standard_normal_log_prob(z):
    """z: (..., Z) -> (...)."""
    return -0.5 * (LOG_2PI * z.shape[-1] + np.einsum("...j,...j->...", z, z))


def standard_normal_log_prob_backward(d_lp, z):
    """d log p(z) / dz = -z."""
    return -d_lp[..., None] * z


# --------------------------------------------------------------------------
# Bernoulli log p(x | z) from logits l:  sum_d x_d l_d - softplus(l_d)
# (log sigmoid(l) = l - softplus(l) and log(1 - sigmoid(l)) = -softplus(l),
#  so no probability is ever formed and |l| up to 1e4 stays finite.)
# --------------------------------------------------------------------------


def flush_subnormal(a):
    """``a`` with every entry below the dtype's smallest normal number in magnitude set to 0.

    Why: a trained MNIST decoder drives the logits of the always-black border pixels below
    -80, where 1 - sigmoid is about 1e-36 and its product with dL/d(log p) (at most 1/B) is
    subnormal. Subnormal operands send every multiply of the matrix products that read this
    gradient through a slow microcode path, and training slows down more and more as it goes.
    Flushed, the change to any parameter is below what float32 can hold next to it: Adam
    divides the moment by sqrt(v) + 1e-8, so a gradient of 1e-38 moves a weight by about
    1e-33 times the learning rate."""
    return np.where(np.abs(a) < np.finfo(a.dtype).tiny, np.zeros((), a.dtype), a)


def bernoulli_log_likelihood(x, logits, with_grad=True):
    """x (B, D), logits (B, S, D) -> log p(x | z) (B, S), and the cache for the backward."""
    softplus = np.maximum(logits, 0) + np.log1p(np.exp(-np.abs(logits)))
    return (x[:, None, :] * logits - softplus).sum(axis=2), (x, logits)


def bernoulli_log_likelihood_backward(d_ll, cache):
    """d/dl_d = x_d - sigmoid(l_d), times dL/d(log p) (B, S), flushed (:func:`flush_subnormal`)."""
    x, logits = cache
    e = np.exp(-np.abs(logits))
    sigmoid = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))
    return flush_subnormal(d_ll[:, :, None] * (x[:, None, :] - sigmoid))


# --------------------------------------------------------------------------
# Gaussian log p(x | z) with per-pixel mean and log-variance (Frey Face):
#   sum_d -1/2 [log 2 pi + log_var_d + (x_d - mean_d)^2 / var_d]
# --------------------------------------------------------------------------


def gaussian_log_likelihood(x, mean, log_var, with_grad=True):
    """x (B, D), mean, log_var (B, S, D) -> log p(x | z) (B, S), and the cache for the backward."""
    diff = x[:, None, :] - mean
    return -0.5 * (LOG_2PI + log_var + diff * diff * np.exp(-log_var)).sum(axis=2), (x, mean, log_var)


def gaussian_log_likelihood_backward(d_ll, cache):
    """d/dmean = (x - mean) / var,   d/dlog_var = -1/2 + (x - mean)^2 / (2 var), times dL/d(log p),
    flushed (:func:`flush_subnormal`)."""
    x, mean, log_var = cache
    diff = x[:, None, :] - mean
    scaled = diff * np.exp(-log_var)
    d = d_ll[:, :, None]
    return flush_subnormal(d * scaled), flush_subnormal(d * (0.5 * diff * scaled - 0.5))
