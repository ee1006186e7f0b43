import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npdvae.optim import Adam, _adam_update_ref, adam_update_fast
from tests.strategies import DTYPES


def textbook_adam(theta, grads, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """Algorithm 1 of Kingma & Ba, literally, for descent."""
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


@pytest.mark.parametrize("fast", [True, False])
@settings(max_examples=20)
@given(seed=st.integers(0, 2**31), steps=st.integers(1, 8), size=st.integers(1, 10))
def test_adam_follows_kingma_and_ba_algorithm_1(fast, seed, steps, size):
    rng = np.random.default_rng(seed)
    theta0 = rng.standard_normal(size)
    grads = [rng.standard_normal(size) * 10 ** rng.uniform(-3, 2) for _ in range(steps)]
    params = {"theta": theta0.copy()}
    adam = Adam(params, lr=0.01, maximize=False, fast=fast)
    for g in grads:
        adam.step({"theta": g})
    np.testing.assert_allclose(params["theta"], textbook_adam(theta0, grads, lr=0.01), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_fast_path_equals_reference(dtype):
    rng = np.random.default_rng(0)
    state = [rng.standard_normal(50).astype(dtype) for _ in range(4)]
    state[3] = np.abs(state[3])  # v >= 0
    a = [s.copy() for s in state]
    b = [s.copy() for s in state]
    scalars = [dtype(c) for c in (0.003, 0.9, 0.999, 1e-8, 1.0)]
    adam_update_fast(a[0], a[1], a[2], a[3], *scalars, np.empty_like(a[0]))
    _adam_update_ref(b[0], b[1], b[2], b[3], *scalars)
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    for x, y in zip(a, b):
        assert x.dtype == dtype
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol)


def test_maximize_climbs_and_minimize_descends_a_quadratic():
    for maximize, sign in ((True, -1.0), (False, 1.0)):
        params = {"w": np.array([3.0, -2.0])}
        adam = Adam(params, lr=0.1, maximize=maximize)
        for _ in range(500):
            # objective sign * |w|^2 / 2 has gradient sign * w; its optimum is w = 0
            adam.step({"w": sign * params["w"]})
        np.testing.assert_allclose(params["w"], 0.0, atol=1e-2)


def test_state_round_trip_continues_identically():
    rng = np.random.default_rng(1)
    grads = [{"w": rng.standard_normal(3)} for _ in range(6)]
    p1 = {"w": np.ones(3)}
    a1 = Adam(p1)
    for g in grads:
        a1.step(g)
    p2 = {"w": np.ones(3)}
    a2 = Adam(p2)
    for g in grads[:3]:
        a2.step(g)
    state = {k: (dict((n, x.copy()) for n, x in v.items()) if isinstance(v, dict) else v)
             for k, v in a2.state_dict().items()}
    p3 = {"w": p2["w"].copy()}
    a3 = Adam(p3)
    a3.load_state_dict(state)
    for g in grads[3:]:
        a3.step(g)
    np.testing.assert_array_equal(p3["w"], p1["w"])


def test_adam_rejects_mismatched_gradients():
    adam = Adam({"w": np.ones(3)})
    with pytest.raises(ValueError, match="differing"):
        adam.step({"v": np.ones(3)})
    with pytest.raises(ValueError, match="gradient for w"):
        adam.step({"w": np.ones(4)})
    with pytest.raises(ValueError, match="lr"):
        Adam({"w": np.ones(3)}, lr=0)
