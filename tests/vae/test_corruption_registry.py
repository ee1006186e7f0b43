"""The registry of corruptions: the four built in go through it like a user's, a run records
what it needs to be named without the factory, and a missing registration is one clear error."""

import numpy as np
import pytest

from npdvae.run_folder.identity import settings_digest
from npdvae.training.config import ConfigError, TrainConfig, UnregisteredCorruptionError
from npdvae.vae import corruption as C
from npdvae.vae import corruption_registry as R

SMALL = dict(epochs=1, train_examples=200, eval_examples=20, latent=4, hidden=8)


@pytest.fixture
def registered():
    """Names registered by a test, unregistered afterwards."""
    names = []

    def register(name, factory, **options):
        names.append(name)
        return R.register_corruption(name, factory, **options)

    yield register
    for name in names:
        R._REGISTRY.pop(name, None)


class Erase:
    """every pixel of a copy set to 0 with probability noise"""

    def __init__(self, noise, value=0.0):
        if not 0 <= noise <= 1:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        self.noise, self.value, self.params = noise, value, {"value": value}
        self.is_identity = noise == 0

    def sample(self, x, m, rng):
        hit = rng.random((x.shape[0], m, x.shape[1])) < self.noise
        return np.where(hit, x.dtype.type(self.value), x[:, None, :])


def test_the_built_ins_are_registered_and_draw_what_their_samplers_draw():
    assert R.BUILT_IN_CORRUPTIONS == ("salt-pepper-released", "salt-pepper", "gaussian", "mean-image")
    x = (np.random.default_rng(1).random((30, 16)) < 0.3).astype(np.float32)
    for name, direct in [("salt-pepper-released", lambda rng: C.salt_and_pepper(x, 0.2, 3, rng, released=True)),
                         ("salt-pepper", lambda rng: C.salt_and_pepper(x, 0.2, 3, rng)),
                         ("gaussian", lambda rng: C.additive_gaussian(x, 0.2, 3, rng))]:
        made = R.make_corruption(name, 0.2)
        assert np.array_equal(made.sample(x, 3, np.random.default_rng(5)), direct(np.random.default_rng(5))), name
        assert R.registered_corruption(name).built_in and made.description
    mean = np.linspace(0, 1, 16)
    made = R.make_corruption("mean-image", 0.2, mean_image=mean)
    assert np.array_equal(made.sample(x, 2, np.random.default_rng(5)),
                          C.per_pixel_salt_and_pepper(x, C.mean_image_rates(mean, 0.2), 2, np.random.default_rng(5)))


def test_registering_refuses_a_taken_name_and_never_replaces_a_built_in(registered):
    kind = registered("erase", Erase, level="rate")
    assert kind.description == "every pixel of a copy set to 0 with probability noise" and not kind.built_in
    with pytest.raises(ValueError, match="already registered"):
        R.register_corruption("erase", Erase)
    registered("erase", Erase, replace=True, description="again")
    with pytest.raises(ValueError, match="already registered"):
        R.register_corruption("gaussian", Erase, replace=True)
    with pytest.raises(ValueError, match="level must be one of"):
        R.register_corruption("erase2", Erase, level="percent")


def test_a_factory_is_given_only_the_extras_it_names(registered):
    seen = {}

    def factory(noise, size=1, ops=None):
        seen.update(size=size, ops=ops)
        return Erase(noise)

    registered("sized", factory)
    R.make_corruption("sized", 0.1, {"size": 3}, mean_image=np.zeros(4), ops="the kernels")
    assert seen == {"size": 3, "ops": "the kernels"}   # no mean_image: it does not name it
    with pytest.raises(ValueError, match="corruption 'sized'"):
        R.make_corruption("sized", 0.1, {"width": 3})


def test_whether_a_run_is_denoising_is_the_corruptions_business(registered):
    registered("erase", Erase, level="rate")
    assert TrainConfig(noise=0.0, **SMALL).model_name == "VAE (K=1), 1 hidden layer"
    assert TrainConfig(noise_type="erase", noise=0.0, **SMALL).model_name == "VAE (K=1), 1 hidden layer"

    class AlwaysMask(Erase):
        """a corruption with no level at all"""

        def __init__(self, noise, value=0.0):
            super().__init__(1.0, value)

    registered("always", AlwaysMask)
    config = TrainConfig(noise_type="always", noise=0.0, noise_params={"value": 0.5}, **SMALL)
    assert config.corrupted and config.model_name == "DVAE (K=1), 1 hidden layer, always (value=0.5)"
    assert config.noise_source == {"module": __name__, "description": "a corruption with no level at all",
                                   "level": "level", "is_identity": False}


def test_a_recorded_run_of_an_unregistered_corruption_is_named_but_not_made(registered):
    registered("erase", Erase, level="rate")
    recorded = TrainConfig(noise_type="erase", noise=0.1, noise_params={"value": 1.0}, **SMALL).to_dict()
    R._REGISTRY.pop("erase")
    config = TrainConfig.from_dict(recorded)   # as a run folder or a model file is read
    assert config.model_name == "DVAE (K=1), 1 hidden layer, erase 10% (value=1.0)"
    assert config.corruption_description == Erase.__doc__
    with pytest.raises(UnregisteredCorruptionError, match=f"import {__name__} \\(the module that registered it\\)"):
        config.corruption()
    with pytest.raises(ConfigError, match="no corruption called 'erase' is registered"):
        TrainConfig(noise_type="erase", noise=0.1, **SMALL)   # a new configuration must name a registered one


def test_a_corruptions_bad_level_or_parameters_name_the_setting(registered):
    registered("erase", Erase)
    with pytest.raises(ConfigError, match="noise must be in") as err:
        TrainConfig(noise_type="erase", noise=2.0, **SMALL)
    assert err.value.field == "noise"
    with pytest.raises(ConfigError, match="noise_params must be a JSON object") as err:
        TrainConfig(noise_type="erase", noise=0.1, noise_params={"value": float("nan")}, **SMALL)
    with pytest.raises(ConfigError, match="takes no parameters"):
        TrainConfig(noise=0.1, noise_params={"value": 1}, **SMALL)


def test_the_new_settings_at_their_defaults_leave_every_earlier_identity_as_it_was():
    config = TrainConfig(noise=0.05, **SMALL).to_dict()
    assert config["noise_params"] is None and config["noise_source"] is None
    earlier = {k: v for k, v in config.items() if k not in ("noise_params", "noise_source")}
    assert settings_digest(config) == settings_digest(earlier)
    assert settings_digest(dict(config, noise_params={"a": 1})) != settings_digest(config)
