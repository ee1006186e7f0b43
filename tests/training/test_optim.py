import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npdvae.kernels import optim as fast
from npdvae.training.operations import operations
from npdvae.training.optim import Adam, NonFiniteGradientError, adam_update, pack_arrays
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


@pytest.mark.parametrize("use_kernels", [True, False])
@settings(max_examples=20)
@given(seed=st.integers(0, 2**31), steps=st.integers(1, 8), size=st.integers(1, 10))
def test_adam_follows_kingma_and_ba_algorithm_1(use_kernels, seed, steps, size):
    rng = np.random.default_rng(seed)
    theta0 = rng.standard_normal(size)
    grads = [rng.standard_normal(size) * 10 ** rng.uniform(-3, 2) for _ in range(steps)]
    adam = Adam({"theta": theta0.copy()}, lr=0.01, maximize=False, ops=operations(use_kernels))
    for g in grads:
        adam.step({"theta": g})
    np.testing.assert_allclose(adam.params["theta"], textbook_adam(theta0, grads, lr=0.01), rtol=1e-12, atol=1e-12)


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
    fast.adam_update(a[0], a[1], a[2], a[3], *scalars)
    adam_update(b[0], b[1], b[2], b[3], *scalars)
    for x, y in zip(a, b):  # same operations in the same order: the same bits
        assert x.dtype == dtype
        np.testing.assert_array_equal(x, y)


def model_like_params(rng, dtype=np.float32):
    return {"enc.W": rng.standard_normal((7, 4)).astype(dtype), "enc.b": np.zeros(4, dtype),
            "dec.W": rng.standard_normal((4, 7)).astype(dtype), "dec.b": rng.standard_normal(7).astype(dtype)}


def test_pack_arrays_keeps_values_and_shares_one_buffer():
    params = model_like_params(np.random.default_rng(0))
    flat, packed = pack_arrays(params)
    assert list(packed) == list(params) and flat.size == sum(p.size for p in params.values())
    for name in params:
        np.testing.assert_array_equal(packed[name], params[name])
        assert packed[name].shape == params[name].shape and packed[name].base is flat
    packed["dec.b"][2] = 123.0  # a write through the view reaches the buffer
    assert flat[7 * 4 + 4 + 4 * 7 + 2] == 123.0
    with pytest.raises(ValueError, match="one dtype"):
        pack_arrays({"a": np.ones(2, np.float32), "b": np.ones(2)})


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_kernel_and_reference_adam_agree_to_the_bit(dtype):
    """The kernel's one pass over the packed buffer and the NumPy definition's: the same
    trajectory; and Adam steps its own copies, never the arrays it was given."""
    rng = np.random.default_rng(3)
    start = model_like_params(rng, dtype)
    given = {n: p.copy() for n, p in start.items()}
    adams = {use: Adam(given, lr=0.01, ops=operations(use)) for use in (True, False)}
    assert all(adam.params[n].base is adam._flat_params for adam in adams.values() for n in start)
    for _ in range(20):
        grads = {n: rng.standard_normal(p.shape).astype(dtype) for n, p in start.items()}
        for adam in adams.values():
            adam.step(grads)
    for name in start:
        np.testing.assert_array_equal(adams[True].params[name], adams[False].params[name])
        np.testing.assert_array_equal(adams[True].m[name], adams[False].m[name])
        np.testing.assert_array_equal(adams[True].v[name], adams[False].v[name])
        np.testing.assert_array_equal(given[name], start[name])


@pytest.mark.parametrize("use_kernels", [True, False])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_adam_refuses_a_non_finite_gradient_before_changing_anything(use_kernels, bad):
    rng = np.random.default_rng(4)
    adam = Adam(model_like_params(rng), ops=operations(use_kernels))
    params = adam.params
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
        adam = Adam({"w": np.array([3.0, -2.0])}, lr=0.1, maximize=maximize)
        params = adam.params
        for _ in range(500):
            # objective sign * |w|^2 / 2 has gradient sign * w; its optimum is w = 0
            adam.step({"w": sign * params["w"]})
        np.testing.assert_allclose(params["w"], 0.0, atol=1e-2)


