"""Central finite differences, the yardstick every backward is held to.

Tolerance: with step h = 1e-6 in float64, the central difference has error
O(h^2) from truncation plus O(1e-16 / h) from rounding, about 1e-10 of the
function's scale. We require

    max |analytic - numeric| / max(1, max |numeric|)  <=  GRAD_RTOL = 1e-6,

which a wrong factor, sign or missing term fails by orders of magnitude.
"""

import numpy as np

STEP = 1e-6
GRAD_RTOL = 1e-6


def numerical_gradient(scalar_fn, array, step=STEP):
    """d scalar_fn() / d array, perturbing ``array`` in place one entry at a time."""
    grad = np.zeros_like(array, dtype=np.float64)
    flat = array.reshape(-1)
    grad_flat = grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + step
        up = scalar_fn()
        flat[i] = original - step
        down = scalar_fn()
        flat[i] = original
        grad_flat[i] = (up - down) / (2 * step)
    return grad


def gradient_error(analytic, numeric):
    numeric = np.asarray(numeric, dtype=np.float64)
    scale = max(1.0, float(np.abs(numeric).max(initial=0.0)))
    return float(np.abs(np.asarray(analytic, dtype=np.float64) - numeric).max(initial=0.0)) / scale


def assert_gradient_close(analytic, numeric, name="gradient", rtol=GRAD_RTOL):
    assert np.shape(analytic) == np.shape(numeric), f"{name}: shape {np.shape(analytic)} != {np.shape(numeric)}"
    error = gradient_error(analytic, numeric)
    assert error <= rtol, f"{name}: relative error {error:.3e} > {rtol:.0e}"


def check_vjp(forward, backward, inputs, seed=0):
    """Hold ``backward`` to finite differences of ``forward``.

    forward(*inputs) -> out (array); backward(d_out, *inputs) -> tuple of
    gradients, one per input. The scalar probed is sum(r * out) for a fixed
    random r, so every output entry counts with its own weight.
    """
    rng = np.random.default_rng(seed)
    out = np.asarray(forward(*inputs))
    r = rng.standard_normal(out.shape)
    analytic = backward(r, *inputs)
    if not isinstance(analytic, tuple):
        analytic = (analytic,)
    for position, (arr, grad) in enumerate(zip(inputs, analytic)):
        if grad is None:
            continue
        numeric = numerical_gradient(lambda: float((r * forward(*inputs)).sum()), arr)
        assert_gradient_close(grad, numeric, name=f"input {position}")


def assert_parameter_gradients(objective, params, grads):
    """Every parameter array's analytic gradient against finite differences of ``objective()``."""
    assert grads.keys() == params.keys(), sorted(set(grads) ^ set(params))
    for name, value in params.items():
        assert_gradient_close(grads[name], numerical_gradient(objective, value), name)


def assert_module_gradients(module, params, x, rng):
    """A module with ``forward(params, x) -> (out, cache)`` and
    ``backward(params, d_out, cache, grads) -> d_x``: its parameter and input
    gradients of sum(r * out), for a random r, against finite differences."""
    out, cache = module.forward(params, x)
    r = rng.standard_normal(out.shape)
    grads = {}
    d_x = module.backward(params, r, cache, grads)

    def objective():
        return float((r * module.forward(params, x)[0]).sum())

    assert_parameter_gradients(objective, params, grads)
    assert_gradient_close(d_x, numerical_gradient(objective, x), "input")
