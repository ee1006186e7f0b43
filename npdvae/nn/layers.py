"""Dense layers and the MLP built from them, each with its backward beside it.

Parameters are never stored in a layer object: they live in one flat
``params`` dict (name -> ndarray) that the optimizer updates and the
checkpoint stores. A layer is just a name prefix into that dict, which keeps
the model one plain structure a student can print.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from npdvae.nn.activations import Activation

# --------------------------------------------------------------------------
# Bias: a += b on every row, and its gradient, the column sums of dL/da
# --------------------------------------------------------------------------


def add_bias(a, b):
    """a[n, :] += b for every row n, in place (no second (N, O) temporary).   a: (N, O), b: (O,)."""
    a += b
    return a


def column_sums(d_a):
    """dL/db = sum_n dL/da[n, :]: (N, O) -> (O,)."""
    return d_a.sum(axis=0)


# --------------------------------------------------------------------------
# Affine: a = x W + b
# --------------------------------------------------------------------------


def affine_forward(x, W, b, ops):
    """a = x W + b.   x: (N, I), W: (I, O), b: (O,)  ->  a: (N, O)."""
    return ops.add_bias(x @ W, b)


def affine_backward(d_a, x, W, ops, need_input_grad=True, need_param_grads=True):
    """Given dL/da (N, O):  dL/dW = x^T d_a,  dL/db = sum_n d_a,  dL/dx = d_a W^T.

    The input gradient is skipped for the first layer of a network, whose
    input (the data) has no parameters upstream; the parameter gradients are
    skipped (None) where only the input moves, as z does in annealed importance
    sampling and in the search for each image's best Gaussian.
    """
    d_W = x.T @ d_a if need_param_grads else None
    d_b = ops.column_sums(d_a) if need_param_grads else None
    d_x = d_a @ W.T if need_input_grad else None
    return d_W, d_b, d_x


def init_affine(rng: np.random.Generator, fan_in: int, fan_out: int, dtype):
    """Glorot-uniform weights, zero bias.

    The uniform range sqrt(6 / (fan_in + fan_out)) keeps the variance of
    activations and of gradients roughly constant from layer to layer, so
    neither the encoder nor the decoder starts saturated.
    """
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    W = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)
    b = np.zeros(fan_out, dtype=dtype)
    return W, b


# --------------------------------------------------------------------------
# Dense layer = affine followed by an activation
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Dense:
    """y = f(x W + b), with its parameters at ``params[name + ".W"]`` and ``[".b"]``; the bias
    operations come from the table ``ops``."""

    name: str
    activation: Activation
    ops: object

    def forward(self, params, x):
        a = affine_forward(x, params[self.name + ".W"], params[self.name + ".b"], self.ops)
        y = self.activation.forward(a)
        return y, (x, a, y)

    def backward(self, params, d_y, cache, grads, need_input_grad=True):
        """Adds dL/dW and dL/db into ``grads`` (none when ``grads`` is None); returns dL/dx (or None)."""
        x, a, y = cache
        d_a = self.activation.backward(d_y, a, y)
        d_W, d_b, d_x = affine_backward(d_a, x, params[self.name + ".W"], self.ops, need_input_grad,
                                        need_param_grads=grads is not None)
        if grads is not None:
            grads[self.name + ".W"] = d_W
            grads[self.name + ".b"] = d_b
        return d_x


# --------------------------------------------------------------------------
# MLP = a chain of dense layers
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class MLP:
    """h_0 = x,  h_l = f(h_{l-1} W_l + b_l)  for l = 1..L.

    The backward pass walks the same chain in reverse: each layer turns
    dL/dh_l into its parameter gradients and dL/dh_{l-1}.
    """

    layers: tuple[Dense, ...]

    def forward(self, params, x):
        caches = []
        h = x
        for layer in self.layers:
            h, cache = layer.forward(params, h)
            caches.append(cache)
        return h, caches

    def backward(self, params, d_h, caches, grads, need_input_grad=True):
        for depth in range(len(self.layers) - 1, -1, -1):
            is_first = depth == 0
            d_h = self.layers[depth].backward(
                params, d_h, caches[depth], grads, need_input_grad or not is_first
            )
        return d_h


def init_mlp(rng, prefix: str, sizes: list[int], dtype) -> dict[str, np.ndarray]:
    """Parameters of an MLP with layer widths ``sizes`` = [in, h1, ..., out],
    named ``{prefix}.hidden{i}.W`` / ``.b``."""
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W, b = init_affine(rng, fan_in, fan_out, dtype)
        params[f"{prefix}.hidden{i}.W"] = W
        params[f"{prefix}.hidden{i}.b"] = b
    return params


def build_mlp(prefix: str, num_layers: int, activation: Activation, ops) -> MLP:
    return MLP(tuple(Dense(f"{prefix}.hidden{i}", activation, ops) for i in range(num_layers)))
