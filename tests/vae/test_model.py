import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npdvae.vae.corruption import salt_and_pepper
from npdvae.training.operations import operations
from npdvae.vae.model import DVAEModel, ModelConfig, default_activation
from npdvae.vae.sampling import standard_normal
from tests.gradcheck import assert_parameter_gradients


def make_problem(seed, likelihood="bernoulli", encoder_layers=1, M=2, K=3, B=3, D=6, Z=3, H=4,
                 activation="softplus", dtype=np.float64, noise=0.2, use_kernels=True, encoder="mlp"):
    rng = np.random.default_rng(seed)
    config = ModelConfig(input_dim=D, latent=Z, hidden=H, encoder=encoder, encoder_layers=encoder_layers,
                         encoder_steps=3, activation=activation, likelihood=likelihood)
    model = DVAEModel(config, operations(use_kernels))
    params = model.init_params(rng, dtype, data_mean=rng.uniform(0.1, 0.9, D))
    for value in params.values():  # move off the initialization's special values (zero biases)
        value += (0.3 * rng.standard_normal(value.shape)).astype(dtype)
    if likelihood == "bernoulli":
        x = (rng.random((B, D)) < 0.5).astype(dtype)
        x_tilde = salt_and_pepper(x, noise, M, rng)
    else:
        x = rng.random((B, D)).astype(dtype)
        x_tilde = x[:, None, :] + (noise * rng.standard_normal((B, M, D))).astype(dtype)
    eps = standard_normal(rng, (B, M, K, Z), dtype)
    return model, params, x, x_tilde, eps


@settings(max_examples=20)
@given(seed=st.integers(0, 2**31), likelihood=st.sampled_from(["bernoulli", "gaussian"]),
       bound=st.sampled_from(["elbo", "iwae"]), encoder_layers=st.sampled_from([1, 2]),
       M=st.sampled_from([1, 2]), K=st.sampled_from([1, 2, 5]), activation=st.sampled_from(["softplus", "tanh"]),
       use_kernels=st.booleans(), encoder=st.sampled_from(["mlp", "gru"]))
