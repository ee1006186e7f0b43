"""A DVAEModel whose decoder is linear and Gaussian, so that p(x), the posterior and the best
factorized Gaussian are known in closed form.

The model's own layers, with identity activations: h = z W0 + b0, mean = h Wm + bm (the head's
sigmoid replaced by the identity), log_var = min_log_var + softplus(b_v) with W_v = 0. So

    p(z) = N(0, I),  p(x | z) = N(z A + c, diag psi),  A = W0 Wm (Z x D),  c = b0 Wm + bm,

    p(x)         = N(x; c, A^T A + diag psi)
    p(z | x)     = N(mu, Lambda^-1),  Lambda = I + A diag(1/psi) A^T,  mu = Lambda^-1 A diag(1/psi) (x - c)
    q*(z)        = N(mu, diag 1 / Lambda_jj)        (the factorized Gaussian nearest in KL(q || p))
    ELBO(q)      = log p(x) - KL(q || p(z | x))
"""

import numpy as np
from scipy import stats

from npdvae.nn.activations import get_activation
from npdvae.nn.layers import Dense
from npdvae.training.operations import operations
from npdvae.vae.model import DVAEModel, ModelConfig


def linear_gaussian_model(latent=2, pixels=3, seed=0, dtype=np.float64):
    """(model, params): a linear Gaussian decoder with per-pixel noise, and an identity-activation
    MLP encoder, both with seeded parameters of ``dtype``."""
    config = ModelConfig(input_dim=pixels, latent=latent, hidden=latent, encoder_layers=1, decoder_layers=1,
                         activation="identity", likelihood="gaussian", min_log_var=-5.0)
    ops = operations(kernels=True)
    model = DVAEModel(config, ops)
    model.head.mean_layer = Dense("decoder.mean", get_activation("identity", ops), ops)
    rng = np.random.default_rng(seed)
    params = model.init_params(rng, dtype)
    params["decoder.log_var.W"][:] = 0
    params["decoder.log_var.b"][:] = rng.uniform(0.5, 3.0, pixels)   # psi between e^-4.5 and e^-2
    W = 1.5 * rng.standard_normal((latent, pixels))
    W[1:] = 0.9 * W[:1] + 0.3 * W[1:]   # latents that explain the pixels alike: a correlated posterior,
    params["decoder.mean.W"][:] = W      # which no factorized Gaussian matches (an approximation gap > 0)
    # an encoder no wider than the prior: an untrained one can put q(z | x) at sigma 5, which
    # makes an encoder-started AIS path (and IS) needlessly noisy
    params["encoder.log_sigma2.W"] *= 0.1
    params["encoder.log_sigma2.b"][:] = -1.0
    return model, params


def closed_form(model, params):
    """(A, c, psi) of the model's decoder."""
    W0, b0 = params["decoder.hidden0.W"], params["decoder.hidden0.b"]
    Wm, bm = params["decoder.mean.W"], params["decoder.mean.b"]
    psi = np.exp(model.config.min_log_var + np.logaddexp(0, params["decoder.log_var.b"]))
    return W0 @ Wm, b0 @ Wm + bm, psi


def log_px(model, params, x):
    A, c, psi = closed_form(model, params)
    return stats.multivariate_normal(c, A.T @ A + np.diag(psi)).logpdf(x)


def posterior(model, params, x):
    """(mu (B, Z), Lambda (Z, Z)) of p(z | x) for x (B, D)."""
    A, c, psi = closed_form(model, params)
    precision = np.eye(A.shape[0]) + (A / psi) @ A.T
    mu = np.linalg.solve(precision, (A / psi) @ (x - c).T).T
    return mu, precision


def elbo(model, params, x, mean, variance):
    """ELBO (B,) of q = N(mean, diag variance), each (B, Z), in closed form."""
    mu, precision = posterior(model, params, x)
    diff = mean - mu
    kl = 0.5 * (variance @ np.diag(precision) + np.einsum("bi,ij,bj->b", diff, precision, diff) - mu.shape[1]
                - np.linalg.slogdet(precision)[1] - np.log(variance).sum(axis=1))
    return log_px(model, params, x) - kl


def q_star(model, params, x):
    """(mean, variance) of the best factorized Gaussian per image."""
    mu, precision = posterior(model, params, x)
    return mu, np.broadcast_to(1.0 / np.diag(precision), mu.shape).copy()


def sample_images(model, params, n, seed=1):
    """n images drawn from the model's p(x)."""
    A, c, psi = closed_form(model, params)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, A.shape[0]))
    return z @ A + c + np.sqrt(psi) * rng.standard_normal((n, A.shape[1]))


def near_optimal_encoder(model, params, seed=2):
    """Set the encoder (identity activations, hidden = latent) to a perturbed q*: mu(x) the
    posterior mean's linear map with its weights and bias nudged, log_sigma2 that of q* widened by
    0.5; as a trained encoder would be, near but not at each image's best Gaussian."""
    A, c, psi = closed_form(model, params)
    precision = np.eye(A.shape[0]) + (A / psi) @ A.T
    to_mean = ((A / psi).T @ np.linalg.inv(precision).T)            # (D, Z): mu = (x - c) to_mean
    rng = np.random.default_rng(seed)
    Z = A.shape[0]
    params["encoder.hidden0.W"][:] = to_mean
    params["encoder.hidden0.b"][:] = -c @ to_mean
    params["encoder.mu.W"][:] = np.eye(Z) + 0.1 * rng.standard_normal((Z, Z))
    params["encoder.mu.b"][:] = 0.1 * rng.standard_normal(Z)
    params["encoder.log_sigma2.W"][:] = 0
    params["encoder.log_sigma2.b"][:] = np.log(1.0 / np.diag(precision)) + 0.5
    return params
