"""Element-wise activations, each a forward/backward pair.

Every activation has three layers of code, read from the bottom up:

* ``_name_ref`` / ``_name_backward_ref``: plain NumPy, obviously right;
* ``name_kernel`` / ``name_backward_kernel``: the same formula as a Numba
  loop over a flat array (float32 for training, float64 for checks);
* an :class:`Activation` record that pairs ``forward`` with ``backward`` and
  says what the backward needs from the forward (the pre-activation ``a`` or
  the output ``y``).

Kernels take and return 1-D arrays; :func:`_flat` lets callers pass any
C-contiguous shape without a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numba import njit

# --------------------------------------------------------------------------
# softplus(a) = log(1 + e^a);  d/da = sigmoid(a)
# --------------------------------------------------------------------------


def _softplus_ref(a):
    """softplus(a) = log(1 + e^a), written as max(a, 0) + log1p(e^-|a|) so
    that e^a never overflows (the naive form is inf for a > 88 in float32)."""
    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))


def _softplus_backward_ref(d_y, a):
    """d softplus(a) / da = sigmoid(a)."""
    return d_y * _sigmoid_ref(a)


@njit(cache=True)
def softplus_kernel(a):
    y = np.empty_like(a)
    for i in range(a.size):
        v = a[i]
        y[i] = max(v, 0.0) + np.log1p(np.exp(-abs(v)))
    return y


@njit(cache=True)
def softplus_backward_kernel(d_y, a):
    d_a = np.empty_like(a)
    for i in range(a.size):
        v = a[i]
        # sigmoid in the branch that exponentiates a non-positive number
        if v >= 0:
            s = 1.0 / (1.0 + np.exp(-v))
        else:
            e = np.exp(v)
            s = e / (1.0 + e)
        d_a[i] = d_y[i] * s
    return d_a


# --------------------------------------------------------------------------
# sigmoid(a) = 1 / (1 + e^-a);  d/da = y (1 - y)
# --------------------------------------------------------------------------


def _sigmoid_ref(a):
    """sigmoid(a), evaluated so that exp never sees a positive argument."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)


def _sigmoid_backward_ref(d_y, y):
    """d sigmoid / da = y (1 - y), written in terms of the output y."""
    return d_y * y * (1 - y)


@njit(cache=True)
def sigmoid_kernel(a):
    y = np.empty_like(a)
    for i in range(a.size):
        v = a[i]
        if v >= 0:
            y[i] = 1.0 / (1.0 + np.exp(-v))
        else:
            e = np.exp(v)
            y[i] = e / (1.0 + e)
    return y


@njit(cache=True)
def sigmoid_backward_kernel(d_y, y):
    d_a = np.empty_like(y)
    for i in range(y.size):
        d_a[i] = d_y[i] * y[i] * (1.0 - y[i])
    return d_a


# --------------------------------------------------------------------------
# tanh(a);  d/da = 1 - y^2
# --------------------------------------------------------------------------


def _tanh_ref(a):
    return np.tanh(a)


def _tanh_backward_ref(d_y, y):
    """d tanh / da = 1 - y^2, written in terms of the output y."""
    return d_y * (1 - y * y)


@njit(cache=True)
def tanh_kernel(a):
    y = np.empty_like(a)
    for i in range(a.size):
        y[i] = np.tanh(a[i])
    return y


@njit(cache=True)
def tanh_backward_kernel(d_y, y):
    d_a = np.empty_like(y)
    for i in range(y.size):
        d_a[i] = d_y[i] * (1.0 - y[i] * y[i])
    return d_a


# --------------------------------------------------------------------------
# The pairs, as the layers use them
# --------------------------------------------------------------------------


def _flat(kernel):
    """Run a 1-D kernel on arrays of any C-contiguous shape (reshape is a view)."""

    def run(*arrays):
        shape = arrays[0].shape
        flat = [np.ascontiguousarray(arr).reshape(-1) for arr in arrays]
        return kernel(*flat).reshape(shape)

    run.__name__ = kernel.__name__ if hasattr(kernel, "__name__") else "kernel"
    return run


@dataclass(frozen=True)
class Activation:
    """An element-wise nonlinearity y = f(a) with its derivative.

    ``backward(d_y, a, y)`` returns dL/da = dL/dy * f'(a). Each activation
    reads whichever of ``a`` and ``y`` gives the cheaper, stabler derivative.
    """

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _identity_forward(a):
    return a


def _identity_backward(d_y, a, y):
    return d_y


def make_activations(use_kernels: bool = True) -> dict[str, Activation]:
    """The activations by name, backed by the Numba kernels or by the NumPy
    references (``use_kernels=False``, for tests and for reading)."""
    if use_kernels:
        softplus, softplus_back = _flat(softplus_kernel), _flat(softplus_backward_kernel)
        sigmoid, sigmoid_back = _flat(sigmoid_kernel), _flat(sigmoid_backward_kernel)
        tanh, tanh_back = _flat(tanh_kernel), _flat(tanh_backward_kernel)
    else:
        softplus, softplus_back = _softplus_ref, _softplus_backward_ref
        sigmoid, sigmoid_back = _sigmoid_ref, _sigmoid_backward_ref
        tanh, tanh_back = _tanh_ref, _tanh_backward_ref
    return {
        "softplus": Activation("softplus", softplus, lambda d_y, a, y: softplus_back(d_y, a)),
        "sigmoid": Activation("sigmoid", sigmoid, lambda d_y, a, y: sigmoid_back(d_y, y)),
        "tanh": Activation("tanh", tanh, lambda d_y, a, y: tanh_back(d_y, y)),
        "identity": Activation("identity", _identity_forward, _identity_backward),
    }


ACTIVATIONS = make_activations(use_kernels=True)
REFERENCE_ACTIVATIONS = make_activations(use_kernels=False)


def get_activation(name: str, use_kernels: bool = True) -> Activation:
    table = ACTIVATIONS if use_kernels else REFERENCE_ACTIVATIONS
    if name not in table:
        raise ValueError(f"activation must be one of {sorted(table)}, got {name!r}")
    return table[name]
