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

from npdvae.nn.fastmath import ERROR_MODEL, FASTMATH
from npdvae.nn.vecmath import exp_nonpositive, log1p_unit

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


# The fast path computes sigma = exp(log_sigma2 / 2) with one NumPy ufunc per
# (row, unit) and hands it to the kernel, whose loops run over the latent unit
# j innermost: contiguous in memory and free of transcendentals, so they
# vectorize (j outermost, with a scalar exp in the loop, would do neither).


@njit(cache=True, error_model=ERROR_MODEL)
def reparameterize_kernel(mu, sigma, eps):
    """z_nkj = mu_nj + sigma_nj eps_nkj, with sigma = exp(log_sigma2 / 2) given."""
    N, K, Z = eps.shape
    z = np.empty_like(eps)
    for n in range(N):
        for k in range(K):
            for j in range(Z):
                z[n, k, j] = mu[n, j] + sigma[n, j] * eps[n, k, j]
    return z


@njit(cache=True, error_model=ERROR_MODEL)
def reparameterize_backward_kernel(d_z, sigma, eps):
    """d_mu = sum_k d_z;  d_log_sigma2 = sigma / 2 * sum_k d_z eps."""
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
    """Fast path of :func:`_reparameterize_ref`: mu, log_sigma2 (N, Z), eps (N, K, Z) -> z (N, K, Z)."""
    return reparameterize_kernel(mu, np.exp(log_sigma2 * log_sigma2.dtype.type(0.5)), eps)


def reparameterize_backward(d_z, log_sigma2, eps):
    """Fast path of :func:`_reparameterize_backward_ref`."""
    return reparameterize_backward_kernel(d_z, np.exp(log_sigma2 * log_sigma2.dtype.type(0.5)), eps)


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


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def gaussian_log_prob_kernel(z, mu, log_sigma2, inv_var):
    """-1/2 [Z log 2 pi + sum_j log_sigma2_j + sum_j (z_j - mu_j)^2 inv_var_j] per
    (row, sample); the first two terms are the same for a row's K samples.
    inv_var = e^-log_sigma2 comes from NumPy."""
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
def gaussian_log_prob_backward_kernel(d_lp, z, mu, inv_var):
    """The partials of :func:`_gaussian_log_prob_backward_ref`, with
    s = (z - mu) inv_var:  d/dz = -s,  d/dmu = s (summed over k),
    d/dlog_sigma2 = (s (z - mu) - 1) / 2 (summed over k)."""
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
    """Fast path of :func:`_gaussian_log_prob_ref`: z (N, K, Z) -> (N, K)."""
    return gaussian_log_prob_kernel(z, mu, log_sigma2, np.exp(-log_sigma2))


def gaussian_log_prob_backward(d_lp, z, mu, log_sigma2):
    """Fast path of :func:`_gaussian_log_prob_backward_ref`."""
    return gaussian_log_prob_backward_kernel(d_lp, z, mu, np.exp(-log_sigma2))


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


def _bernoulli_log_likelihood_ref(x, logits, with_grad=True):
    """(B, S) log-likelihoods, and the cache for the backward (the inputs), as the kernel path."""
    softplus = np.maximum(logits, 0) + np.log1p(np.exp(-np.abs(logits)))
    return (x[:, None, :] * logits - softplus).sum(axis=2), (x, logits)


def _bernoulli_log_likelihood_backward_ref(d_ll, cache):
    """d/dl_d = x_d - sigmoid(l_d), times d_ll, subnormal products flushed to 0 (see
    :func:`scale_rows_kernel`)."""
    x, logits = cache
    e = np.exp(-np.abs(logits))
    sigmoid = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))
    return _flush_subnormal(d_ll[:, :, None] * (x[:, None, :] - sigmoid))


