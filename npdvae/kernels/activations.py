"""Twins of :mod:`npdvae.nn.activations`: each activation and its backward as one fused
Numba loop over a flat array (float32 for training, float64 for the checks), with exp and
log1p from :mod:`npdvae.kernels.vecmath` so that the loop vectorizes. tanh keeps NumPy's
SIMD ufunc, the definition itself: a kernel through expm1 and a division was no faster."""

from __future__ import annotations

import inspect

import numpy as np
from numba import njit

from npdvae.kernels.fastmath import ERROR_MODEL, FASTMATH
from npdvae.kernels.vecmath import exp_nonpositive, log1p_unit, stable_sigmoid
from npdvae.nn.activations import tanh  # noqa: F401  (the definition serves both tables)


def _flat(kernel):
    """Run a 1-D kernel on arrays of any C-contiguous shape (reshape is a view)."""

    def run(*arrays):
        shape = arrays[0].shape
        flat = [np.ascontiguousarray(arr).reshape(-1) for arr in arrays]
        return kernel(*flat).reshape(shape)

    run.__name__ = kernel.__name__.lstrip("_")
    run.__signature__ = inspect.signature(kernel.py_func)   # the definition's arguments, not *arrays
    return run


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _softplus(a):
    """max(a, 0) + log1p(e^-|a|) in one pass. ``v if v >= 0`` rather than ``max``: a NaN
    must come out as NaN."""
    zero = np.zeros(1, a.dtype)[0]
    y = np.empty_like(a)
    for i in range(a.size):
        v = a[i]
        y[i] = (zero if v < zero else v) + log1p_unit(exp_nonpositive(-abs(v)))
    return y


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _softplus_backward(d_y, a):
    """d_a = d_y sigmoid(a), the sigmoid in the stable form of :func:`stable_sigmoid`."""
    one = np.ones(1, a.dtype)[0]
    d_a = np.empty_like(a)
    for i in range(a.size):
        d_a[i] = d_y[i] * stable_sigmoid(a[i], one)
    return d_a


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _sigmoid(a):
    """(1 or e) / (1 + e) with e = exp(-|a|): no overflow, and a tiny output keeps its
    relative precision (which (1 + tanh(a / 2)) / 2, whose error near 0 is absolute, would
    not)."""
    one = np.ones(1, a.dtype)[0]
    y = np.empty_like(a)
    for i in range(a.size):
        y[i] = stable_sigmoid(a[i], one)
    return y


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _sigmoid_backward(d_y, y):
    d_a = np.empty_like(y)
    for i in range(y.size):
        dy = d_y[i] * y[i]
        d_a[i] = dy - dy * y[i]
    return d_a


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def _tanh_backward(d_y, y):
    d_a = np.empty_like(y)
    for i in range(y.size):
        d_a[i] = d_y[i] - d_y[i] * y[i] * y[i]
    return d_a


softplus = _flat(_softplus)
softplus_backward = _flat(_softplus_backward)
sigmoid = _flat(_sigmoid)
sigmoid_backward = _flat(_sigmoid_backward)
tanh_backward = _flat(_tanh_backward)
