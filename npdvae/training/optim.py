"""Adam (Kingma & Ba, 2015), hand-written, with bias correction.

For each parameter array theta with gradient g, at step t = 1, 2, ...:

    m <- beta1 m + (1 - beta1) g              first moment
    v <- beta2 v + (1 - beta2) g^2            second moment
    m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)
    theta <- theta -/+ lr * m_hat / (sqrt(v_hat) + eps)

We *maximize* the bound, so the default direction is ascent (``maximize``).
The state (m, v, t) is a plain dict of arrays, ready for a checkpoint.

Speed: the update reads four arrays and writes three, so it is bound by
memory traffic. The kernel path keeps every parameter in one contiguous buffer
(:func:`pack_arrays`) and makes one fused pass (:func:`adam_update_kernel`)
over the whole model.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from npdvae.nn.fastmath import ERROR_MODEL


class NonFiniteGradientError(ValueError):
    """A gradient held NaN or infinity; no parameter was changed."""


def _adam_update_ref(param, grad, m, v, step_size, beta1, beta2, eps_hat):
    """In place. ``step_size`` = +/- lr sqrt(1 - beta2^t) / (1 - beta1^t) (the
    sign is the direction) and ``eps_hat`` = eps sqrt(1 - beta2^t) fold both
    bias corrections into two scalars, which is algebraically the update above."""
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    param += step_size * m / (np.sqrt(v) + eps_hat)


@njit(cache=True, error_model=ERROR_MODEL)
def adam_update_kernel(param, grad, m, v, step_size, beta1, beta2, eps_hat):
    """:func:`_adam_update_ref` as one pass over flat arrays: each element is
    read once and written once, where the reference makes about ten passes
    and four temporaries (see :mod:`npdvae.nn.fastmath` for why the loop
    vectorizes).

    No fastmath here: the operations are the reference's, in its order, so the
    results are the same to the bit. (With ``reassoc`` LLVM may rewrite
    (1 - beta2) g^2 as g^2 - beta2 g^2, which cancels: 2e-5 relative error in v
    in float32.)"""
    one = np.ones(1, param.dtype)[0]
    keep1, keep2 = one - beta1, one - beta2
    for i in range(param.size):
        g = grad[i]
        m_i = beta1 * m[i] + keep1 * g
        v_i = beta2 * v[i] + keep2 * g * g
        m[i] = m_i
        v[i] = v_i
        param[i] += step_size * m_i / (np.sqrt(v_i) + eps_hat)


# --------------------------------------------------------------------------
# One contiguous buffer for all parameters
# --------------------------------------------------------------------------


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

    ``Adam(initial).params`` are the parameters: copies of ``initial``. With
    ``use_kernels`` they live back to back in one buffer (:func:`pack_arrays`),
    and the moments in two more laid out alike, so that a step is one pass of
    :func:`adam_update_kernel` over the whole model; without it each array is
    stepped by the NumPy reference. Either way a step whose gradient holds NaN
    or infinity raises :class:`NonFiniteGradientError` before any parameter changes.
    """

    def __init__(self, initial: dict, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, maximize=True,
                 use_kernels=True):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"beta1 and beta2 must be in [0, 1), got {beta1}, {beta2}")
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.maximize = maximize
        self.use_kernels = use_kernels
        self.step_count = 0
        if use_kernels:
            self._flat_params, self.params = pack_arrays(initial)
            self._flat_m = np.zeros_like(self._flat_params)
            self._flat_v = np.zeros_like(self._flat_params)
            self._flat_grad = np.empty_like(self._flat_params)   # the gradients gathered for one pass
            self.m = _flat_views(self._flat_m, self.params)
            self.v = _flat_views(self._flat_v, self.params)
        else:
            self.params = {name: np.array(p, copy=True) for name, p in initial.items()}
            self.m = {name: np.zeros_like(p) for name, p in self.params.items()}
            self.v = {name: np.zeros_like(p) for name, p in self.params.items()}

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
        if self.use_kernels:
            np.concatenate([grads[name].reshape(-1) for name in self.params], out=self._flat_grad)
            if not np.isfinite(self._flat_grad).all():
                self._raise_non_finite(grads)
        elif not all(np.isfinite(g).all() for g in grads.values()):
            self._raise_non_finite(grads)

        self.step_count += 1
        t = self.step_count
        lr = self.lr if lr is None else lr
        correction2 = np.sqrt(1.0 - self.beta2 ** t)
        sign = 1.0 if self.maximize else -1.0
        step_size = sign * lr * correction2 / (1.0 - self.beta1 ** t)
        eps_hat = self.eps * correction2

        def scalars(dtype):
            # in the parameters' dtype, so float32 arithmetic stays float32
            return [dtype.type(c) for c in (step_size, self.beta1, self.beta2, eps_hat)]

        if self.use_kernels:
            adam_update_kernel(self._flat_params, self._flat_grad, self._flat_m, self._flat_v,
                               *scalars(self._flat_params.dtype))
            return
        for name, param in self.params.items():
            _adam_update_ref(param, grads[name], self.m[name], self.v[name], *scalars(param.dtype))

    def _raise_non_finite(self, grads):
        bad = [name for name, g in grads.items() if not np.isfinite(g).all()]
        raise NonFiniteGradientError(f"non-finite gradient for {', '.join(bad)}; no parameter was updated")

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
