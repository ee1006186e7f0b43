"""A gated recurrent unit (Cho et al. 2014; Chung et al. 2014) as the inference
network of Table 3, with its backward through time written out.

How the input is fed: the whole corrupted image x~ is the input at each of
the T = 5 steps, from h_0 = 0; the last state h_T goes to the Gaussian heads.
The paper says only "a single recurrent hidden layer with five time steps".
Splitting the image into five pieces would need padding (784 = 5 * 156.8)
that the paper would have had to mention. Feeding the whole image at every
step gives the inference network five weight-shared steps in which to refine
its reading of x~ (as DRAW's encoder reads the whole canvas each step), and
it makes T a free choice.

For one step, with input x (N, D) and state h (N, H):

    z = sigmoid(x W_z + h U_z + b_z)             update gate
    r = sigmoid(x W_r + h U_r + b_r)             reset gate
    n = tanh(x W_n + (r * h) U_n + b_n)          candidate state
    h' = (1 - z) * h + z * n

Parameters, under ``encoder.gru.``: W (D, 3H) = [W_z W_r W_n],
U_zr (H, 2H) = [U_z U_r], U_n (H, H), b (3H,). Because x is the same at every
step, x W is computed once and its gradient is summed over the steps.

The gates and the bias take their functions from the table ``ops``; the rest is matrix products and a few element-wise NumPy
operations on (N, H) arrays: the matrix products dominate, so a fused kernel
for the rest would add code without adding speed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npdvae.nn.layers import affine_backward, affine_forward, init_affine


@dataclass(frozen=True)
class GRU:
    """A GRU run for ``num_steps`` steps on a constant input; see the module docstring."""

    name: str
    hidden: int
    num_steps: int
    ops: object                   # the table of operations (npdvae.training.operations)

    def forward(self, params, x):
        """x: (N, D) -> h_T: (N, H), and the per-step cache for :meth:`backward`."""
        H, p = self.hidden, self.name
        sigmoid, tanh = self.ops.sigmoid, self.ops.tanh
        # (N, 3H): x W + b, shared by every step
        x_proj = affine_forward(x, params[p + ".W"], params[p + ".b"], self.ops)
        h = np.zeros((x.shape[0], H), dtype=x.dtype)
        steps = []
        for _ in range(self.num_steps):
            zr = sigmoid(x_proj[:, :2 * H] + h @ params[p + ".U_zr"])
            z, r = zr[:, :H], zr[:, H:]
            rh = r * h
            n = tanh(x_proj[:, 2 * H:] + rh @ params[p + ".U_n"])
            steps.append((h, z, r, rh, n))
            h = h + z * (n - h)                           # (1 - z) h + z n
        return h, (x, steps)

    def backward(self, params, d_h, cache, grads, need_input_grad=True):
        """Backpropagation through time. Given dL/dh_T, for t = T..1:

            dz = dh' (n - h),  dn = dh' z,  dh = dh' (1 - z)
            da_n = dn (1 - n^2)                        (a_n: the tanh's argument)
            d(r h) = da_n U_n^T,  dr = d(r h) h,  dh += d(r h) r
            da_z = dz z (1 - z),  da_r = dr r (1 - r)
            dh += [da_z da_r] U_zr^T
        and the three pre-activations' gradients, summed over t, are the
        gradient of x W + b.
        """
        x, steps = cache
        H, p = self.hidden, self.name
        U_zr, U_n = params[p + ".U_zr"], params[p + ".U_n"]
        d_x_proj = np.zeros((x.shape[0], 3 * H), dtype=x.dtype)
        d_U_zr = np.zeros_like(U_zr)
        d_U_n = np.zeros_like(U_n)
        for h, z, r, rh, n in reversed(steps):
            d_z = d_h * (n - h)
            d_a_n = d_h * z * (1 - n * n)
            d_h_prev = d_h * (1 - z)
            d_rh = d_a_n @ U_n.T
            d_U_n += rh.T @ d_a_n
            d_a_zr = np.concatenate([d_z * z * (1 - z), d_rh * h * r * (1 - r)], axis=1)
            d_h_prev += d_rh * r + d_a_zr @ U_zr.T
            d_U_zr += h.T @ d_a_zr
            d_x_proj[:, :2 * H] += d_a_zr
            d_x_proj[:, 2 * H:] += d_a_n
            d_h = d_h_prev
        grads[p + ".W"], grads[p + ".b"], d_x = affine_backward(d_x_proj, x, params[p + ".W"], self.ops,
                                                                need_input_grad)
        grads[p + ".U_zr"] = d_U_zr
        grads[p + ".U_n"] = d_U_n
        return d_x


def init_gru(rng, name: str, input_dim: int, hidden: int, dtype) -> dict:
    """Glorot-uniform input and recurrent weights, zero biases."""
    W, b = init_affine(rng, input_dim, 3 * hidden, dtype)
    U_zr, _ = init_affine(rng, hidden, 2 * hidden, dtype)
    U_n, _ = init_affine(rng, hidden, hidden, dtype)
    return {f"{name}.W": W, f"{name}.b": b, f"{name}.U_zr": U_zr, f"{name}.U_n": U_n}
