"""Adam (Kingma & Ba, 2015), hand-written, with bias correction.

For each parameter array theta with gradient g, at step t = 1, 2, ...:

    m <- beta1 m + (1 - beta1) g              first moment
    v <- beta2 v + (1 - beta2) g^2            second moment
    m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)
    theta <- theta -/+ lr * m_hat / (sqrt(v_hat) + eps)

We *maximize* the bound, so the default direction is ascent (``maximize``).
The state (m, v, t) is a plain dict of arrays, ready for a checkpoint.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from npdvae.fastmath import FASTMATH


def _adam_update_ref(param, grad, m, v, step_size, beta1, beta2, eps_hat, sign):
    """In place. ``step_size`` = lr sqrt(1 - beta2^t) / (1 - beta1^t) and
    ``eps_hat`` = eps sqrt(1 - beta2^t) fold both bias corrections into two
    scalars, which is algebraically the update above."""
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    param += sign * step_size * m / (np.sqrt(v) + eps_hat)


@njit(cache=True, fastmath=FASTMATH)
def adam_update_kernel(param, grad, m, v, step_size, beta1, beta2, eps_hat, sign):
    one_minus_beta1 = 1 - beta1
    one_minus_beta2 = 1 - beta2
    for i in range(param.size):
        g = grad[i]
        m[i] = beta1 * m[i] + one_minus_beta1 * g
        v[i] = beta2 * v[i] + one_minus_beta2 * g * g
        param[i] += sign * step_size * m[i] / (np.sqrt(v[i]) + eps_hat)


class Adam:
    """Adam over a ``params`` dict, updating the arrays in place."""

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, maximize=True,
                 use_kernel=True):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"beta1 and beta2 must be in [0, 1), got {beta1}, {beta2}")
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.maximize = maximize
        self.use_kernel = use_kernel
        self.params = params
        self.step_count = 0
        self.m = {name: np.zeros_like(p) for name, p in params.items()}
        self.v = {name: np.zeros_like(p) for name, p in params.items()}

    def step(self, grads, lr=None):
        """One update of every parameter from ``grads`` (same names, shapes)."""
        if grads.keys() != self.params.keys():
            missing = sorted(set(self.params) ^ set(grads))
            raise ValueError(f"grads must name exactly the parameters; differing: {missing}")
        self.step_count += 1
        t = self.step_count
        lr = self.lr if lr is None else lr
        correction2 = np.sqrt(1.0 - self.beta2 ** t)
        step_size = lr * correction2 / (1.0 - self.beta1 ** t)
        eps_hat = self.eps * correction2
        sign = 1.0 if self.maximize else -1.0
        update = adam_update_kernel if self.use_kernel else _adam_update_ref
        for name, param in self.params.items():
            grad = grads[name]
            if grad.shape != param.shape or grad.dtype != param.dtype:
                raise ValueError(
                    f"gradient for {name} must be {param.shape} {param.dtype}, got {grad.shape} {grad.dtype}"
                )
            flat = [a.reshape(-1) for a in (param, np.ascontiguousarray(grad), self.m[name], self.v[name])]
            # scalars in the parameters' dtype, so float32 arithmetic stays float32
            scalars = [param.dtype.type(c) for c in (step_size, self.beta1, self.beta2, eps_hat, sign)]
            update(*flat, *scalars)

    def state_dict(self):
        """Everything needed to continue exactly: moments, step and settings."""
        return {
            "m": self.m, "v": self.v, "step": self.step_count,
            "lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
        }

    def load_state_dict(self, state):
        for name in self.params:
            self.m[name][...] = state["m"][name]
            self.v[name][...] = state["v"][name]
        self.step_count = int(state["step"])
