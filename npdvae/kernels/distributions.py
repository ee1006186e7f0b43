"""Twins of :mod:`npdvae.vae.distributions`: the sampler, log q and the two likelihoods as
fused loops. Each takes its transcendental (sigma, 1/sigma^2) from one NumPy ufunc beforehand,
or from :mod:`npdvae.kernels.vecmath` inside the loop, and runs its innermost loop over
contiguous memory, so that it vectorizes."""

from __future__ import annotations

import numpy as np
from numba import njit

from npdvae.kernels.fastmath import ERROR_MODEL, FASTMATH
from npdvae.kernels.vecmath import exp_nonpositive, log1p_unit
from npdvae.vae.distributions import LOG_2PI

# --------------------------------------------------------------------------
# z = mu + sigma eps and its backward; the latent unit j runs innermost
# --------------------------------------------------------------------------


@njit(cache=True, error_model=ERROR_MODEL)
def _reparameterize(mu, sigma, eps):
    N, K, Z = eps.shape
    z = np.empty_like(eps)
    for n in range(N):
        for k in range(K):
            for j in range(Z):
                z[n, k, j] = mu[n, j] + sigma[n, j] * eps[n, k, j]
    return z


@njit(cache=True, error_model=ERROR_MODEL)
def _reparameterize_backward(d_z, sigma, eps):
    N, K, Z = eps.shape
    half = np.ones(1, sigma.dtype)[0] / 2
    d_mu = np.zeros_like(sigma)
    d_log_sigma2 = np.zeros_like(sigma)
    for n in range(N):
        for k in range(K):
            for j in range(Z):
                d_mu[n, j] += d_z[n, k, j]
                d_log_sigma2[n, j] += d_z[n, k, j] * eps[n, k, j]
        for j in range(Z):
            d_log_sigma2[n, j] *= half * sigma[n, j]
    return d_mu, d_log_sigma2


def reparameterize(mu, log_sigma2, eps):
    return _reparameterize(mu, np.exp(log_sigma2 * log_sigma2.dtype.type(0.5)), eps)


def reparameterize_backward(d_z, log_sigma2, eps):
    return _reparameterize_backward(d_z, np.exp(log_sigma2 * log_sigma2.dtype.type(0.5)), eps)


# --------------------------------------------------------------------------
# log q(z | x~) and its partials; inv_var = e^-log_sigma2 from NumPy
# --------------------------------------------------------------------------


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _gaussian_log_prob(z, mu, log_sigma2, inv_var):
    """The first two terms of -1/2 [Z log 2 pi + sum_j log_sigma2_j + sum_j (z_j - mu_j)^2
    inv_var_j] are the same for a row's K samples."""
    N, K, Z = z.shape
    zero = np.zeros(1, z.dtype)[0]
    out = np.empty((N, K), dtype=z.dtype)
    for n in range(N):
        row_constant = Z * LOG_2PI
        for j in range(Z):
            row_constant += log_sigma2[n, j]
        for k in range(K):
            acc = zero
            for j in range(Z):
                diff = z[n, k, j] - mu[n, j]
                acc += diff * diff * inv_var[n, j]
            out[n, k] = -0.5 * (row_constant + acc)
    return out


@njit(cache=True, error_model=ERROR_MODEL)
def _gaussian_log_prob_backward(d_lp, z, mu, inv_var):
    """With s = (z - mu) inv_var:  d/dz = -s,  d/dmu = s and d/dlog_sigma2 = (s (z - mu) - 1) / 2,
    both summed over k."""
    N, K, Z = z.shape
    half = np.ones(1, z.dtype)[0] / 2
    d_z = np.empty_like(z)
    d_mu = np.zeros_like(mu)
    d_log_sigma2 = np.zeros_like(mu)
    for n in range(N):
        for k in range(K):
            d = d_lp[n, k]
            for j in range(Z):
                diff = z[n, k, j] - mu[n, j]
                scaled = diff * inv_var[n, j]
                d_z[n, k, j] = -d * scaled
                d_mu[n, j] += d * scaled
                d_log_sigma2[n, j] += d * (half * scaled * diff - half)
    return d_z, d_mu, d_log_sigma2


def gaussian_log_prob(z, mu, log_sigma2):
    return _gaussian_log_prob(z, mu, log_sigma2, np.exp(-log_sigma2))


