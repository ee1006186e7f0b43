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


def test_a_selection_rule_that_keeps_no_epoch_is_refused_by_name():
    """The last epoch is the rule's last chance: a run that could keep none would end with no
    best.h5 and nothing to be scored by."""
    from npdvae.training.config import ConfigError, TrainConfig
    with pytest.raises(ConfigError, match="select_after 0.6 keeps no epoch of 2"):
        TrainConfig(epochs=2, select_after=0.6)
    assert TrainConfig(epochs=3, select_after=0.6).select_after == 0.6      # the last, 0-based 2 > 1.8
    assert TrainConfig(epochs=5000, select_every=50, select_after=0.4).epochs == 5000
