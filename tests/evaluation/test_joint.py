"""log p(x, z) at chosen z and its z-gradient, held to finite differences on real models."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from npdvae.evaluation.joint import log_joint
from npdvae.training.operations import operations
from npdvae.vae.model import DVAEModel, ModelConfig
from tests.gradcheck import assert_gradient_close, numerical_gradient


@settings(max_examples=12)
@given(likelihood=st.sampled_from(["bernoulli", "gaussian"]), images=st.integers(1, 3), points=st.integers(1, 3),
       latent=st.integers(1, 3), weight=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_the_z_gradient_of_the_tempered_joint_matches_finite_differences(likelihood, images, points, latent,
                                                                           weight, seed):
    rng = np.random.default_rng(seed)
    model = DVAEModel(ModelConfig(input_dim=5, latent=latent, hidden=4, likelihood=likelihood), operations(kernels=False))
    params = model.init_params(rng, np.float64)
    x = (rng.random((images, 5)) < 0.5).astype(np.float64) if likelihood == "bernoulli" else rng.random((images, 5))
    z = rng.standard_normal((images, points, latent))
    terms = log_joint(model, params, x, z)
    assert terms.log_likelihood.shape == terms.log_prior.shape == (images, points)
    probe = rng.standard_normal((images, points))   # every (image, point) counts with its own weight

    def tempered():
        t = log_joint(model, params, x, z, with_grad=False)
        return float((probe * (weight * t.log_likelihood + t.log_prior)).sum())

    analytic = (weight * terms.d_log_likelihood - z) * probe[..., None]   # d log p(z)/dz = -z
    assert_gradient_close(analytic, numerical_gradient(tempered, z), "d/dz of weight log p(x|z) + log p(z)")


def test_the_joint_is_the_models_own_log_weight_without_the_encoder():
    """log p(x, z) here plus -log q(z | x) equals the model's forward log w at the same z."""
    rng = np.random.default_rng(3)
    model = DVAEModel(ModelConfig(input_dim=6, latent=2, hidden=5), operations(kernels=False))
    params = model.init_params(rng, np.float64)
    x = (rng.random((2, 6)) < 0.5).astype(np.float64)
    eps = rng.standard_normal((2, 1, 4, 2))
    log_w, cache = model.forward(params, x, x[:, None, :], eps, with_grad=False)
    _, mu, log_sigma2, z = cache[:4]
    from npdvae.vae import distributions as dist
    log_q = dist.gaussian_log_prob(z, mu, log_sigma2)
    np.testing.assert_allclose(log_joint(model, params, x, z, with_grad=False).log_joint - log_q,
                               log_w[:, 0, :], rtol=1e-12, atol=1e-10)
