import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npdvae.nn import activations as A
from npdvae.training.operations import operations
from tests.gradcheck import check_vjp
from tests.strategies import DTYPES, float_arrays, small_shapes

NAMES = ["softplus", "sigmoid", "tanh"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("use_kernels", [True, False])
@settings(max_examples=25)
@given(data=st.data())
def test_activation_backward_matches_finite_differences(name, use_kernels, data):
    shape = data.draw(small_shapes)
    a = data.draw(float_arrays(shape))
    act = A.get_activation(name, operations(use_kernels))
    check_vjp(act.forward, lambda d_y, a: act.backward(d_y, a, act.forward(a)), (a,))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30)
@given(data=st.data())
def test_activation_kernel_equals_reference(name, dtype, data):
    fast, reference = A.get_activation(name, operations(True)), A.get_activation(name, operations(False))
    n = data.draw(st.integers(1, 40))
    a = data.draw(float_arrays((n,), -40, 40, dtype))
    d_y = data.draw(float_arrays((n,), -3, 3, dtype))
    rtol = 2e-6 if dtype == np.float32 else 1e-12
    y_fast, y_ref = fast.forward(a), reference.forward(a)
    assert y_fast.dtype == dtype and y_ref.dtype == dtype
    np.testing.assert_allclose(y_fast, y_ref, rtol=rtol, atol=rtol)
    d_fast, d_ref = fast.backward(d_y, a, y_ref), reference.backward(d_y, a, y_ref)
    assert d_fast.dtype == dtype
    np.testing.assert_allclose(d_fast, d_ref, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", NAMES)
def test_fast_forward_handles_any_layout_and_propagates_nan(name):
    fast, reference = A.get_activation(name, operations(True)), A.get_activation(name, operations(False))
    a = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32) * 5
    a[3, 2] = np.nan
    for layout in (a, a.T, a[:, ::2]):
        np.testing.assert_allclose(fast.forward(layout), reference.forward(layout), rtol=2e-6, atol=2e-6)
    assert np.isnan(fast.forward(a)[3, 2])


@pytest.mark.parametrize("use_kernels", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_softplus_and_sigmoid_stay_finite_at_extremes(use_kernels, dtype):
    a = np.array([-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4], dtype=dtype)
    softplus = A.get_activation("softplus", operations(use_kernels))
    sigmoid = A.get_activation("sigmoid", operations(use_kernels))
    y = softplus.forward(a)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y[-1], 1e4)  # softplus(a) -> a for large a
    assert y[0] == 0.0 or y[0] < 1e-30
    s = sigmoid.forward(a)
    assert np.all(np.isfinite(s)) and s[0] == 0.0 and s[-1] == 1.0


def test_unknown_activation_is_named_in_the_error():
    with pytest.raises(ValueError, match="relu"):
        A.get_activation("relu", operations(False))


def test_fast_tanh_and_sigmoid_keep_their_relative_precision_where_small():
    """tanh(a) for tiny a, and sigmoid(a) far below 0.5, in float32: where a
    form like (1 - e) / (1 + e) would keep only absolute precision."""
    a = np.array([1e-6, -3e-5, 1e-3, 0.2], np.float32)
    tanh = A.get_activation("tanh", operations(True)).forward(a)
    np.testing.assert_allclose(tanh, np.tanh(a.astype(np.float64)), rtol=4e-7)
    a = np.array([-20.0, -50.0, -80.0], np.float32)
    sigmoid = A.get_activation("sigmoid", operations(True)).forward(a)
    np.testing.assert_allclose(sigmoid, 1 / (1 + np.exp(-a.astype(np.float64))), rtol=4e-7)
