"""Element-wise activations y = f(a), each beside its derivative.

Each backward reads whichever of the pre-activation ``a`` and the output ``y`` gives the
cheaper, stabler derivative. The Numba twins are in :mod:`npdvae.kernels.activations`;
:class:`Activation` pairs a forward with its backward, from either table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

HIDDEN_ACTIVATIONS = ("softplus", "tanh", "sigmoid")   # the choices for hidden layers


def softplus(a):
    """softplus(a) = log(1 + e^a), written as max(a, 0) + log1p(e^-|a|) so that e^a never
    overflows (the naive form is inf for a > 88 in float32)."""
    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))


def softplus_backward(d_y, a):
    """d softplus(a) / da = sigmoid(a)."""
    return d_y * sigmoid(a)


def sigmoid(a):
    """sigmoid(a) = 1 / (1 + e^-a), evaluated so that exp never sees a positive argument."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)


def sigmoid_backward(d_y, y):
    """d sigmoid / da = y (1 - y), in terms of the output y."""
    return d_y * y * (1 - y)


def tanh(a):
    return np.tanh(a)


def tanh_backward(d_y, y):
    """d tanh / da = 1 - y^2, in terms of the output y."""
    return d_y * (1 - y * y)


@dataclass(frozen=True)
class Activation:
    """y = f(a) with ``backward(d_y, a, y)`` = dL/da = dL/dy f'(a)."""

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def get_activation(name: str, ops) -> Activation:
    """The activation ``name`` (one of :data:`HIDDEN_ACTIVATIONS` or ``identity``) made of the
    functions of the table ``ops`` (:func:`npdvae.training.operations.operations`)."""
    if name == "identity":
        return Activation("identity", lambda a: a, lambda d_y, a, y: d_y)
    if name == "softplus":
        return Activation(name, ops.softplus, lambda d_y, a, y: ops.softplus_backward(d_y, a))
    if name == "sigmoid":
        return Activation(name, ops.sigmoid, lambda d_y, a, y: ops.sigmoid_backward(d_y, y))
    if name == "tanh":
        return Activation(name, ops.tanh, lambda d_y, a, y: ops.tanh_backward(d_y, y))
    raise ValueError(f"activation must be one of {sorted(HIDDEN_ACTIVATIONS + ('identity',))}, got {name!r}")
