"""The denoising variational lower bounds (section 3.2) and their backward.

Both bounds start from the log-weights of one example,

    log w_mk = log p(x, z_km) - log q(z_km | x~_m),     shape (B, M, K),

with x~_m ~ p(x~ | x) and z_km ~ q(z | x~_m). Note p scores the clean x.

``elbo``, eq. 11 (DVAE; the VAE at noise 0):
    L = 1/(MK) sum_m sum_k log w_mk
``iwae``, eq. 12 (DIWAE; the IWAE at noise 0):
    L = 1/M sum_m [ log 1/K sum_k w_mk ] = 1/M sum_m [ logsumexp_k(log w_mk) - log K ]

The gradient of eq. 12: d/d(log w_mk) of logsumexp_k = w_mk / sum_k' w_mk', the normalized
importance weight (softmax over k). With K = 1 the weight is 1 and the two bounds are equal.

The same log-mean-exp serves training and evaluation, so the number printed at test time is
the bound that was optimized.
"""

from __future__ import annotations

import math

import numpy as np

BOUNDS = ("elbo", "iwae")


def log_mean_exp(log_w):
    """Over the last axis of ``log_w`` (..., K): log 1/K sum_k exp(a_k) = m + log(1/K sum_k
    exp(a_k - m)) with m = max_k a_k, so no exponential overflows; and the normalized weights
    exp(a_k - m) / sum_k' exp(a_k' - m) (..., K)."""
    top = log_w.max(axis=-1, keepdims=True)
    shifted = np.exp(log_w - top)
    total = shifted.sum(axis=-1, keepdims=True)
    lme = (top + np.log(total) - math.log(log_w.shape[-1]))[..., 0]
    return lme, shifted / total


def elbo_bound(log_w):
    """Eq. 11: log_w (B, M, K) -> per-example bound (B,), the mean over m and k."""
    return log_w.mean(axis=(1, 2))


def elbo_bound_backward(d_bound, log_w_shape):
    """Each of the M*K log-weights enters with weight 1/(MK): dL_b/d(log w_bmk) = d_bound_b / (MK)."""
    B, M, K = log_w_shape
    return np.broadcast_to((d_bound / (M * K))[:, None, None], log_w_shape).copy()


def iwae_bound(log_w, ops):
    """Eq. 12: log_w (B, M, K) -> (per-example bound (B,), the normalized weights (B, M, K)):
    bound_b = 1/M sum_m log 1/K sum_k exp(log w_bmk); the weights are the backward's cache.
    ``ops.log_mean_exp`` is :func:`log_mean_exp` or its twin."""
    lme, weights = ops.log_mean_exp(log_w)
    return lme.mean(axis=1), weights


def iwae_bound_backward(d_bound, weights):
    """dL_b/d(log w_bmk) = d_bound_b * (1/M) * softmax_k(log w_bm)_k."""
    M = weights.shape[1]
    return (d_bound / M)[:, None, None] * weights


def bound(kind: str, log_w, ops):
    """``kind`` "elbo" (eq. 11) or "iwae" (eq. 12): (per-example bound, cache for :func:`bound_backward`)."""
    if kind == "elbo":
        return elbo_bound(log_w), log_w.shape
    if kind == "iwae":
        return iwae_bound(log_w, ops)
    raise ValueError(f"bound must be one of {BOUNDS}, got {kind!r}")


def bound_backward(kind: str, d_bound, cache):
    if kind == "elbo":
        return elbo_bound_backward(d_bound, cache)
    return iwae_bound_backward(d_bound, cache)
