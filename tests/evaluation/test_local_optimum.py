"""The locally optimal Gaussian: its hand-written gradients, and the optimum it reaches where
the optimum is known (a linear Gaussian decoder)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npdvae.evaluation.local_optimum import (LocalOptimumSettings, bound_gradients, gaussian_bound,
                                             gaussian_log_weights, grouped_iw_bound, last_change,
                                             optimize_gaussian)
from npdvae.training.operations import operations
from npdvae.vae.model import DVAEModel, ModelConfig
from tests.evaluation import linear_gaussian as lg
from tests.gradcheck import assert_gradient_close, numerical_gradient


@settings(max_examples=10)
@given(likelihood=st.sampled_from(["bernoulli", "gaussian"]), images=st.integers(1, 3), samples=st.integers(1, 4),
       latent=st.integers(1, 3), seed=st.integers(0, 1000))
def test_the_bounds_gradients_in_mu_and_log_sigma2_match_finite_differences(likelihood, images, samples, latent,
                                                                             seed):
    rng = np.random.default_rng(seed)
    model = DVAEModel(ModelConfig(input_dim=5, latent=latent, hidden=4, likelihood=likelihood), operations(kernels=False))
    params = model.init_params(rng, np.float64)
    x = (rng.random((images, 5)) < 0.5).astype(np.float64) if likelihood == "bernoulli" else rng.random((images, 5))
    mu = rng.standard_normal((images, latent))
    log_sigma2 = rng.uniform(-2, 1, (images, latent))
    eps = rng.standard_normal((images, samples, latent))
    _, d_mu, d_log_sigma2 = bound_gradients(model, params, x, mu, log_sigma2, eps)

    def total():   # each image's bound depends on its own (mu, log_sigma2) only: the sum's gradient is theirs
        return float(bound_gradients(model, params, x, mu, log_sigma2, eps)[0].sum())

    assert_gradient_close(d_mu, numerical_gradient(total, mu), "dL/dmu")
    assert_gradient_close(d_log_sigma2, numerical_gradient(total, log_sigma2), "dL/dlog_sigma2")


def test_the_closed_form_entropy_and_the_sampled_bound_estimate_the_same_elbo():
    model, params = lg.linear_gaussian_model(latent=2, pixels=3)
    x = lg.sample_images(model, params, 4)
    rng = np.random.default_rng(0)
    mu, log_sigma2 = rng.standard_normal((4, 2)), rng.uniform(-2, 0, (4, 2))
    exact = lg.elbo(model, params, x, mu, np.exp(log_sigma2))
    for estimator in (gaussian_bound, lambda *args: bound_gradients(*args)[0]):
        chunks = np.array([estimator(model, params, x, mu, log_sigma2, rng.standard_normal((4, 10_000, 2)))
                           for _ in range(20)])
        stderr = chunks.std(axis=0, ddof=1) / np.sqrt(len(chunks))
        assert np.all(np.abs(chunks.mean(axis=0) - exact) < 4 * stderr + 1e-3), (chunks.mean(axis=0), exact, stderr)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_reaches_the_analytic_best_factorized_gaussian(dtype):
    model, params = lg.linear_gaussian_model(latent=2, pixels=3, dtype=dtype)
    x = lg.sample_images(model, params, 5).astype(dtype)
    mu0, log_sigma2_0, _ = model.encode(params, x)
    mu, log_sigma2, trace = optimize_gaussian(model, params, x, mu0, log_sigma2_0,
                                              LocalOptimumSettings(steps=4000, lr=5e-2, samples=20),
                                              np.random.default_rng(0))
    want_mean, want_variance = lg.q_star(model, params, x.astype(np.float64))
    np.testing.assert_allclose(mu, want_mean, atol=0.05)
    np.testing.assert_allclose(log_sigma2, np.log(want_variance), atol=0.1)
    reached = lg.elbo(model, params, x.astype(np.float64), mu.astype(np.float64), np.exp(log_sigma2.astype(np.float64)))
    best = lg.elbo(model, params, x.astype(np.float64), want_mean, want_variance)
    assert np.all(best - reached < 0.02) and np.all(best - reached >= -1e-9)
    assert abs(last_change(trace)) < 0.1


def test_last_change_compares_the_last_two_tenths():
    assert last_change(np.r_[np.zeros(80), np.full(10, 1.0), np.full(10, 1.5)]) == 0.5
    with pytest.raises(ValueError, match="steps must be >= 20"):
        LocalOptimumSettings(steps=10)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 30), st.integers(1, 7), st.integers(0, 2 ** 32 - 1))
def test_the_grouped_iw_bound_is_its_definition_and_the_elbo_at_k_1(images, samples, k, seed):
    log_w = np.random.default_rng(seed).normal(-90.0, 3.0, size=(images, samples))
    if k > samples:
        with pytest.raises(ValueError, match="group"):
            grouped_iw_bound(log_w, k)
        return
    groups = samples // k
    want = np.array([np.mean([np.log(np.mean(np.exp(row[g * k:(g + 1) * k] + 90.0))) - 90.0
                              for g in range(groups)]) for row in log_w])
    np.testing.assert_allclose(grouped_iw_bound(log_w, k), want, rtol=0, atol=1e-10)
    if k == 1:
        np.testing.assert_array_equal(grouped_iw_bound(log_w, 1), log_w.mean(axis=1))


def test_the_encoders_k_bound_is_the_iwae_bound_and_lies_between_its_elbo_and_log_px():
    """The grouped estimate of the K-sample bound of a linear Gaussian model's encoder agrees with the
    mean of many K-sample importance-sampled estimates (the evaluation's own code), rises with K,
    and stays below the exact log p(x)."""
    model, params = lg.linear_gaussian_model(latent=2, pixels=3)
    lg.near_optimal_encoder(model, params)
    x = lg.sample_images(model, params, 4, seed=5)
    mu, log_sigma2, _ = model.encode(params, x)
    rng = np.random.default_rng(0)
    log_w = gaussian_log_weights(model, params, x, mu, log_sigma2, rng.standard_normal((4, 100_000, 2)))
    elbo = log_w.mean(axis=1)
    np.testing.assert_allclose(elbo, lg.elbo(model, params, x, mu, np.exp(log_sigma2)), atol=0.05)
    bounds = {k: grouped_iw_bound(log_w, k) for k in (1, 5, 50)}
    np.testing.assert_array_equal(bounds[1], elbo)
    assert np.all(bounds[1] < bounds[5]) and np.all(bounds[5] < bounds[50])
    assert np.all(bounds[50] < lg.log_px(model, params, x))
    from npdvae.evaluation.evaluate import importance_sampled_bound
    draws = np.stack([importance_sampled_bound(model, params, x, 5, rng) for _ in range(4000)])
    error = draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
    # the grouped estimate has 20,000 groups, four times the draws' 4,000: its own error is half theirs
    assert np.all(np.abs(bounds[5] - draws.mean(axis=0)) < 4 * 1.2 * error), (bounds[5], draws.mean(axis=0), error)
    # and a K bound that forgot the 1/K inside the log would be log 5 = 1.6 nats off: far outside
    assert np.all(4 * 1.2 * error < 0.2)
