import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from npdvae.kernels import sampling as fast
from npdvae.training.operations import operations
from npdvae.vae import sampling as definition
from tests.strategies import DTYPES


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30)
@given(seed=st.integers(0, 2**63), shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=7))
def test_kernel_draws_the_references_numbers_and_leaves_the_same_state(dtype, seed, shape):
    kernel_rng, reference_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    kernel = fast.standard_normal(kernel_rng, shape, dtype)
    reference = definition.standard_normal(reference_rng, shape, dtype)
    assert kernel.shape == shape and kernel.dtype == dtype
    np.testing.assert_array_equal(kernel, reference)
    assert kernel_rng.bit_generator.state == reference_rng.bit_generator.state


def test_kernel_follows_numpys_float64_stream_through_the_ziggurats_rare_branches():
    # Some draws leave the ziggurat's fast path for a wedge test, and 1 in
    # 3,900 for the tail beyond 3.65 (about 516 in two million).
    kernel_rng, numpy_rng = np.random.default_rng(5), np.random.default_rng(5)
    kernel = fast.standard_normal(kernel_rng, (2_000_000,), np.float64)
    expected = numpy_rng.standard_normal(2_000_000)
    assert np.abs(expected).max() > 4.5
    np.testing.assert_array_equal(kernel, expected)
    assert kernel_rng.bit_generator.state == numpy_rng.bit_generator.state


@pytest.mark.parametrize("use_kernels", [True, False])
def test_draws_rounded_to_float32_are_the_float64_draws_rounded(use_kernels):
    draws32 = operations(use_kernels).standard_normal(np.random.default_rng(3), (1000,), np.float32)
    draws64 = operations(use_kernels).standard_normal(np.random.default_rng(3), (1000,), np.float64)
    np.testing.assert_array_equal(draws32, draws64.astype(np.float32))


@pytest.mark.parametrize("use_kernels", [True, False])
def test_draws_are_standard_normal(use_kernels):
    n = 400_000
    draws = operations(use_kernels).standard_normal(np.random.default_rng(11), (n,), np.float64)
    assert abs(draws.mean()) < 5 / np.sqrt(n)
    assert abs(draws.var() - 1) < 5 * np.sqrt(2 / n)
    # tail mass beyond 2 sigma: 4.55%
    assert abs((np.abs(draws) > 2).mean() - 0.0455) < 5 * np.sqrt(0.0455 * 0.9545 / n)


def test_a_generator_continues_where_the_draw_left_it():
    # one stream: drawing in two calls gives what one call of the combined size gives
    rng = np.random.default_rng(8)
    parts = [fast.standard_normal(rng, (3, 5)), fast.standard_normal(rng, (7,))]
    whole = fast.standard_normal(np.random.default_rng(8), (22,))
    np.testing.assert_array_equal(np.concatenate([p.ravel() for p in parts]), whole)
