import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npdvae.training.optim import (Adam, NonFiniteGradientError, _adam_update_ref, adam_update_kernel, pack_arrays,
                          packed_buffer)
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
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), size=st.integers(1, 300), t=st.integers(1, 1000))
def test_adam_kernel_equals_reference(dtype, seed, size, t):
    rng = np.random.default_rng(seed)
    state = [rng.standard_normal(size).astype(dtype) * 10 ** rng.uniform(-4, 2) for _ in range(3)]
    state.append(np.abs(rng.standard_normal(size)).astype(dtype) * 10 ** rng.uniform(-8, 2))  # v >= 0
    a = [s.copy() for s in state]
    b = [s.copy() for s in state]
    correction2 = np.sqrt(1 - 0.999 ** t)
    scalars = [dtype(c) for c in (-0.003 * correction2 / (1 - 0.9 ** t), 0.9, 0.999, 1e-8 * correction2)]
    adam_update_kernel(a[0], a[1], a[2], a[3], *scalars)
    _adam_update_ref(b[0], b[1], b[2], b[3], *scalars)
    for x, y in zip(a, b):  # same operations in the same order: the same bits
        assert x.dtype == dtype
        np.testing.assert_array_equal(x, y)


def model_like_params(rng, dtype=np.float32):
    return {"enc.W": rng.standard_normal((7, 4)).astype(dtype), "enc.b": np.zeros(4, dtype),
            "dec.W": rng.standard_normal((4, 7)).astype(dtype), "dec.b": rng.standard_normal(7).astype(dtype)}


def test_pack_arrays_keeps_values_and_shares_one_buffer():
    params = model_like_params(np.random.default_rng(0))
    packed = pack_arrays(params)
    assert list(packed) == list(params)
    for name in params:
        np.testing.assert_array_equal(packed[name], params[name])
        assert packed[name].shape == params[name].shape
    flat = packed_buffer(packed)
    assert flat is not None and flat.size == sum(p.size for p in params.values())
    packed["dec.b"][2] = 123.0  # a write through the view reaches the buffer
    assert flat[7 * 4 + 4 + 4 * 7 + 2] == 123.0
    assert packed_buffer(params) is None  # separately allocated arrays
    assert packed_buffer({"a": packed["enc.W"], "b": packed["dec.W"]}) is None  # a gap between them
    with pytest.raises(ValueError, match="one dtype"):
        pack_arrays({"a": np.ones(2, np.float32), "b": np.ones(2)})


@pytest.mark.parametrize("dtype", DTYPES)
def test_packed_per_array_and_reference_adam_agree(dtype):
    """The three ways to step: one pass over the packed buffer, one kernel call
    per array, the NumPy reference; the same trajectory to the bit."""
    rng = np.random.default_rng(3)
    start = model_like_params(rng, dtype)
    runs = {"packed": (pack_arrays(start), True), "per array": ({n: p.copy() for n, p in start.items()}, True),
            "reference": ({n: p.copy() for n, p in start.items()}, False)}
    adams = {key: Adam(params, lr=0.01, fast=fast) for key, (params, fast) in runs.items()}
    assert adams["packed"]._flat_params is not None and adams["per array"]._flat_params is None
    for _ in range(20):
        grads = {n: rng.standard_normal(p.shape).astype(dtype) for n, p in start.items()}
        for adam in adams.values():
            adam.step(grads)
    for key in ("packed", "per array"):
        for name in start:
            np.testing.assert_array_equal(runs[key][0][name], runs["reference"][0][name])
            np.testing.assert_array_equal(adams[key].m[name], adams["reference"].m[name])
            np.testing.assert_array_equal(adams[key].v[name], adams["reference"].v[name])


@pytest.mark.parametrize("packed", [True, False])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_adam_refuses_a_non_finite_gradient_before_changing_anything(packed, bad):
    rng = np.random.default_rng(4)
    params = model_like_params(rng)
    params = pack_arrays(params) if packed else params
    adam = Adam(params)
    grads = {n: rng.standard_normal(p.shape).astype(np.float32) for n, p in params.items()}
    adam.step(grads)
    before = {n: p.copy() for n, p in params.items()}
    moments = {n: (adam.m[n].copy(), adam.v[n].copy()) for n in params}
    grads["dec.W"][1, 2] = bad
    with pytest.raises(NonFiniteGradientError, match="dec.W"):
        adam.step(grads)
    assert adam.step_count == 1
    for name in params:
        np.testing.assert_array_equal(params[name], before[name])
        np.testing.assert_array_equal(adam.m[name], moments[name][0])
        np.testing.assert_array_equal(adam.v[name], moments[name][1])


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
