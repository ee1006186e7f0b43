"""Densities of the model and the reparameterized sampler, with gradients.

Shapes, with N = B*M rows of the encoder (one per corrupted copy x~), K
samples of z per row, Z latent units, D pixels and S = M*K decoder rows per
example:

    mu, log_sigma2 : (N, Z)        parameters of q(z | x~), a diagonal Gaussian
    eps, z         : (N, K, Z)     z = mu + sigma * eps
    x              : (B, D)        the CLEAN data: likelihoods always score x
    logits         : (B, S, D)     Bernoulli decoder output
    mean, log_var  : (B, S, D)     Gaussian decoder output

Everywhere ``log_sigma2`` is a log-variance: sigma = exp(log_sigma2 / 2).
Sampling with exp(log_sigma2) as a standard deviation while scoring it as a
log-variance would silently stop the objective from being a bound.
"""

from __future__ import annotations

import numpy as np
from numba import njit

LOG_2PI = float(np.log(2.0 * np.pi))

# --------------------------------------------------------------------------
# Reparameterization: z = mu + exp(log_sigma2 / 2) * eps,  eps ~ N(0, I)
# --------------------------------------------------------------------------


def _reparameterize_ref(mu, log_sigma2, eps):
    return mu[:, None, :] + np.exp(0.5 * log_sigma2)[:, None, :] * eps


def _reparameterize_backward_ref(d_z, log_sigma2, eps):
    """dz/dmu = 1 and dz/dlog_sigma2 = sigma * eps / 2, summed over the K samples."""
    sigma = np.exp(0.5 * log_sigma2)
    d_mu = d_z.sum(axis=1)
    d_log_sigma2 = 0.5 * sigma * (d_z * eps).sum(axis=1)
    return d_mu, d_log_sigma2


@njit(cache=True)
def reparameterize_kernel(mu, log_sigma2, eps):
    N, K, Z = eps.shape
    z = np.empty_like(eps)
    for n in range(N):
        for j in range(Z):
            sigma = np.exp(0.5 * log_sigma2[n, j])
            for k in range(K):
                z[n, k, j] = mu[n, j] + sigma * eps[n, k, j]
    return z


@njit(cache=True)
def reparameterize_backward_kernel(d_z, log_sigma2, eps):
    N, K, Z = eps.shape
    d_mu = np.zeros_like(log_sigma2)
    d_log_sigma2 = np.zeros_like(log_sigma2)
    for n in range(N):
        for j in range(Z):
            half_sigma = 0.5 * np.exp(0.5 * log_sigma2[n, j])
            for k in range(K):
                d_mu[n, j] += d_z[n, k, j]
                d_log_sigma2[n, j] += half_sigma * d_z[n, k, j] * eps[n, k, j]
    return d_mu, d_log_sigma2


def draw_eps(rng: np.random.Generator, num_rows: int, num_samples_k: int, latent_dim: int, dtype):
    """eps ~ N(0, I) of shape (N, K, Z), drawn from the caller's generator."""
    return rng.standard_normal((num_rows, num_samples_k, latent_dim), dtype=np.float64).astype(
        dtype, copy=False
    )


# --------------------------------------------------------------------------
# log q(z | x~) = sum_j log N(z_j; mu_j, sigma_j^2)
#              = -1/2 sum_j [log 2 pi + log_sigma2_j + (z_j - mu_j)^2 / sigma_j^2]
# --------------------------------------------------------------------------


def _gaussian_log_prob_ref(z, mu, log_sigma2):
    inv_var = np.exp(-log_sigma2)[:, None, :]
    sq = (z - mu[:, None, :]) ** 2 * inv_var
    return -0.5 * (LOG_2PI + log_sigma2[:, None, :] + sq).sum(axis=2)


