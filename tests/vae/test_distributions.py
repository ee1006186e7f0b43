import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from npdvae.kernels import distributions as fast
from npdvae.vae import distributions as dist
from tests.gradcheck import check_vjp
from tests.strategies import DTYPES

shapes = st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 4))  # (N or B, K or S, Z or D)

# name: (reference forward, reference backward, fast forward, fast backward, input maker,
#        backward's arguments from the inputs, positions of the inputs that get gradients)
def _latent_inputs(rng, shape, dtype):
    N, K, Z = shape
    return (rng.standard_normal((N, K, Z)).astype(dtype), rng.standard_normal((N, Z)).astype(dtype),
            rng.uniform(-2, 2, (N, Z)).astype(dtype))


def _reparam_inputs(rng, shape, dtype):
    z, mu, log_sigma2 = _latent_inputs(rng, shape, dtype)
    return mu, log_sigma2, z  # the third is eps


def _bernoulli_inputs(rng, shape, dtype):
    B, S, D = shape
    return (rng.random((B, D)) < 0.5).astype(dtype), (3 * rng.standard_normal((B, S, D))).astype(dtype)


def _gaussian_inputs(rng, shape, dtype):
    B, S, D = shape
    return (rng.random((B, D)).astype(dtype), rng.random((B, S, D)).astype(dtype),
            rng.uniform(-3, 1, (B, S, D)).astype(dtype))


OPS = {
    "reparameterize": (dist.reparameterize, dist.reparameterize_backward,
                       fast.reparameterize, fast.reparameterize_backward,
                       _reparam_inputs, lambda mu, ls, eps: (ls, eps), (0, 1)),
    "gaussian_log_prob": (dist.gaussian_log_prob, dist.gaussian_log_prob_backward,
                          fast.gaussian_log_prob, fast.gaussian_log_prob_backward,
                          _latent_inputs, lambda z, mu, ls: (z, mu, ls), (0, 1, 2)),
    # the likelihoods return (value, cache) and their backwards take the cache, on both paths
    "bernoulli": (lambda x, l: dist.bernoulli_log_likelihood(x, l)[0],
                  lambda d, x, l: dist.bernoulli_log_likelihood_backward(d, dist.bernoulli_log_likelihood(x, l)[1]),
                  lambda x, l: fast.bernoulli_log_likelihood(x, l)[0],
                  lambda d, x, l: fast.bernoulli_log_likelihood_backward(d, fast.bernoulli_log_likelihood(x, l)[1]),
                  _bernoulli_inputs, lambda x, l: (x, l), (1,)),
    "gaussian_likelihood": (
        lambda x, m, lv: dist.gaussian_log_likelihood(x, m, lv)[0],
        lambda d, x, m, lv: dist.gaussian_log_likelihood_backward(d, dist.gaussian_log_likelihood(x, m, lv)[1]),
        lambda x, m, lv: fast.gaussian_log_likelihood(x, m, lv)[0],
        lambda d, x, m, lv: fast.gaussian_log_likelihood_backward(d, fast.gaussian_log_likelihood(x, m, lv)[1]),
        _gaussian_inputs, lambda x, m, lv: (x, m, lv), (1, 2)),
}


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("use_kernels", [True, False])
@settings(max_examples=15)
@given(seed=st.integers(0, 2**31), shape=shapes)
def test_backward_matches_finite_differences(name, use_kernels, seed, shape):
    ref, ref_back, kernel, kernel_back, make_inputs, backward_args, grad_of = OPS[name]
    forward, backward = (kernel, kernel_back) if use_kernels else (ref, ref_back)
    inputs = make_inputs(np.random.default_rng(seed), shape, np.float64)

    def backward_for_all_inputs(d_out, *inputs):
        grads = _as_tuple(backward(d_out, *backward_args(*inputs)))
        full = [None] * len(inputs)
        for position, grad in zip(grad_of, grads):
            full[position] = grad
        return tuple(full)

    check_vjp(forward, backward_for_all_inputs, inputs, seed=seed)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=15)
@given(seed=st.integers(0, 2**31), shape=shapes)
def test_kernel_equals_reference(name, dtype, seed, shape):
    ref, ref_back, kernel, kernel_back, make_inputs, backward_args, _ = OPS[name]
    rng = np.random.default_rng(seed)
    inputs = make_inputs(rng, shape, dtype)
    out_ref, out_kernel = ref(*inputs), kernel(*inputs)
    rtol = 1e-5 if dtype == np.float32 else 1e-11
    assert out_kernel.dtype == dtype and out_ref.dtype == dtype
    np.testing.assert_allclose(out_kernel, out_ref, rtol=rtol, atol=rtol * np.abs(out_ref).max())
    d_out = rng.standard_normal(out_ref.shape).astype(dtype)
    for g_kernel, g_ref in zip(_as_tuple(kernel_back(d_out, *backward_args(*inputs))),
                               _as_tuple(ref_back(d_out, *backward_args(*inputs)))):
        assert g_kernel.dtype == dtype and g_ref.dtype == dtype
        np.testing.assert_allclose(g_kernel, g_ref, rtol=rtol, atol=rtol * max(1.0, np.abs(g_ref).max()))


