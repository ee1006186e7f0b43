"""A model card names every setting the model was trained with, and says nothing it was not."""

import numpy as np
import pytest

from npdvae.run_folder.model_card import model_card
from npdvae.run_folder.model_file import ModelFile
from npdvae.training.config import TrainConfig


def _card(**settings) -> str:
    config = TrainConfig(dataset="mnist", epochs=300, seed=0, **settings)
    model = ModelFile(params={"decoder.logits.b": np.zeros(784)}, config=config.to_dict(), epoch=3,
                      curves=np.array([[3.0, -100.0, -101.0]]), evaluation=None, provenance={}, source="runs/x")
    return model_card(model, "m.h5")


def _training(card: str) -> str:
    return next(line for line in card.splitlines() if line.startswith("| training |"))


def test_the_usual_protocol_reads_as_before():
    line = _training(_card(schedule="staged", clip_grad_norm=5.0))
    assert line == ("| training | 300 epochs of Adam at lr 0.001, staged (stage i: 3^i epochs at lr x 10^(-i/7)), "
                    "gradients clipped at a global norm of 5; minibatches of 100; mnist, dynamic binarization; "
                    "seed 0; the best epoch by validation bound kept |")


@pytest.mark.parametrize("settings, named", [
    ({"schedule": "released"}, "the released script's stages"),
    ({"schedule": "constant"}, "lr 0.001, constant,"),
    ({"optimizer": "adam-released"}, "Adam as the authors' released code writes it (no momentum)"),
    ({"bound": "iwae", "k": 5, "encoder_gradient": "dreg"}, "the encoder's gradient by DReG"),
    ({"encoder_gradient": "stl"}, "the encoder's gradient by STL"),
    ({"select_every": 50, "select_after": 0.4},
     "the best validation bound at every 50 epochs and at the last (none before 40% of the epochs) kept"),
])
def test_a_setting_other_than_the_usual_is_named_on_the_card(settings, named):
    line = _training(_card(**settings))
    assert named in line
    if settings.get("schedule") == "released":
        assert "constant" not in line and "staged (" not in line
    if "encoder_gradient" not in settings:
        assert "DReG" not in line and "STL" not in line
