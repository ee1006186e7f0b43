"""Twin of :func:`npdvae.vae.bounds.log_mean_exp`: the maximum, the shifted exponentials,
their sum and the normalized weights in one loop per row."""

from __future__ import annotations

import numpy as np
from numba import njit

from npdvae.kernels.fastmath import ERROR_MODEL


@njit(cache=True, error_model=ERROR_MODEL)
def _log_mean_exp_rows(log_w):
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


def log_mean_exp(log_w):
    shape = log_w.shape
    lme, weights = _log_mean_exp_rows(np.ascontiguousarray(log_w).reshape(-1, shape[-1]))
    return lme.reshape(shape[:-1]), weights.reshape(shape)