def test_model_gradient_matches_finite_differences_for_every_parameter(
        seed, likelihood, bound, encoder_layers, M, K, activation, use_kernels, encoder):
    model, params, x, x_tilde, eps = make_problem(seed, likelihood, encoder_layers, M, K,
                                                  activation=activation, use_kernels=use_kernels, encoder=encoder)
    result = model.bound_and_gradients(params, x, x_tilde, eps, bound)

    def objective():
        return float(model.bound(params, x, x_tilde, eps, bound).mean())

    assert np.isclose(objective(), result.mean)
    assert_parameter_gradients(objective, params, result.grads)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("bound", ["elbo", "iwae"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("encoder", ["mlp", "gru"])
def test_kernel_path_equals_reference_path(likelihood, bound, dtype, encoder):
    fast = make_problem(5, likelihood, 2, M=2, K=5, dtype=dtype, use_kernels=True, encoder=encoder)
    slow_model = DVAEModel(fast[0].config, operations(kernels=False))
    model, params, x, x_tilde, eps = fast
    a = model.bound_and_gradients(params, x, x_tilde, eps, bound)
    b = slow_model.bound_and_gradients(params, x, x_tilde, eps, bound)
    rtol = 2e-5 if dtype == np.float32 else 1e-11
    assert a.per_example.dtype == b.per_example.dtype == dtype
    np.testing.assert_allclose(a.per_example, b.per_example, rtol=rtol)
    for name in params:
        assert a.grads[name].dtype == dtype and b.grads[name].dtype == dtype, name
        scale = np.abs(b.grads[name]).max()
        np.testing.assert_allclose(a.grads[name], b.grads[name], rtol=rtol, atol=rtol * scale, err_msg=name)


@settings(max_examples=10)
@given(seed=st.integers(0, 2**31), M=st.sampled_from([1, 2]))
def test_diwae_with_k1_equals_dvae_on_the_model(seed, M):
    model, params, x, x_tilde, eps = make_problem(seed, M=M, K=1)
    elbo = model.bound_and_gradients(params, x, x_tilde, eps, "elbo")
    iwae = model.bound_and_gradients(params, x, x_tilde, eps, "iwae")
    np.testing.assert_allclose(iwae.per_example, elbo.per_example, rtol=1e-12)
    for name in params:
        np.testing.assert_allclose(iwae.grads[name], elbo.grads[name], rtol=1e-10, atol=1e-12)


def test_diwae_bound_is_non_decreasing_in_k_in_expectation():
    """E[L_K] <= E[L_2K] (Burda et al., Theorem 1). Estimated with 4000 draws of
    eps per example on a fixed model; each step must rise by more than 3 standard errors."""
    model, params, x, x_tilde, _ = make_problem(11, M=1, K=1, B=2, D=8, Z=3, H=6)
    rng = np.random.default_rng(0)
    means = []
    for K in (1, 2, 5, 20):
        draws = 4000
        values = []
        for _ in range(draws // 500):
            x_rep = np.repeat(x, 500, axis=0)
            xt_rep = np.repeat(x_tilde, 500, axis=0)
            eps = rng.standard_normal((x_rep.shape[0], 1, K, 3))
            values.append(model.bound(params, x_rep, xt_rep, eps, "iwae").reshape(2, 500))
        values = np.concatenate(values, axis=1).mean(axis=0)  # average the two examples
        means.append((values.mean(), values.std() / np.sqrt(values.size)))
    for (low, low_se), (high, high_se) in zip(means, means[1:]):
        assert high - low > 3 * np.hypot(low_se, high_se), means


@pytest.mark.parametrize("bound", ["elbo", "iwae"])
def test_dvae_with_noise_zero_equals_vae_on_identical_eps(bound):
    model, params, x, _, eps = make_problem(3, M=2, K=2)
    x_tilde = salt_and_pepper(x, 0.0, 2, np.random.default_rng(9))
    clean = np.repeat(x[:, None, :], 2, axis=1)
    a = model.bound_and_gradients(params, x, x_tilde, eps, bound)
    b = model.bound_and_gradients(params, x, clean, eps, bound)
    np.testing.assert_array_equal(a.per_example, b.per_example)
    for name in params:
        np.testing.assert_array_equal(a.grads[name], b.grads[name])


def test_likelihood_scores_the_clean_x_not_the_corrupted_copy():
    """Corrupting x~ changes the bound only through q: fixing the encoder's
    output by zeroing its weights makes the bound independent of x~."""
    model, params, x, x_tilde, eps = make_problem(4, noise=0.5)
    for name in params:
        if name.startswith("encoder") and name.endswith(".W"):
            params[name][...] = 0.0
    a = model.bound(params, x, x_tilde, eps, "elbo")
    b = model.bound(params, x, np.repeat(x[:, None], x_tilde.shape[1], axis=1), eps, "elbo")
    np.testing.assert_allclose(a, b, rtol=1e-12)
    c = model.bound(params, 1 - x, x_tilde, eps, "elbo")
    assert not np.allclose(a, c)


@pytest.mark.parametrize("bound", ["elbo", "iwae"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bound_is_finite_for_extreme_logits_and_saturated_pixels(bound, dtype):
    model, params, x, x_tilde, eps = make_problem(6, M=2, K=5, dtype=dtype)
    x[:] = 1.0
    x_tilde[:] = 1.0
    params["decoder.logits.b"][: x.shape[1] // 2] = 1e4   # confident and right
    params["decoder.logits.b"][x.shape[1] // 2:] = -1e4   # confident and wrong
    result = model.bound_and_gradients(params, x, x_tilde, eps, bound)
    assert np.all(np.isfinite(result.per_example))
    assert all(np.all(np.isfinite(g)) for g in result.grads.values())
    assert np.all(result.per_example < -1e4)


def test_initialization_is_seeded_and_decoder_starts_at_the_data_mean():
    config = ModelConfig(input_dim=5, latent=2, hidden=3)
    model = DVAEModel(config, operations(kernels=True))
    data_mean = np.array([0.1, 0.2, 0.5, 0.8, 0.9])
    a = model.init_params(np.random.default_rng(0), np.float32, data_mean)
    b = model.init_params(np.random.default_rng(0), np.float32, data_mean)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert all(v.dtype == np.float32 for v in a.values())
    np.testing.assert_allclose(1 / (1 + np.exp(-a["decoder.logits.b"])), data_mean, rtol=1e-5)


def test_parameter_names_follow_the_architecture():
    config = ModelConfig(input_dim=5, latent=2, hidden=3, encoder_layers=2, likelihood="gaussian")
    names = set(DVAEModel(config, operations(kernels=True)).init_params(np.random.default_rng(0)))
    expected = {f"{p}.{s}" for p in ("encoder.hidden0", "encoder.hidden1", "encoder.mu", "encoder.log_sigma2",
                                     "decoder.hidden0", "decoder.hidden1", "decoder.mean", "decoder.log_var")
                for s in ("W", "b")}
    assert names == expected


def test_default_activation_follows_the_paper():
    assert default_activation("elbo") == "softplus" and default_activation("iwae") == "tanh"


BAD_INPUTS = [
    ("x", lambda x, xt, e: (x.astype(np.float32), xt, e), "x must have the parameters' dtype"),
    ("x", lambda x, xt, e: (x[:, :-1], xt, e), "x must have 6 pixels"),
    ("x", lambda x, xt, e: (x[None], xt, e), "x must have 2 dimensions"),
    ("x_tilde", lambda x, xt, e: (x, xt[:-1], e), "x_tilde must have shape"),
    ("x_tilde", lambda x, xt, e: (x, xt[:, :0], e), "num_corruptions_m must be >= 1"),
    ("eps", lambda x, xt, e: (x, xt, e[:, :, :0]), "num_samples_k must be >= 1"),
    ("eps", lambda x, xt, e: (x, xt, e[:, :1]), "eps must have shape"),
    ("eps", lambda x, xt, e: (x, xt, e[..., :2]), "eps must have shape"),
    ("eps", lambda x, xt, e: (x, xt, list(e)), "eps must be a numpy array"),
]


@pytest.mark.parametrize("culprit, mutate, message", BAD_INPUTS)
def test_bad_inputs_raise_value_error_naming_the_argument(culprit, mutate, message):
    model, params, x, x_tilde, eps = make_problem(0)
    with pytest.raises(ValueError, match=message):
        model.bound_and_gradients(params, *mutate(x, x_tilde, eps), "elbo")


@pytest.mark.parametrize("field, value", [("latent", 0), ("encoder_layers", 1.5), ("activation", "relu"),
                                          ("likelihood", "poisson"), ("min_log_var", 1.0)])
def test_bad_config_raises_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field if field != "activation" else "activation"):
        ModelConfig(input_dim=4, **{field: value})
