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


def _adam_update_ref(param, grad, m, v, step_size, beta1, beta2, eps_hat, sign):
    """In place. ``step_size`` = lr sqrt(1 - beta2^t) / (1 - beta1^t) and
    ``eps_hat`` = eps sqrt(1 - beta2^t) fold both bias corrections into two
    scalars, which is algebraically the update above."""
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    param += sign * step_size * m / (np.sqrt(v) + eps_hat)


def adam_update_fast(param, grad, m, v, step_size, beta1, beta2, eps_hat, sign, work):
    """The update of :func:`_adam_update_ref`, in place, through ``work`` (same
    shape and dtype) so that no temporary array is allocated.

    Why in-place ufuncs and not a fused Numba loop: the loop did not vectorize
    here (its time is that of a scalar sqrt and division per parameter), while
    each ufunc pass runs in SIMD. Measured on the CI machine over the MNIST
    model's 385,084 float32 parameters: 0.54 ms a step against 0.92 ms for
    the Numba loop and 0.60 ms for the reference with its temporaries.
    """
    m *= beta1
    np.multiply(grad, 1 - beta1, out=work)
    m += work
    v *= beta2
    np.multiply(grad, grad, out=work)
    work *= 1 - beta2
    v += work
    np.sqrt(v, out=work)
    work += eps_hat
    np.divide(m, work, out=work)
    work *= sign * step_size
    param += work


class Adam:
    """Adam over a ``params`` dict, updating the arrays in place."""

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, maximize=True,
                 fast=True):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"beta1 and beta2 must be in [0, 1), got {beta1}, {beta2}")
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.maximize = maximize
        self.fast = fast
        self.params = params
        self.step_count = 0
        self.m = {name: np.zeros_like(p) for name, p in params.items()}
        self.v = {name: np.zeros_like(p) for name, p in params.items()}
        self._work = {name: np.empty_like(p) for name, p in params.items()} if fast else None

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
        for name, param in self.params.items():
            grad = grads[name]
            if grad.shape != param.shape or grad.dtype != param.dtype:
                raise ValueError(
                    f"gradient for {name} must be {param.shape} {param.dtype}, got {grad.shape} {grad.dtype}"
                )
            # scalars in the parameters' dtype, so float32 arithmetic stays float32
            scalars = [param.dtype.type(c) for c in (step_size, self.beta1, self.beta2, eps_hat, sign)]
            if self.fast:
                adam_update_fast(param, grad, self.m[name], self.v[name], *scalars, self._work[name])
            else:
                _adam_update_ref(param, grad, self.m[name], self.v[name], *scalars)

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
