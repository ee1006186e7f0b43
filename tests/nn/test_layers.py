import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npdvae.nn.activations import get_activation
from npdvae.kernels import layers as kernels
from npdvae.nn import layers as definitions
from npdvae.nn.layers import affine_backward, affine_forward, build_mlp, init_mlp
from npdvae.training.operations import operations
from tests.gradcheck import assert_module_gradients, check_vjp
from tests.strategies import DTYPES


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 40), width=st.integers(1, 40), scale=st.floats(1e-3, 1e3))
def test_bias_kernels_equal_their_references(dtype, seed, n, width, scale):
    rng = np.random.default_rng(seed)
    a = (scale * rng.standard_normal((n, width))).astype(dtype)
    b = (scale * rng.standard_normal(width)).astype(dtype)
    kernel = kernels.add_bias(a.copy(), b)
    assert kernel.dtype == dtype
    np.testing.assert_array_equal(kernel, definitions.add_bias(a.copy(), b))  # one addition per element: exact
    sums = kernels.column_sums(a)
    assert sums.shape == (width,) and sums.dtype == dtype
    tolerance = n * np.finfo(dtype).eps * np.abs(a).sum(axis=0)  # any order of n additions stays within this
    np.testing.assert_array_less(np.abs(sums - definitions.column_sums(a)), tolerance + np.finfo(dtype).tiny)


def test_add_bias_works_in_place_on_every_row():
    a = np.zeros((3, 2), np.float32)
    out = kernels.add_bias(a, np.array([1.0, -2.0], np.float32))
    assert out is a
    np.testing.assert_array_equal(a, [[1, -2]] * 3)


@pytest.mark.parametrize("use_kernels", [True, False])
@settings(max_examples=25)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 5), fan_in=st.integers(1, 6), fan_out=st.integers(1, 6))
def test_affine_backward_matches_finite_differences(use_kernels, seed, n, fan_in, fan_out):
    rng = np.random.default_rng(seed)
    x, W, b = rng.standard_normal((n, fan_in)), rng.standard_normal((fan_in, fan_out)), rng.standard_normal(fan_out)

    def forward(x, W, b):
        return affine_forward(x, W, b, operations(use_kernels))

    def backward(d_a, x, W, b):
        d_W, d_b, d_x = affine_backward(d_a, x, W, operations(use_kernels))
        return d_x, d_W, d_b

    check_vjp(forward, backward, (x, W, b))


def test_affine_skips_input_gradient_when_not_needed():
    x, W = np.ones((2, 3)), np.ones((3, 4))
    assert affine_backward(np.ones((2, 4)), x, W, operations(False), need_input_grad=False)[2] is None


@pytest.mark.parametrize("activation", ["softplus", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("use_kernels", [True, False])
@settings(max_examples=10)
@given(seed=st.integers(0, 2**31), num_layers=st.integers(1, 3), width=st.integers(1, 5))
def test_mlp_backward_matches_finite_differences_for_every_parameter(activation, use_kernels, seed, num_layers, width):
    rng = np.random.default_rng(seed)
    ops = operations(use_kernels)
    mlp = build_mlp("net", num_layers, get_activation(activation, ops), ops)
    params = init_mlp(rng, "net", [4] + [width] * num_layers, np.float64)
    x = rng.standard_normal((3, 4))
    assert_module_gradients(mlp, params, x, rng)


def test_a_backward_without_parameter_gradients_gives_the_same_input_gradient():
    rng = np.random.default_rng(0)
    d_a, x, W = rng.standard_normal((4, 3)), rng.standard_normal((4, 5)), rng.standard_normal((5, 3))
    d_W, d_b, d_x = affine_backward(d_a, x, W, operations(False))
    none_W, none_b, same_x = affine_backward(d_a, x, W, operations(False), need_param_grads=False)
    assert none_W is None and none_b is None
    np.testing.assert_array_equal(same_x, d_x)
