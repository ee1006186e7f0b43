import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from npdvae.kernels import bounds as fast
from npdvae.training.operations import operations
from npdvae.vae import bounds
from tests.gradcheck import check_vjp
from tests.strategies import DTYPES

shapes = st.tuples(st.integers(1, 4), st.sampled_from([1, 2]), st.sampled_from([1, 2, 5]))  # (B, M, K)


@pytest.mark.parametrize("kind", bounds.BOUNDS)
@pytest.mark.parametrize("use_kernels", [True, False])
@settings(max_examples=20)
@given(seed=st.integers(0, 2**31), shape=shapes, scale=st.sampled_from([1.0, 30.0]))
def test_bound_backward_matches_finite_differences(kind, use_kernels, seed, shape, scale):
    log_w = scale * np.random.default_rng(seed).standard_normal(shape)

    def forward(log_w):
        return bounds.bound(kind, log_w, operations(use_kernels))[0]

    def backward(d_bound, log_w):
        return bounds.bound_backward(kind, d_bound, bounds.bound(kind, log_w, operations(use_kernels))[1])

    check_vjp(forward, backward, (log_w,), seed=seed)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30)
@given(seed=st.integers(0, 2**31), rows=st.integers(1, 6), K=st.integers(1, 8), scale=st.floats(0.1, 500))
def test_log_mean_exp_kernel_equals_reference_and_scipy(dtype, seed, rows, K, scale):
    log_w = (scale * np.random.default_rng(seed).standard_normal((rows, K))).astype(dtype)
    lme_k, w_k = fast.log_mean_exp(log_w)
    lme_r, w_r = bounds.log_mean_exp(log_w)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert lme_k.dtype == lme_r.dtype == w_k.dtype == w_r.dtype == dtype
    np.testing.assert_allclose(lme_k, lme_r, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(w_k, w_r, rtol=rtol, atol=rtol)
    expected = logsumexp(log_w.astype(np.float64), axis=1) - math.log(K)
    np.testing.assert_allclose(lme_k, expected, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(w_k.sum(axis=1), 1.0, rtol=rtol)


@settings(max_examples=30)
@given(seed=st.integers(0, 2**31), B=st.integers(1, 5), M=st.integers(1, 3))
def test_diwae_with_k1_equals_dvae(seed, B, M):
    log_w = 50 * np.random.default_rng(seed).standard_normal((B, M, 1))
    np.testing.assert_allclose(bounds.iwae_bound(log_w, operations(False))[0], bounds.elbo_bound(log_w), rtol=1e-12)
    d = np.ones(B)
    np.testing.assert_allclose(bounds.iwae_bound_backward(d, bounds.iwae_bound(log_w, operations(False))[1]),
                               bounds.elbo_bound_backward(d, log_w.shape), rtol=1e-12)


def test_diwae_is_at_least_dvae_on_the_same_weights():
    """Jensen: log mean exp >= mean log, for every example."""
    log_w = 10 * np.random.default_rng(0).standard_normal((50, 2, 5))
    assert np.all(bounds.iwae_bound(log_w, operations(False))[0] >= bounds.elbo_bound(log_w) - 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_diwae_is_finite_for_huge_log_weights(dtype):
    log_w = np.array([[[-1e4, -2e4, 3e3], [1e4, 1e4, -1e4]]], dtype=dtype)
    value, weights = bounds.iwae_bound(log_w, operations(False))
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(weights))
    np.testing.assert_allclose(value, [(3e3 + 1e4 + math.log(2)) / 2 - math.log(3)], rtol=1e-6)


def test_unknown_bound_is_named_in_the_error():
    with pytest.raises(ValueError, match="vae"):
        bounds.bound("vae", np.zeros((1, 1, 1)), operations(False))