def _gaussian_log_prob_backward_ref(d_lp, z, mu, log_sigma2):
    """Partial derivatives, with z held fixed (the sampler path adds the rest):

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


@njit(cache=True)
def gaussian_log_prob_kernel(z, mu, log_sigma2):
    N, K, Z = z.shape
    out = np.empty((N, K), dtype=z.dtype)
    for n in range(N):
        for k in range(K):
            acc = 0.0
            for j in range(Z):
                diff = z[n, k, j] - mu[n, j]
                acc += LOG_2PI + log_sigma2[n, j] + diff * diff * np.exp(-log_sigma2[n, j])
            out[n, k] = -0.5 * acc
    return out


@njit(cache=True)
def gaussian_log_prob_backward_kernel(d_lp, z, mu, log_sigma2):
    N, K, Z = z.shape
    d_z = np.empty_like(z)
    d_mu = np.zeros_like(mu)
    d_log_sigma2 = np.zeros_like(log_sigma2)
    for n in range(N):
        for j in range(Z):
            inv_var = np.exp(-log_sigma2[n, j])
            for k in range(K):
                d = d_lp[n, k]
                scaled = (z[n, k, j] - mu[n, j]) * inv_var
                d_z[n, k, j] = -d * scaled
                d_mu[n, j] += d * scaled
                d_log_sigma2[n, j] += d * (0.5 * scaled * (z[n, k, j] - mu[n, j]) - 0.5)
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


def _bernoulli_log_likelihood_ref(x, logits):
    softplus = np.maximum(logits, 0) + np.log1p(np.exp(-np.abs(logits)))
    return (x[:, None, :] * logits - softplus).sum(axis=2)


def _bernoulli_log_likelihood_backward_ref(d_ll, x, logits):
    """d/dl_d = x_d - sigmoid(l_d)."""
    e = np.exp(-np.abs(logits))
    sigmoid = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))
    return d_ll[:, :, None] * (x[:, None, :] - sigmoid)


@njit(cache=True)
def bernoulli_log_likelihood_kernel(x, logits):
    B, S, D = logits.shape
    out = np.empty((B, S), dtype=logits.dtype)
    for b in range(B):
        for s in range(S):
            acc = 0.0
            for d in range(D):
                v = logits[b, s, d]
                acc += x[b, d] * v - (max(v, 0.0) + np.log1p(np.exp(-abs(v))))
            out[b, s] = acc
    return out


@njit(cache=True)
def bernoulli_log_likelihood_backward_kernel(d_ll, x, logits):
    B, S, D = logits.shape
    d_logits = np.empty_like(logits)
    for b in range(B):
        for s in range(S):
            g = d_ll[b, s]
            for d in range(D):
                v = logits[b, s, d]
                e = np.exp(-abs(v))
                sig = 1.0 / (1.0 + e) if v >= 0 else e / (1.0 + e)
                d_logits[b, s, d] = g * (x[b, d] - sig)
    return d_logits


# --------------------------------------------------------------------------
# Gaussian log p(x | z) with per-pixel mean and log-variance (Frey Face):
#   sum_d -1/2 [log 2 pi + log_var_d + (x_d - mean_d)^2 / var_d]
# --------------------------------------------------------------------------


def _gaussian_log_likelihood_ref(x, mean, log_var):
    diff = x[:, None, :] - mean
    return -0.5 * (LOG_2PI + log_var + diff * diff * np.exp(-log_var)).sum(axis=2)


def _gaussian_log_likelihood_backward_ref(d_ll, x, mean, log_var):
    """d/dmean = (x - mean) / var,   d/dlog_var = -1/2 + (x - mean)^2 / (2 var)."""
    diff = x[:, None, :] - mean
    scaled = diff * np.exp(-log_var)
    d = d_ll[:, :, None]
    return d * scaled, d * (0.5 * diff * scaled - 0.5)


@njit(cache=True)
def gaussian_log_likelihood_kernel(x, mean, log_var):
    B, S, D = mean.shape
    out = np.empty((B, S), dtype=mean.dtype)
    for b in range(B):
        for s in range(S):
            acc = 0.0
            for d in range(D):
                diff = x[b, d] - mean[b, s, d]
                acc += LOG_2PI + log_var[b, s, d] + diff * diff * np.exp(-log_var[b, s, d])
            out[b, s] = -0.5 * acc
    return out


@njit(cache=True)
def gaussian_log_likelihood_backward_kernel(d_ll, x, mean, log_var):
    B, S, D = mean.shape
    d_mean = np.empty_like(mean)
    d_log_var = np.empty_like(log_var)
    for b in range(B):
        for s in range(S):
            g = d_ll[b, s]
            for d in range(D):
                diff = x[b, d] - mean[b, s, d]
                scaled = diff * np.exp(-log_var[b, s, d])
                d_mean[b, s, d] = g * scaled
                d_log_var[b, s, d] = g * (0.5 * diff * scaled - 0.5)
    return d_mean, d_log_var
