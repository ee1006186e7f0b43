import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npdvae.activations import get_activation
from npdvae.layers import affine_backward, affine_forward, build_mlp, init_mlp
from tests.gradcheck import assert_module_gradients, check_vjp


@settings(max_examples=25)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 5), fan_in=st.integers(1, 6), fan_out=st.integers(1, 6))
def test_affine_backward_matches_finite_differences(seed, n, fan_in, fan_out):
    rng = np.random.default_rng(seed)
    x, W, b = rng.standard_normal((n, fan_in)), rng.standard_normal((fan_in, fan_out)), rng.standard_normal(fan_out)

    def backward(d_a, x, W, b):
        d_W, d_b, d_x = affine_backward(d_a, x, W)
        return d_x, d_W, d_b

    check_vjp(affine_forward, backward, (x, W, b))


def test_affine_skips_input_gradient_when_not_needed():
    x, W = np.ones((2, 3)), np.ones((3, 4))
    assert affine_backward(np.ones((2, 4)), x, W, need_input_grad=False)[2] is None


@pytest.mark.parametrize("activation", ["softplus", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("use_kernels", [True, False])
@settings(max_examples=10)
@given(seed=st.integers(0, 2**31), num_layers=st.integers(1, 3), width=st.integers(1, 5))
def test_mlp_backward_matches_finite_differences_for_every_parameter(activation, use_kernels, seed, num_layers, width):
    rng = np.random.default_rng(seed)
    mlp = build_mlp("net", num_layers, get_activation(activation, use_kernels))
    params = init_mlp(rng, "net", [4] + [width] * num_layers, np.float64)
    x = rng.standard_normal((3, 4))
    assert_module_gradients(mlp, params, x, rng)