def gaussian_log_prob_backward(d_lp, z, mu, log_sigma2):
    return _gaussian_log_prob_backward(d_lp, z, mu, np.exp(-log_sigma2))


# --------------------------------------------------------------------------
# The likelihoods: one pass gives the row sums and, for the backward, each pixel's
# derivative; the backward scales those by dL/d(row)
# --------------------------------------------------------------------------


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _bernoulli_log_likelihood(x, logits, residual):
    """Row sums of x l - softplus(l) and (when ``residual`` is not empty) x - sigmoid(l).
    With e = exp(-|l|): softplus(l) = max(l, 0) + log1p(e) and sigmoid(l) = (1 or e) / (1 + e),
    so one exponential per logit serves both."""
    B, S, D = logits.shape
    # constants in the data's dtype: a float64 literal would promote every
    # float32 element and stop the loops from vectorizing
    one = np.ones(1, logits.dtype)[0]
    zero = one - one
    out = np.empty((B, S), dtype=logits.dtype)
    with_grad = residual.size > 0
    for b in range(B):
        for s in range(S):
            acc = zero
            if with_grad:
                for d in range(D):
                    v = logits[b, s, d]
                    e = exp_nonpositive(-abs(v))
                    acc += x[b, d] * v - max(v, zero) - log1p_unit(e)
                    numerator = one if v >= zero else e
                    residual[b, s, d] = x[b, d] - numerator / (one + e)
            else:
                for d in range(D):
                    v = logits[b, s, d]
                    acc += x[b, d] * v - max(v, zero) - log1p_unit(exp_nonpositive(-abs(v)))
            out[b, s] = acc
    return out


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _scale_rows(d_rows, per_pixel):
    """out[b, s, d] = d_rows[b, s] * per_pixel[b, s, d], a product below the smallest normal
    number stored as 0 (see :func:`npdvae.vae.distributions.flush_subnormal`)."""
    B, S, D = per_pixel.shape
    out = np.empty_like(per_pixel)
    zero = np.zeros(1, per_pixel.dtype)[0]
    tiny = np.finfo(per_pixel.dtype).tiny
    for b in range(B):
        for s in range(S):
            g = d_rows[b, s]
            for d in range(D):
                v = g * per_pixel[b, s, d]
                out[b, s, d] = v if abs(v) >= tiny else zero
    return out


def bernoulli_log_likelihood(x, logits, with_grad=True):
    """(B, S) log-likelihoods and the cache: x - sigmoid(l), or nothing without ``with_grad``."""
    logits = np.ascontiguousarray(logits)
    residual = np.empty_like(logits) if with_grad else np.empty((0, 0, 0), logits.dtype)
    return _bernoulli_log_likelihood(x, logits, residual), residual


def bernoulli_log_likelihood_backward(d_ll, cache):
    return _scale_rows(d_ll, cache)


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _gaussian_log_likelihood(x, mean, log_var, inv_var, d_mean_unit, d_log_var_unit):
    B, S, D = mean.shape
    one = np.ones(1, mean.dtype)[0]
    half = one / (one + one)
    log_2pi = one * LOG_2PI
    out = np.empty((B, S), dtype=mean.dtype)
    with_grad = d_mean_unit.size > 0
    for b in range(B):
        for s in range(S):
            acc = one - one
            for d in range(D):
                diff = x[b, d] - mean[b, s, d]
                scaled = diff * inv_var[b, s, d]
                acc += log_2pi + log_var[b, s, d] + diff * scaled
                if with_grad:
                    d_mean_unit[b, s, d] = scaled
                    d_log_var_unit[b, s, d] = half * diff * scaled - half
            out[b, s] = -half * acc
    return out


def gaussian_log_likelihood(x, mean, log_var, with_grad=True):
    """(B, S) log-likelihoods and the cache: each pixel's two partial derivatives."""
    shape = mean.shape if with_grad else (0, 0, 0)
    d_mean_unit = np.empty(shape, mean.dtype)
    d_log_var_unit = np.empty(shape, mean.dtype)
    out = _gaussian_log_likelihood(x, mean, log_var, np.exp(-log_var), d_mean_unit, d_log_var_unit)
    return out, (d_mean_unit, d_log_var_unit)


def gaussian_log_likelihood_backward(d_ll, cache):
    d_mean_unit, d_log_var_unit = cache
    return _scale_rows(d_ll, d_mean_unit), _scale_rows(d_ll, d_log_var_unit)
