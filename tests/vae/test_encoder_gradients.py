"""The estimators of the encoder's gradient (DVAEModel.backward): DReG is unbiased for eq. 12
where the path term with unsquared weights is not, DReG is STL at K = 1, STL is zero draw by
draw at the exact posterior, and the decoder's gradient is the same bits under all three."""

import numpy as np
import pytest

from npdvae.vae.model import ENCODER_GRADIENTS
from npdvae.vae.sampling import standard_normal
from tests.evaluation.linear_gaussian import linear_gaussian_model
from tests.vae.test_model import make_problem


def encoder_arrays(grads):
    return {name: g for name, g in grads.items() if name.startswith("encoder")}


def paired_draws(model, params, x, x_tilde, K, n, estimators, seed=0):
    """{estimator: {array: (n, ...) gradients}} of eq. 12, every estimator on the same n draws of eps."""
    rng = np.random.default_rng(seed)
    B, M = x_tilde.shape[:2]
    out = {e: {} for e in estimators}
    for _ in range(n):
        eps = standard_normal(rng, (B, M, K, model.config.latent), x.dtype)
        for e in estimators:
            grads = model.bound_and_gradients(params, x, x_tilde, eps, "iwae", e).grads
            for name, g in encoder_arrays(grads).items():
                out[e].setdefault(name, []).append(g.copy())
    return {e: {name: np.array(gs) for name, gs in arrays.items()} for e, arrays in out.items()}


def largest_z_score(differences: dict) -> float:
    """The largest |mean / standard error| over every element of every array's (n, ...) draws."""
    worst = 0.0
    for d in differences.values():
        mean, se = d.mean(axis=0), d.std(axis=0, ddof=1) / np.sqrt(len(d))
        shown = se > 1e-12 * (1 + np.abs(mean))   # elements the estimators agree on to the bit have no spread
        worst = max(worst, float(np.max(np.abs(mean[shown]) / se[shown], initial=0.0)))
    return worst


def test_dreg_is_unbiased_for_the_iwae_bound_and_the_unsquared_path_term_is_caught():
    model, params, x, x_tilde, _ = make_problem(3, M=2, K=5, B=2, D=6, Z=2, H=4)
    draws = paired_draws(model, params, x, x_tilde, K=5, n=4000, estimators=ENCODER_GRADIENTS)
    dreg = {name: draws["dreg"][name] - draws["standard"][name] for name in draws["standard"]}
    unsquared = {name: draws["stl"][name] - draws["standard"][name] for name in draws["standard"]}
    assert largest_z_score(dreg) < 4.5                 # within a few standard errors, every element
    assert largest_z_score(unsquared) > 10             # the same test sees the path term's bias


def test_dreg_with_one_sample_is_stl_and_every_estimator_leaves_the_decoder_alone():
    model, params, x, x_tilde, eps = make_problem(5, M=2, K=1)
    stl = model.bound_and_gradients(params, x, x_tilde, eps, "iwae", "stl").grads
    dreg = model.bound_and_gradients(params, x, x_tilde, eps, "iwae", "dreg").grads
    assert all(np.array_equal(stl[name], dreg[name]) for name in stl)
    model, params, x, x_tilde, eps = make_problem(6, M=2, K=4, dtype=np.float32)
    grads = {e: model.bound_and_gradients(params, x, x_tilde, eps, "iwae", e).grads for e in ENCODER_GRADIENTS}
    for name in grads["standard"]:
        same = [np.array_equal(grads["standard"][name], grads[e][name]) for e in ("stl", "dreg")]
        assert all(same) if name.startswith("decoder") else not any(same), name


def exact_posterior_model():
    """A linear Gaussian decoder with orthogonal rows of A and one noise level, whose posterior is
    a diagonal Gaussian, and an identity-activation encoder set to it exactly."""
    model, params = linear_gaussian_model(latent=2, pixels=4, seed=1)
    params["decoder.log_var.b"][:] = 1.0                                  # psi the same for every pixel
    q, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((4, 4)))
    params["decoder.hidden0.W"][:] = np.eye(2)
    params["decoder.hidden0.b"][:] = 0
    params["decoder.mean.W"][:] = np.array([[1.5], [0.7]]) * q[:, :2].T   # A: orthogonal rows
    A, c = params["decoder.mean.W"], params["decoder.mean.b"]
    psi = np.exp(model.config.min_log_var + np.logaddexp(0, 1.0))
    precision = 1 + (A ** 2).sum(axis=1) / psi                            # diagonal: A's rows are orthogonal
    gain = (A / psi / precision[:, None]).T                               # mu = (x - c) gain
    params["encoder.hidden0.W"][:] = gain
    params["encoder.hidden0.b"][:] = -c @ gain
    params["encoder.mu.W"][:] = np.eye(2)
    params["encoder.mu.b"][:] = 0
    params["encoder.log_sigma2.W"][:] = 0
    params["encoder.log_sigma2.b"][:] = -np.log(precision)
    return model, params


@pytest.mark.parametrize("bound", ["elbo", "iwae"])
def test_stl_is_zero_draw_by_draw_at_the_exact_posterior(bound):
    model, params = exact_posterior_model()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    x_tilde = x[:, None, :].copy()
    for _ in range(5):
        eps = standard_normal(rng, (3, 1, 4, 2), np.float64)
        stl = encoder_arrays(model.bound_and_gradients(params, x, x_tilde, eps, bound, "stl").grads)
        standard = encoder_arrays(model.bound_and_gradients(params, x, x_tilde, eps, bound, "standard").grads)
        assert max(np.abs(g).max() for g in stl.values()) < 1e-10
        assert max(np.abs(g).max() for g in standard.values()) > 1e-3   # the score term is not zero draw by draw


def test_dreg_is_refused_for_the_elbo():
    model, params, x, x_tilde, eps = make_problem(1)
    with pytest.raises(ValueError, match="dreg estimator is for the importance-weighted bound"):
        model.bound_and_gradients(params, x, x_tilde, eps, "elbo", "dreg")