def test_sampler_path_gradient_of_log_q_wrt_log_sigma2_is_minus_half():
    """Through z = mu + sigma eps, log q(z) = -1/2 sum(log 2pi + log_sigma2 + eps^2):
    its total derivative is 0 for mu and -1/2 for each log_sigma2 (the entropy term)."""
    rng = np.random.default_rng(0)
    mu, log_sigma2 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    eps = rng.standard_normal((3, 2, 4))
    z = dist.reparameterize(mu, log_sigma2, eps)
    d_z, d_mu, d_ls = dist.gaussian_log_prob_backward(np.ones((3, 2)), z, mu, log_sigma2)
    path_mu, path_ls = dist.reparameterize_backward(d_z, log_sigma2, eps)
    np.testing.assert_allclose(d_mu + path_mu, 0.0, atol=1e-12)
    np.testing.assert_allclose(d_ls + path_ls, -1.0, atol=1e-12)  # -1/2 per sample, K = 2


def test_likelihood_without_gradient_gives_the_same_value():
    rng = np.random.default_rng(3)
    x, logits = _bernoulli_inputs(rng, (2, 3, 7), np.float32)
    np.testing.assert_array_equal(dist.bernoulli_log_likelihood(x, logits, with_grad=False)[0],
                                  dist.bernoulli_log_likelihood(x, logits)[0])
    x, mean, log_var = _gaussian_inputs(rng, (2, 3, 7), np.float32)
    np.testing.assert_array_equal(dist.gaussian_log_likelihood(x, mean, log_var, with_grad=False)[0],
                                  dist.gaussian_log_likelihood(x, mean, log_var)[0])


def test_log_densities_agree_with_scipy():
    rng = np.random.default_rng(1)
    z, mu, log_sigma2 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    expected = stats.norm.logpdf(z, mu[:, None], np.exp(0.5 * log_sigma2)[:, None]).sum(axis=2)
    np.testing.assert_allclose(dist.gaussian_log_prob(z, mu, log_sigma2), expected, rtol=1e-12)
    np.testing.assert_allclose(dist.standard_normal_log_prob(z), stats.norm.logpdf(z).sum(axis=2), rtol=1e-12)
    x = (rng.random((2, 4)) < 0.5).astype(float)
    logits = rng.standard_normal((2, 3, 4))
    p = 1 / (1 + np.exp(-logits))
    expected = stats.bernoulli.logpmf(x[:, None], p).sum(axis=2)
    np.testing.assert_allclose(dist.bernoulli_log_likelihood(x, logits)[0], expected, rtol=1e-10)


def test_standard_normal_backward_matches_finite_differences():
    z = np.random.default_rng(2).standard_normal((2, 3, 4))
    check_vjp(dist.standard_normal_log_prob, lambda d, z: dist.standard_normal_log_prob_backward(d, z), (z,))


@pytest.mark.parametrize("use_kernels", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_is_finite_for_extreme_logits_and_saturated_pixels(use_kernels, dtype):
    forward, backward = OPS["bernoulli"][2:4] if use_kernels else OPS["bernoulli"][0:2]
    x = np.array([[0.0, 1.0, 0.0, 1.0]], dtype=dtype)
    logits = np.array([[[1e4, 1e4, -1e4, -1e4]]], dtype=dtype)
    ll = forward(x, logits)
    # the two confident-and-wrong pixels each cost 1e4 nats; the right ones cost 0
    np.testing.assert_allclose(ll, [[-2e4]], rtol=1e-6)
    d = backward(np.ones((1, 1), dtype=dtype), x, logits)
    np.testing.assert_array_equal(d, [[[-1.0, 0.0, 0.0, 1.0]]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_kernel_lets_a_nan_logit_through(dtype):
    """The trainer stops on a NaN bound; the fused kernel must not hide one."""
    x = np.array([[0.0, 1.0, 1.0]], dtype=dtype)
    logits = np.array([[[0.5, np.nan, -2.0], [0.5, 1.0, -2.0]]], dtype=dtype)
    ll, residual = fast.bernoulli_log_likelihood(x, logits)
    assert np.isnan(ll[0, 0]) and np.isfinite(ll[0, 1])
    assert np.isnan(residual[0, 0, 1]) and np.isfinite(np.delete(residual.reshape(-1), 1)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", ["reference", "kernel"])
def test_a_subnormal_likelihood_gradient_is_stored_as_zero_and_a_normal_one_exactly(dtype, path):
    """A black pixel whose logit is far below zero (as a trained MNIST decoder makes its border)
    has x - sigmoid(l) near exp(l); scaled by a row's weight it falls below the smallest normal
    number. Such entries are 0, so that no GEMM downstream runs on subnormal operands; every
    other entry is the plain product."""
    tiny = np.finfo(dtype).tiny
    floor = np.log(tiny)                             # -87.3 in float32, -708.4 in float64
    logits = np.array([[[floor + 3, floor + 0.5, 0.0, -4.0, 5.0]]], dtype)
    x = np.zeros((1, 5), dtype)
    d_ll = np.array([[0.01]], dtype)
    forward, backward = ((dist.bernoulli_log_likelihood, dist.bernoulli_log_likelihood_backward)
                         if path == "reference" else (fast.bernoulli_log_likelihood, fast.bernoulli_log_likelihood_backward))
    _, cache = forward(x, logits)
    gradient = backward(d_ll, cache)
    plain = d_ll[:, :, None] * -(1 / (1 + np.exp(-logits.astype(np.float64))))
    assert plain[0, 0, 0] != 0 and abs(plain[0, 0, 0]) < tiny   # the case exists: a subnormal product
    assert gradient[0, 0, 0] == 0 and gradient[0, 0, 1] == 0
    np.testing.assert_allclose(gradient[0, 0, 2:], plain[0, 0, 2:], rtol=10 * np.finfo(dtype).eps)
    assert not np.any((gradient != 0) & (np.abs(gradient) < tiny))
