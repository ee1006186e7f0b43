import numpy as np
import pytest

from npdvae.training.config import TrainConfig
from npdvae.training.operations import operations
from npdvae.training.optim import Adam, clip_by_global_norm
from npdvae.training.step import NonFiniteBoundError, train_step
from npdvae.vae.corruption_registry import make_corruption
from npdvae.vae.model import DVAEModel


def _setup(clip=None):
    config = TrainConfig(dataset="mnist", bound="iwae", k=3, m=2, noise=0.1, latent=3, hidden=8, clip_grad_norm=clip)
    model = DVAEModel(config.model_config(12, "bernoulli"), operations(kernels=True))
    initial = model.init_params(np.random.default_rng(0), np.float32)
    x = (np.random.default_rng(1).random((5, 12)) < 0.4).astype(np.float32)
    return config, model, initial, x, make_corruption("salt-pepper-released", 0.1)


@pytest.mark.parametrize("clip", [None, 0.5])
def test_the_step_is_corrupt_sample_bound_clip_adam_in_that_order(clip):
    config, model, initial, x, corruption = _setup(clip)
    adam = Adam(initial, lr=1e-2)
    total = train_step(model, adam, corruption, x, np.random.default_rng(7), bound="iwae", k=config.k, m=config.m,
                       lr=1e-2, clip_grad_norm=clip)
    # the same algorithm spelled out, from the same stream
    rng = np.random.default_rng(7)
    x_tilde = corruption.sample(x, config.m, rng)
    eps = model.ops.standard_normal(rng, (5, config.m, config.k, config.latent), np.float32)
    by_hand = Adam(initial, lr=1e-2)
    result = model.bound_and_gradients(by_hand.params, x, x_tilde, eps, "iwae")
    if clip:
        assert clip_by_global_norm(result.grads, clip) > clip   # the clipping does act here
    by_hand.step(result.grads)
    assert total == float(result.per_example.sum())
    for name in initial:
        np.testing.assert_array_equal(adam.params[name], by_hand.params[name])
        assert not np.array_equal(adam.params[name], initial[name]) or name.endswith(".b")


def test_a_non_finite_bound_changes_nothing():
    config, model, initial, x, corruption = _setup()
    initial["decoder.logits.b"][0] = np.inf
    adam = Adam(initial)
    before = {n: p.copy() for n, p in adam.params.items()}
    with pytest.raises(NonFiniteBoundError):
        train_step(model, adam, corruption, x, np.random.default_rng(0), bound="iwae", k=config.k, m=config.m,
                   lr=1e-3)
    assert adam.step_count == 0
    assert all(np.array_equal(adam.params[n], before[n]) for n in before)