def _flush_subnormal(a):
    """``a`` with every entry below the dtype's smallest normal number in magnitude set to 0."""
    return np.where(np.abs(a) < np.finfo(a.dtype).tiny, np.zeros((), a.dtype), a)


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def bernoulli_log_likelihood_kernel(x, logits, residual):
    """One pass over the logits: the row sums of x l - softplus(l), and (when
    ``residual`` is not empty) the per-pixel gradient x - sigmoid(l).

    With e = exp(-|l|): softplus(l) = max(l, 0) + log1p(e) and
    sigmoid(l) = (1 or e) / (1 + e), so one exponential per logit serves both;
    :mod:`npdvae.nn.vecmath` makes exp and log1p vectorizable inside this loop,
    where NumPy would make e and log1p(e) in separate passes over memory.
    """
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
def scale_rows_kernel(d_rows, per_pixel):
    """out[b, s, d] = d_rows[b, s] * per_pixel[b, s, d]: the chain rule for a
    row sum, dL/dv_bsd = dL/d(row_bs) * d(row_bs)/dv_bsd; a product below the
    smallest normal number (1.2e-38 in float32) in magnitude is stored as 0.

    Why the flush: a trained MNIST decoder drives the logits of the always-black
    border pixels below -80, where 1 - sigmoid is about 1e-36 and the product with
    d_rows (at most 1/B) is subnormal. Subnormal operands send every multiply of the
    GEMMs that read this gradient (the decoder's last layer, both ways) through a
    slow microcode path, and training slows down more and more as it goes. Flushed,
    the change to any parameter is below what float32 can hold next to it: Adam
    divides the moment by sqrt(v) + 1e-8, so a gradient of 1e-38 moves a weight by
    about 1e-33 times the learning rate."""
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
    """Fast path: (B, S) log-likelihoods and the cache for the backward
    (x - sigmoid(l), or nothing when ``with_grad`` is False)."""
    logits = np.ascontiguousarray(logits)
    residual = np.empty_like(logits) if with_grad else np.empty((0, 0, 0), logits.dtype)
    return bernoulli_log_likelihood_kernel(x, logits, residual), residual


def bernoulli_log_likelihood_backward(d_ll, residual):
    """d/dl_bsd = d_ll_bs * (x_bd - sigmoid(l_bsd))."""
    return scale_rows_kernel(d_ll, residual)


# --------------------------------------------------------------------------
# Gaussian log p(x | z) with per-pixel mean and log-variance (Frey Face):
#   sum_d -1/2 [log 2 pi + log_var_d + (x_d - mean_d)^2 / var_d]
# --------------------------------------------------------------------------


def _gaussian_log_likelihood_ref(x, mean, log_var, with_grad=True):
    """(B, S) log-likelihoods, and the cache for the backward (the inputs), as the kernel path."""
    diff = x[:, None, :] - mean
    return -0.5 * (LOG_2PI + log_var + diff * diff * np.exp(-log_var)).sum(axis=2), (x, mean, log_var)


def _gaussian_log_likelihood_backward_ref(d_ll, cache):
    """d/dmean = (x - mean) / var,   d/dlog_var = -1/2 + (x - mean)^2 / (2 var)."""
    x, mean, log_var = cache
    diff = x[:, None, :] - mean
    scaled = diff * np.exp(-log_var)
    d = d_ll[:, :, None]
    return _flush_subnormal(d * scaled), _flush_subnormal(d * (0.5 * diff * scaled - 0.5))


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def gaussian_log_likelihood_kernel(x, mean, log_var, inv_var, d_mean_unit, d_log_var_unit):
    """One pass: row sums of the Gaussian log-density and (when the gradient
    arrays are not empty) its per-pixel partial derivatives. inv_var = e^-log_var
    comes from NumPy."""
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
    """Fast path: (B, S) log-likelihoods and the cache of per-pixel derivatives."""
    shape = mean.shape if with_grad else (0, 0, 0)
    d_mean_unit = np.empty(shape, mean.dtype)
    d_log_var_unit = np.empty(shape, mean.dtype)
    out = gaussian_log_likelihood_kernel(x, mean, log_var, np.exp(-log_var), d_mean_unit, d_log_var_unit)
    return out, (d_mean_unit, d_log_var_unit)


def gaussian_log_likelihood_backward(d_ll, cache):
    d_mean_unit, d_log_var_unit = cache
    return scale_rows_kernel(d_ll, d_mean_unit), scale_rows_kernel(d_ll, d_log_var_unit)
