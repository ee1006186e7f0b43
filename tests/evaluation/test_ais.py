"""Annealed importance sampling against the closed-form log p(x) of a linear Gaussian decoder."""

import numpy as np
import pytest

from npdvae.evaluation.ais import (AISSettings, adapt_step_sizes, ais_log_likelihood, anneal, hmc_transition,
                                   sigmoid_schedule, _Path)
from npdvae.evaluation.evaluate import importance_sampled_bound
from tests.evaluation import linear_gaussian as lg


@pytest.fixture(scope="module")
def setup():
    model, params = lg.linear_gaussian_model(latent=2, pixels=3)
    return model, params, lg.sample_images(model, params, 8), lg.sample_images(model, params, 4, seed=7)


def test_the_sigmoid_schedule_runs_from_0_to_1_and_rises():
    betas = sigmoid_schedule(100)
    assert betas[0] == 0 and betas[-1] == 1 and np.all(np.diff(betas) > 0)
    assert np.diff(betas)[0] < np.diff(betas)[50]   # small steps at the ends


def test_hmc_leaves_the_posterior_invariant(setup):
    """At beta = 1 the chains started on the exact posterior stay on it: mean and covariance."""
    model, params, x, _ = setup
    mu, precision = lg.posterior(model, params, x[:1])
    covariance = np.linalg.inv(precision)
    rng = np.random.default_rng(0)
    path = _Path(model, params, x[:1], 4000, "prior")
    z = mu[:, None, :] + rng.standard_normal((1, 4000, 2)) @ np.linalg.cholesky(covariance).T
    for _ in range(5):
        z, _, accepted = hmc_transition(path, z, 1.0, 0.05, 5, rng)
    assert 0.5 < accepted <= 1
    np.testing.assert_allclose(z[0].mean(axis=0), mu[0], atol=4 * np.sqrt(np.diag(covariance) / 4000).max())
    np.testing.assert_allclose(np.cov(z[0].T), covariance, rtol=0.15, atol=1e-3)


@pytest.mark.parametrize("start", ["prior", "encoder"])
def test_ais_converges_to_the_exact_log_likelihood_as_the_path_lengthens(setup, start):
    model, params, x, warmup = setup
    exact = lg.log_px(model, params, x)
    errors = []
    for steps in (5, 200):
        settings = AISSettings(steps=steps, chains=16, leapfrog=5, start=start)
        step_sizes = adapt_step_sizes(model, params, warmup, settings, np.random.default_rng(1))
        estimate = ais_log_likelihood(model, params, lambda idx: x[idx], len(x), settings, step_sizes,
                                      np.random.default_rng(2), batch_size=4)
        errors.append(float(np.mean(exact - estimate)))
    short, long = errors
    assert short > 0.1 > abs(long), errors   # a short path is loose (from below), a long one within 0.1 nats
    assert long > -0.1                        # never above log p(x) beyond noise: E[w] = p(x)


def test_the_adapted_step_sizes_bring_acceptance_near_the_target(setup):
    model, params, _, warmup = setup
    settings = AISSettings(steps=300, chains=32, leapfrog=5, start="prior")
    step_sizes = adapt_step_sizes(model, params, warmup, settings, np.random.default_rng(1))
    assert step_sizes.shape == (300,) and np.all(step_sizes > 0)
    path = _Path(model, params, warmup, settings.chains, "prior")
    rng = np.random.default_rng(3)
    mu, precision = lg.posterior(model, params, warmup)
    z = mu[:, None, :] + rng.standard_normal((len(warmup), settings.chains, 2)) @ np.linalg.cholesky(
        np.linalg.inv(precision)).T
    rates = [hmc_transition(path, z, 1.0, step_sizes[-1], settings.leapfrog, rng)[2] for _ in range(10)]
    assert 0.45 < np.mean(rates) < 0.9


def test_ais_is_not_below_importance_sampling_beyond_its_error(setup):
    model, params, x, warmup = setup
    settings = AISSettings(steps=100, chains=8, leapfrog=5)
    step_sizes = adapt_step_sizes(model, params, warmup, settings, np.random.default_rng(1))
    ais, _ = anneal(model, params, x, settings, step_sizes, np.random.default_rng(4))
    importance = importance_sampled_bound(model, params, x, 100, np.random.default_rng(5))
    difference = ais - importance
    assert difference.mean() > -3 * difference.std(ddof=1) / np.sqrt(len(x))


def test_the_schedule_must_fit_the_path(setup):
    model, params, x, _ = setup
    with pytest.raises(ValueError, match="3 step sizes for 10 AIS steps"):
        ais_log_likelihood(model, params, lambda idx: x[idx], 2, AISSettings(steps=10), np.ones(3),
                           np.random.default_rng(0))
    with pytest.raises(ValueError, match="start must be one of"):
        AISSettings(start="posterior")
