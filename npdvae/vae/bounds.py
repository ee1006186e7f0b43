"""The denoising variational lower bounds (section 3.2) and their backward.

Both bounds start from the log-weights of one example,

    log w_mk = log p(x, z_km) - log q(z_km | x~_m),     shape (B, M, K),

with x~_m ~ p(x~ | x) and z_km ~ q(z | x~_m). Note p scores the clean x.

DVAE, eq. 11:   L = 1/(MK) sum_m sum_k log w_mk
DIWAE, eq. 12:  L = 1/M sum_m [ log 1/K sum_k w_mk ]
                  = 1/M sum_m [ logsumexp_k(log w_mk) - log K ]

DIWAE's gradient: d/d(log w_mk) of logsumexp_k = w_mk / sum_k' w_mk', the
normalized importance weight (softmax over k). With K = 1 the weight is 1 and
the two bounds are equal.

The same log-mean-exp (:func:`log_mean_exp`) serves training and evaluation,
so the number printed at test time is the bound that was optimized.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from npdvae.nn.fastmath import ERROR_MODEL

BOUNDS = ("elbo", "iwae")

# --------------------------------------------------------------------------
# Stable log-mean-exp over the last axis, with the normalized weights.
#   lme = m + log(1/K sum_k exp(a_k - m)),  m = max_k a_k
#   weights_k = exp(a_k - m) / sum_k' exp(a_k' - m)
# --------------------------------------------------------------------------


def _log_mean_exp_ref(log_w):
    """log_w: (R, K) -> (log-mean-exp (R,), normalized weights (R, K))."""
    top = log_w.max(axis=1, keepdims=True)
    shifted = np.exp(log_w - top)
    total = shifted.sum(axis=1, keepdims=True)
    lme = (top + np.log(total) - math.log(log_w.shape[1]))[:, 0]
    return lme, shifted / total


@njit(cache=True, error_model=ERROR_MODEL)
def log_mean_exp_kernel(log_w):
    R, K = log_w.shape
    lme = np.empty(R, dtype=log_w.dtype)
    weights = np.empty_like(log_w)
    log_k = np.log(K)
    for r in range(R):
        top = log_w[r, 0]
        for k in range(1, K):
            top = max(top, log_w[r, k])
        total = 0.0
        for k in range(K):
            e = np.exp(log_w[r, k] - top)
            weights[r, k] = e
            total += e
        for k in range(K):
            weights[r, k] /= total
        lme[r] = top + np.log(total) - log_k
    return lme, weights


def log_mean_exp(log_w, use_kernels: bool = True):
    """Log-mean-exp over the last axis of any array, and the softmax weights."""
    shape = log_w.shape
    flat = np.ascontiguousarray(log_w).reshape(-1, shape[-1])
    lme, weights = log_mean_exp_kernel(flat) if use_kernels else _log_mean_exp_ref(flat)
    return lme.reshape(shape[:-1]), weights.reshape(shape)


# --------------------------------------------------------------------------
# DVAE bound, eq. 11
# --------------------------------------------------------------------------


def dvae_bound_forward(log_w):
    """log_w: (B, M, K) -> per-example bound (B,) = mean over m and k of log w."""
    return log_w.mean(axis=(1, 2))


def dvae_bound_backward(d_bound, log_w_shape):
    """Each of the M*K log-weights enters with weight 1/(MK):
    dL_b/d(log w_bmk) = d_bound_b / (M K)."""
    B, M, K = log_w_shape
    scale = d_bound / (M * K)
    return np.broadcast_to(scale[:, None, None], log_w_shape).copy()


# --------------------------------------------------------------------------
# DIWAE bound, eq. 12
# --------------------------------------------------------------------------


def diwae_bound_forward(log_w, use_kernels: bool = True):
    """log_w: (B, M, K) -> (per-example bound (B,), normalized weights (B, M, K)).

    bound_b = 1/M sum_m log 1/K sum_k exp(log w_bmk); the weights are the cache.
    """
    lme, weights = log_mean_exp(log_w, use_kernels)
    return lme.mean(axis=1), weights


def diwae_bound_backward(d_bound, weights):
    """dL_b/d(log w_bmk) = d_bound_b * (1/M) * softmax_k(log w_bm)_k."""
    M = weights.shape[1]
    return (d_bound / M)[:, None, None] * weights


def bound_forward(kind: str, log_w, use_kernels: bool = True):
    """Dispatch on ``kind`` ("elbo" -> eq. 11, "iwae" -> eq. 12). Returns
    (per-example bound, cache for :func:`bound_backward`)."""
    if kind == "elbo":
        return dvae_bound_forward(log_w), log_w.shape
    if kind == "iwae":
        return diwae_bound_forward(log_w, use_kernels)
    raise ValueError(f"bound must be one of {BOUNDS}, got {kind!r}")


def bound_backward(kind: str, d_bound, cache):
    if kind == "elbo":
        return dvae_bound_backward(d_bound, cache)
    return diwae_bound_backward(d_bound, cache)
