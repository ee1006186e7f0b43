"""Twins of the bias operations of :mod:`npdvae.nn.layers`, written as the two loops they
are: NumPy's broadcasting machinery costs more than the arithmetic at these sizes."""

from __future__ import annotations

import numpy as np
from numba import njit

from npdvae.kernels.fastmath import ERROR_MODEL, FASTMATH


@njit(cache=True, error_model=ERROR_MODEL)
def add_bias(a, b):
    """a[n, :] += b, in place."""
    N, O = a.shape
    for n in range(N):
        for o in range(O):
            a[n, o] += b[o]
    return a


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def column_sums(d_a):
    """Row after row into one accumulator per column, so the inner loop runs along
    contiguous memory and vectorizes across the columns."""
    N, O = d_a.shape
    out = np.zeros(O, d_a.dtype)
    for n in range(N):
        for o in range(O):
            out[o] += d_a[n, o]
    return out