def test_state_round_trip_continues_identically():
    rng = np.random.default_rng(1)
    grads = [{"w": rng.standard_normal(3)} for _ in range(6)]
    a1 = Adam({"w": np.ones(3)})
    for g in grads:
        a1.step(g)
    a2 = Adam({"w": np.ones(3)})
    for g in grads[:3]:
        a2.step(g)
    a3 = Adam({"w": a2.params["w"].copy()})
    a3.load_state({"w": a2.m["w"].copy()}, {"w": a2.v["w"].copy()}, a2.step_count)
    for g in grads[3:]:
        a3.step(g)
    np.testing.assert_array_equal(a3.params["w"], a1.params["w"])


def test_adam_rejects_mismatched_gradients():
    adam = Adam({"w": np.ones(3)})
    with pytest.raises(ValueError, match="differing"):
        adam.step({"v": np.ones(3)})
    with pytest.raises(ValueError, match="gradient for w"):
        adam.step({"w": np.ones(4)})
    with pytest.raises(ValueError, match="lr"):
        Adam({"w": np.ones(3)}, lr=0)


def released_adam(theta, grads, lr=1e-3, beta1=0.1, beta2=0.001, epsilon=1e-8, l=1e-8, dtype=np.float64):
    """The released script's ADAM (Timsud/DVAE, optimize.py), its update rule written out as
    it reads, in its notation (beta1, beta2: the weights of the new gradient), for descent."""
    one = dtype(1)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        b1_t = dtype(1 - (1 - beta1) * l ** (t - 1))
        m = b1_t * g + (one - b1_t) * m
        v = dtype(beta2) * g ** 2 + dtype(1 - beta2) * v
        m_bias = m / dtype(1 - (1 - beta1) ** t)
        v_bias = v / dtype(1 - (1 - beta2) ** t)
        theta = theta - dtype(lr) * m_bias / (np.sqrt(v_bias) + dtype(epsilon))
    return theta, m


@pytest.mark.parametrize("use_kernels", [True, False])
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), steps=st.integers(1, 12), size=st.integers(1, 10))
def test_released_adam_follows_the_released_rule_step_by_step(use_kernels, seed, steps, size):
    from npdvae.training.adam_released import AdamReleased
    rng = np.random.default_rng(seed)
    theta0 = rng.standard_normal(size)
    grads = [rng.standard_normal(size) * 10 ** rng.uniform(-3, 2) for _ in range(steps)]
    adam = AdamReleased({"theta": theta0.copy()}, lr=0.01, maximize=False, ops=operations(use_kernels))
    for t, g in enumerate(grads, start=1):
        adam.step({"theta": g})
        expected, m = released_adam(theta0, grads[:t], lr=0.01)
        np.testing.assert_allclose(adam.params["theta"], expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(adam.m["theta"], m, rtol=1e-12, atol=1e-300)
    # a textbook Adam is a different optimizer: the test can tell them apart
    if steps >= 2:
        assert not np.allclose(textbook_adam(theta0, grads, lr=0.01), released_adam(theta0, grads, lr=0.01)[0])


def test_released_adams_first_moment_is_the_gradient_from_the_second_step_on_in_float32():
    from npdvae.training.adam_released import AdamReleased
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal(50).astype(np.float32)
    adam = AdamReleased({"theta": theta0.copy()}, lr=1e-3, maximize=False, ops=operations(True))
    grads = [(rng.standard_normal(50) * 3).astype(np.float32) for _ in range(5)]
    grads[2][:10] = 0   # where a gradient is 0 the moment is 0 too: nothing of the old one is left
    for t, g in enumerate(grads, start=1):
        adam.step({"theta": g})
        if t == 1:
            np.testing.assert_allclose(adam.m["theta"], np.float32(0.1) * g, rtol=1e-6)   # (1 - 0.9) g, as Adam's
        else:
            np.testing.assert_array_equal(adam.m["theta"], g)
    expected, _ = released_adam(theta0, grads, lr=1e-3, dtype=np.float32)
    np.testing.assert_allclose(adam.params["theta"], expected, rtol=1e-6, atol=1e-7)
