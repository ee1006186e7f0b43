"""Adam (Kingma & Ba, 2015), hand-written, with bias correction; and gradient clipping.
(The authors' released code's variant is npdvae/training/adam_released.py.)

For each parameter array theta with gradient g, at step t = 1, 2, ...:

    m <- beta1 m + (1 - beta1) g              first moment
    v <- beta2 v + (1 - beta2) g^2            second moment
    m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)
    theta <- theta -/+ lr * m_hat / (sqrt(v_hat) + eps)

We *maximize* the bound, so the default direction is ascent (``maximize``). The
parameters and both moments each live in one contiguous buffer (:func:`pack_arrays`), so
that a step is one call of the update over the whole model; the named arrays are views of
it, ready for the model and for a checkpoint.
"""

from __future__ import annotations

import numpy as np


class NonFiniteGradientError(ValueError):
    """A gradient held NaN or infinity; no parameter was changed."""


def clip_by_global_norm(grads: dict, max_norm: float) -> float:
    """Scale all gradients in place so that their joint L2 norm sqrt(sum_i ||g_i||^2) is at
    most ``max_norm``; returns the norm before clipping."""
    norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values())))
    if norm > max_norm:
        scale = max_norm / norm
        for g in grads.values():
            g *= scale
    return norm


def adam_update(param, grad, m, v, step_size, beta1, beta2, eps_hat):
    """The update above, in place on flat arrays. ``step_size`` = +/- lr sqrt(1 - beta2^t) /
    (1 - beta1^t) (the sign is the direction) and ``eps_hat`` = eps sqrt(1 - beta2^t) fold
    both bias corrections into two scalars, which is algebraically the same update."""
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    param += step_size * m / (np.sqrt(v) + eps_hat)


def pack_arrays(arrays: dict) -> tuple[np.ndarray, dict]:
    """The arrays copied, in order, into one contiguous 1-D buffer: (buffer, name -> a view of
    it with the array's shape). Writing to a view writes the buffer."""
    dtypes = {a.dtype for a in arrays.values()}
    if len(dtypes) != 1:
        raise ValueError(f"arrays to pack must share one dtype, got {sorted(map(str, dtypes))}")
    flat = np.empty(sum(a.size for a in arrays.values()), dtypes.pop())
    views = _flat_views(flat, arrays)
    for name, array in arrays.items():
        views[name][...] = array
    return flat, views


def _flat_views(flat, like: dict) -> dict:
    views, start = {}, 0
    for name, array in like.items():
        views[name] = flat[start:start + array.size].reshape(array.shape)
        start += array.size
    return views


class Adam:
    """Adam over a dict of parameter arrays, which it holds and updates in place.

    ``Adam(initial).params`` are the parameters: copies of ``initial``, views of one buffer.
    ``ops`` (a table of :func:`npdvae.training.operations.operations`) gives the update's twin; without
    it :func:`adam_update` runs (the same bits). A step whose gradient holds NaN or infinity
    raises :class:`NonFiniteGradientError` before any parameter changes."""

    def __init__(self, initial: dict, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, maximize=True, ops=None):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"beta1 and beta2 must be in [0, 1), got {beta1}, {beta2}")
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.maximize = maximize
        self._update = ops.adam_update if ops else adam_update
        self.step_count = 0
        self._flat_params, self.params = pack_arrays(initial)
        self._flat_m = np.zeros_like(self._flat_params)
        self._flat_v = np.zeros_like(self._flat_params)
        self._flat_grad = np.empty_like(self._flat_params)   # the gradients gathered for one pass
        self.m = _flat_views(self._flat_m, self.params)
        self.v = _flat_views(self._flat_v, self.params)

    def step(self, grads, lr=None):
        """One update of every parameter from ``grads`` (same names, shapes)."""
        if grads.keys() != self.params.keys():
            missing = sorted(set(self.params) ^ set(grads))
            raise ValueError(f"grads must name exactly the parameters; differing: {missing}")
        for name, param in self.params.items():
            grad = grads[name]
            if grad.shape != param.shape or grad.dtype != param.dtype:
                raise ValueError(
                    f"gradient for {name} must be {param.shape} {param.dtype}, got {grad.shape} {grad.dtype}"
                )
        np.concatenate([grads[name].reshape(-1) for name in self.params], out=self._flat_grad)
        if not np.isfinite(self._flat_grad).all():
            bad = [name for name, g in grads.items() if not np.isfinite(g).all()]
            raise NonFiniteGradientError(f"non-finite gradient for {', '.join(bad)}; no parameter was updated")

        self.step_count += 1
        t = self.step_count
        lr = self.lr if lr is None else lr
        correction2 = np.sqrt(1.0 - self.beta2 ** t)
        sign = 1.0 if self.maximize else -1.0
        step_size = sign * lr * correction2 / (1.0 - self.beta1 ** t)
        eps_hat = self.eps * correction2
        dtype = self._flat_params.dtype.type   # float32 arithmetic stays float32
        self._update(self._flat_params, self._flat_grad, self._flat_m, self._flat_v,
                     dtype(step_size), self.first_moment_decay(t, dtype), dtype(self.beta2), dtype(eps_hat))

    def load_state(self, m: dict, v: dict, step: int):
        """Continue from a checkpoint's moments and step count."""
        for name in self.params:
            self.m[name][...] = m[name]
            self.v[name][...] = v[name]
        self.step_count = int(step)

    def first_moment_decay(self, t: int, dtype=np.float64):
        """The weight of the old first moment at step t: beta1, whatever t (textbook Adam)."""
        return dtype(self.beta1)
