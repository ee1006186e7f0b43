import pickle

import pytest

from npdvae.training.config import ConfigError, TrainConfig


@pytest.mark.parametrize("settings, field", [
    (dict(noise=1.5), "noise"), (dict(k=0), "k"), (dict(lr=float("nan")), "lr"), (dict(dataset="cifar"), "dataset"),
    (dict(activation="relu"), "activation"), (dict(hidden=10 ** 6), "hidden"), (dict(batch_size="ten"), "batch_size"),
    (dict(clip_grad_norm=-1.0), "clip_grad_norm"), (dict(encoder_layers=3), "encoder_layers"),
])
def test_a_bad_setting_is_a_config_error_naming_its_field(settings, field):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(**settings)
    assert caught.value.field == field and str(caught.value).startswith(field)
    again = pickle.loads(pickle.dumps(caught.value))      # it crosses process boundaries (grids) intact
    assert (type(again), again.field, str(again)) == (ConfigError, field, str(caught.value))
