"""Default run folders: every setting that tells two runs apart is in the name."""

from hypothesis import given, strategies as st

from npdvae.training.config import TrainConfig
from npdvae.run_folder.runs import default_run_dir

# one value other than the default for each setting a run is defined by
OTHER_VALUES = {"dataset": "frey-face", "bound": "iwae", "noise": 0.1, "noise_type": "salt-pepper", "k": 5, "m": 2,
                "encoder": "gru", "encoder_layers": 2, "latent": 20, "hidden": 100, "activation": "tanh",
                "lr": 3e-4, "schedule": "staged", "clip_grad_norm": 5.0, "binarize": "static", "batch_size": 50,
                "train_examples": 1000, "eval_examples": 50, "seed": 3}


@given(st.lists(st.sampled_from(sorted(OTHER_VALUES)), min_size=1, max_size=3, unique=True))
def test_runs_of_different_settings_get_different_default_folders(changed):
    base = TrainConfig(noise=0.05)
    other = TrainConfig(**{**base.to_dict(), **{name: OTHER_VALUES[name] for name in changed},
                           "activation": OTHER_VALUES["activation"] if "activation" in changed else None,
                           "noise_type": OTHER_VALUES["noise_type"] if "noise_type" in changed else None})
    if other.to_dict() != base.to_dict():
        assert default_run_dir(other) != default_run_dir(base)


def test_default_folders_read_as_the_settings_that_differ():
    assert default_run_dir(TrainConfig(noise=0.05, k=5)).name == "mnist-elbo-k5-noise0.05-seed0"
    assert default_run_dir(TrainConfig(noise=0.05, k=5, encoder_layers=2)).name == "mnist-elbo-k5-noise0.05-enc2-seed0"
    assert default_run_dir(TrainConfig(noise=0, noise_type="salt-pepper")).name == "mnist-elbo-k1-noise0-seed0"
    assert default_run_dir(TrainConfig(lr=1.00001e-3, epochs=7, patience=3)).name == \
        "mnist-elbo-k1-noise0-lr0.00100001-seed0"    # epochs and patience may change on resume
