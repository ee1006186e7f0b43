"""Element-wise activations, each a forward/backward pair.

Every activation has three layers of code, read from the bottom up:

* ``_name_ref`` / ``_name_backward_ref``: plain NumPy, obviously right;
* the fast path: ``name_kernel`` / ``name_backward_kernel``, each one fused
  Numba loop over a flat array (float32 for training, float64 for checks),
  with exp and log1p from :mod:`npdvae.nn.vecmath` so that the loop
  vectorizes (tanh keeps NumPy's SIMD ufunc, which no kernel beat);
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

from npdvae.nn.fastmath import ERROR_MODEL, FASTMATH
from npdvae.nn.vecmath import exp_nonpositive, log1p_unit, stable_sigmoid

# --------------------------------------------------------------------------
# softplus(a) = log(1 + e^a);  d/da = sigmoid(a)
# --------------------------------------------------------------------------


def _softplus_ref(a):
    """softplus(a) = log(1 + e^a), written as max(a, 0) + log1p(e^-|a|) so
    that e^a never overflows (the naive form is inf for a > 88 in float32)."""
    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def softplus_kernel(a):
    """The same stable form in one pass over a flat array: exp and log1p from
    :mod:`npdvae.nn.vecmath`, so the loop vectorizes where NumPy would make three
    passes over the array. ``v if v >= 0`` rather than ``max``: a NaN must come
    out as NaN."""
    zero = np.zeros(1, a.dtype)[0]
    y = np.empty_like(a)
    for i in range(a.size):
        v = a[i]
        y[i] = (zero if v < zero else v) + log1p_unit(exp_nonpositive(-abs(v)))
    return y


def _softplus_backward_ref(d_y, a):
    """d softplus(a) / da = sigmoid(a)."""
    return d_y * _sigmoid_ref(a)


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def softplus_backward_kernel(d_y, a):
    """d_a = d_y sigmoid(a), the sigmoid in the stable form of
    :func:`npdvae.nn.vecmath.stable_sigmoid`, in one vectorized pass."""
    one = np.ones(1, a.dtype)[0]
    d_a = np.empty_like(a)
    for i in range(a.size):
        d_a[i] = d_y[i] * stable_sigmoid(a[i], one)
    return d_a


# --------------------------------------------------------------------------
# sigmoid(a) = 1 / (1 + e^-a);  d/da = y (1 - y)
# --------------------------------------------------------------------------


def _sigmoid_ref(a):
    """sigmoid(a), evaluated so that exp never sees a positive argument."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def sigmoid_kernel(a):
    """The reference's form, (1 or e) / (1 + e) with e = exp(-|a|), in one
    pass over a flat array (exp from :mod:`npdvae.nn.vecmath`): no overflow, and
    a tiny output keeps its relative precision (which (1 + tanh(a / 2)) / 2,
    whose error near 0 is absolute, would not)."""
    one = np.ones(1, a.dtype)[0]
    y = np.empty_like(a)
    for i in range(a.size):
        y[i] = stable_sigmoid(a[i], one)
    return y


def _sigmoid_backward_ref(d_y, y):
    """d sigmoid / da = y (1 - y), written in terms of the output y."""
    return d_y * y * (1 - y)


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def sigmoid_backward_kernel(d_y, y):
    d_a = np.empty_like(y)
    for i in range(y.size):
        dy = d_y[i] * y[i]
        d_a[i] = dy - dy * y[i]
    return d_a


# --------------------------------------------------------------------------
# tanh(a);  d/da = 1 - y^2
# --------------------------------------------------------------------------


def _tanh_ref(a):
    """NumPy's SIMD tanh serves both paths: a kernel through expm1 and a
    division would be no faster."""
    return np.tanh(a)


def _tanh_backward_ref(d_y, y):
    """d tanh / da = 1 - y^2, written in terms of the output y."""
    return d_y * (1 - y * y)


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def tanh_backward_kernel(d_y, y):
    d_a = np.empty_like(y)
    for i in range(y.size):
        d_a[i] = d_y[i] - d_y[i] * y[i] * y[i]
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
    """The activations by name.

    With ``use_kernels`` the forwards and backwards are the fused Numba
    kernels; without, the NumPy references, which also serve the tests and
    the reader.
    """
    if use_kernels:
        softplus_back = _flat(softplus_backward_kernel)
        sigmoid_back = _flat(sigmoid_backward_kernel)
        tanh_back = _flat(tanh_backward_kernel)
        return {
            "softplus": Activation("softplus", _flat(softplus_kernel), lambda d_y, a, y: softplus_back(d_y, a)),
            "sigmoid": Activation("sigmoid", _flat(sigmoid_kernel), lambda d_y, a, y: sigmoid_back(d_y, y)),
            "tanh": Activation("tanh", _tanh_ref, lambda d_y, a, y: tanh_back(d_y, y)),
            "identity": Activation("identity", _identity_forward, _identity_backward),
        }
    return {
        "softplus": Activation("softplus", _softplus_ref, lambda d_y, a, y: _softplus_backward_ref(d_y, a)),
        "sigmoid": Activation("sigmoid", _sigmoid_ref, lambda d_y, a, y: _sigmoid_backward_ref(d_y, y)),
        "tanh": Activation("tanh", _tanh_ref, lambda d_y, a, y: _tanh_backward_ref(d_y, y)),
        "identity": Activation("identity", _identity_forward, _identity_backward),
    }


ACTIVATIONS = make_activations(use_kernels=True)
HIDDEN_ACTIVATIONS = ("softplus", "tanh", "sigmoid")   # the choices for hidden layers
REFERENCE_ACTIVATIONS = make_activations(use_kernels=False)


def get_activation(name: str, use_kernels: bool = True) -> Activation:
    table = ACTIVATIONS if use_kernels else REFERENCE_ACTIVATIONS
    if name not in table:
        raise ValueError(f"activation must be one of {sorted(table)}, got {name!r}")
    return table[name]
