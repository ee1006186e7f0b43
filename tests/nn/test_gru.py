import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npdvae.nn.gru import GRU, init_gru
from npdvae.training.operations import operations
from tests.gradcheck import assert_module_gradients


@pytest.mark.parametrize("use_kernels", [True, False])
@settings(max_examples=15)
@given(seed=st.integers(0, 2**31), N=st.integers(1, 4), D=st.integers(1, 6), H=st.integers(1, 5),
       steps=st.integers(1, 5))
def test_gru_backward_through_time_matches_finite_differences(use_kernels, seed, N, D, H, steps):
    rng = np.random.default_rng(seed)
    gru = GRU("g", H, steps, operations(use_kernels))
    params = init_gru(rng, "g", D, H, np.float64)
    for value in params.values():
        value += 0.5 * rng.standard_normal(value.shape)
    x = rng.standard_normal((N, D))
    assert_module_gradients(gru, params, x, rng)


def test_one_gru_step_follows_the_equations():
    rng = np.random.default_rng(0)
    D, H = 3, 2
    params = init_gru(rng, "g", D, H, np.float64)
    params["g.b"][:] = rng.standard_normal(3 * H)
    x = rng.standard_normal((4, D))
    sig = lambda a: 1 / (1 + np.exp(-a))
    W, b = params["g.W"], params["g.b"]
    h0 = np.zeros((4, H))
    z = sig(x @ W[:, :H] + b[:H])
    n = np.tanh(x @ W[:, 2 * H:] + b[2 * H:])   # r * h0 = 0 at the first step
    h1 = (1 - z) * h0 + z * n
    U_zr, U_n = params["g.U_zr"], params["g.U_n"]
    z2 = sig(x @ W[:, :H] + h1 @ U_zr[:, :H] + b[:H])
    r2 = sig(x @ W[:, H:2 * H] + h1 @ U_zr[:, H:] + b[H:2 * H])
    n2 = np.tanh(x @ W[:, 2 * H:] + (r2 * h1) @ U_n + b[2 * H:])
    h2 = (1 - z2) * h1 + z2 * n2
    for use_kernels in (True, False):
        np.testing.assert_allclose(GRU("g", H, 1, operations(use_kernels)).forward(params, x)[0], h1, rtol=1e-12)
        np.testing.assert_allclose(GRU("g", H, 2, operations(use_kernels)).forward(params, x)[0], h2, rtol=1e-12)


def test_gru_keeps_float32():
    params = init_gru(np.random.default_rng(0), "g", 5, 3, np.float32)
    h, cache = GRU("g", 3, 5, operations(True)).forward(params, np.ones((2, 5), np.float32))
    grads = {}
    GRU("g", 3, 5, operations(True)).backward(params, np.ones((2, 3), np.float32), cache, grads)
    assert h.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())
