"""The README's Python example runs as written, and the API does what it says."""

import os
import re
from pathlib import Path

import numpy as np
import pytest

import npdvae
from npdvae.run_folder.checkpoint import CheckpointError
from npdvae.training.config import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_python_example() -> str:
    section = README.read_text().split("## Python\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_example_runs_as_written(tmp_path, mnist_root, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NPDVAE_DATA_DIR", str(mnist_root))
    first = {}
    exec(compile(readme_python_example(), "README.md", "exec"), first)
    printed = capsys.readouterr().out.splitlines()
    assert len(eval(printed[0])) == 2 and printed[-1] == npdvae.__version__
    assert first["run"].opened == "created" and not first["run"].already_done
    again = {}
    with caplog_at_info() as records:
        exec(compile(readme_python_example(), "README.md", "exec"), again)     # again: resumes, trains nothing
    assert capsys.readouterr().out.splitlines()[0] == printed[0]
    run = again["run"]   # issue 36: what the library knows reaches the caller, and its log
    assert (run.opened, run.resumed_at, run.already_done) == ("resumed", 2, True)
    assert any("already finished at epoch 2" in message for message in records), records


class caplog_at_info:
    """The messages of the ``npdvae`` logger while the block runs, at INFO."""

    def __enter__(self):
        import logging
        self.messages, self.logger = [], logging.getLogger("npdvae")
        self.handler = logging.Handler(level=logging.INFO)
        self.handler.emit = lambda record: self.messages.append(record.getMessage())
        self.level = self.logger.level
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)
        return self.messages

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)


def test_train_and_load_give_one_model(tmp_path, mnist_root):
    config = npdvae.TrainConfig(dataset="mnist", noise=0.05, k=2, epochs=1, train_examples=300, eval_examples=50,
                                latent=4, hidden=16)
    epochs = []
    run = npdvae.train(config, out=tmp_path / "new" / "run", data_dir=mnist_root, on_epoch=epochs.append)
    assert len(epochs) == 1 and (tmp_path / "new" / "run" / "best.h5").is_file()
    model = npdvae.load(tmp_path / "new" / "run")
    assert all(np.array_equal(model.params[name], run.params[name]) for name in run.params)
    x = (np.random.default_rng(0).random((7, 784)) < 0.2).astype(np.float32)
    mu, log_sigma2 = model.encode(x)
    assert mu.shape == log_sigma2.shape == (7, 4)
    assert model.decode(mu).shape == (7, 784) and model.sample(3).shape == (3, 784)
    elbo, iwae, ll = model.bound(x, k=1), model.bound(x, k=50), model.log_likelihood(x, k=500)
    assert elbo.shape == (7,) and np.mean(elbo) < np.mean(iwae) < np.mean(ll) + 0.5   # tighter with K
    np.testing.assert_array_equal(model.bound(x, k=5, seed=3), model.bound(x, k=5, seed=3))
    with pytest.raises(ValueError, match=r"images must be \(B, 784\)"):
        model.encode(x[:, :10])
    (listed,) = npdvae.runs(tmp_path / "new")                  # what npdvae runs prints, as records
    assert (listed.path, listed.state, listed.epochs_done) == (str(tmp_path / "new" / "run"), "finished", 1)
    assert listed.best_valid == run.history[0]["valid_bound"]
    other = npdvae.TrainConfig(**dict(config.to_dict(), k=3))
    with pytest.raises(CheckpointError, match="k: checkpoint has 2, requested 3"):
        npdvae.train(other, out=tmp_path / "new" / "run", data_dir=mnist_root)


def test_the_package_says_what_it_offers():
    assert npdvae.__doc__ and set(npdvae.__all__) <= set(dir(npdvae))
    assert re.fullmatch(r"\d+\.\d+\.\d+.*|unknown", npdvae.__version__)
    assert os.path.isfile(Path(npdvae.__file__).parent / "api.py")


def test_the_distribution_claims_no_top_level_module_but_npdvae():
    import configparser
    setup = configparser.ConfigParser()
    setup.read(README.parent / "setup.cfg")
    packages = setup["options"]["packages"].split()
    assert all(p == "npdvae" or p.startswith("npdvae.") for p in packages)
    on_disk = {".".join(p.relative_to(README.parent).parent.parts) for p in (README.parent / "npdvae").rglob("__init__.py")}
    assert on_disk | {"npdvae.cli"} == set(packages)                       # every package installed
    assert "npdvae = npdvae.cli.entry:run" in setup["options.entry_points"]["console_scripts"]
    from npdvae.cli.main import main
    assert main.name == "main" and "export" in main.commands


def test_the_api_refuses_bad_arguments_by_name(tmp_path):
    """Issue 35: a bad argument is a ValueError or TypeError naming it, never a wrong number."""
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        npdvae.train({"dataset": "mnist"}, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="kernels must be true or false"):
        npdvae.TrainConfig(kernels="yes")
    with pytest.raises(ValueError, match="which must be 'best' or 'last'"):
        npdvae.load(tmp_path, which="middle")


def test_a_loaded_model_refuses_k_below_one_and_pixels_outside_the_unit_interval():
    from npdvae.api import TrainedModel
    from npdvae.training.operations import operations
    from npdvae.vae.model import DVAEModel, ModelConfig
    config = npdvae.TrainConfig(latent=2, hidden=4)
    model = DVAEModel(ModelConfig(input_dim=784, latent=2, hidden=4), operations(kernels=True))
    trained = TrainedModel(config, model, model.init_params(np.random.default_rng(0)))
    x = np.zeros((2, 784))
    assert np.isfinite(trained.bound(x, k=2)).all()
    for k in (0, -1, 1.5):
        with pytest.raises(ValueError, match="k must be an integer >= 1"):
            trained.bound(x, k=k)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        trained.log_likelihood(x, k=0)
    for bad in (2.0, -1.0, np.nan):
        with pytest.raises(ValueError, match=r"pixels in \[0, 1\]"):
            trained.bound(np.full((2, 784), bad), k=1)


@pytest.mark.parametrize("bound, k, m", [("elbo", 1, 1), ("iwae", 5, 2)])
def test_the_denoising_bound_of_a_loaded_model_is_the_bound_the_training_step_climbs(tmp_path, bound, k, m):
    """Issue 36: TrainedModel.denoising_bound draws as train_step does (corruption, then eps),
    so on one minibatch and one stream it gives the step's per-image bound to the bit."""
    from npdvae.api import TrainedModel
    from npdvae.training.operations import operations
    from npdvae.training.optim import Adam
    from npdvae.training.step import train_step
    from npdvae.vae.corruption_registry import make_corruption
    from npdvae.vae.model import DVAEModel, ModelConfig
    config = npdvae.TrainConfig(bound=bound, k=k, m=m, noise=0.1, latent=3, hidden=8)
    ops = operations(kernels=True)
    model = DVAEModel(ModelConfig(input_dim=784, latent=3, hidden=8, activation=config.activation), ops)
    params = model.init_params(np.random.default_rng(0))
    x = (np.random.default_rng(1).random((6, 784)) < 0.3).astype(np.float32)
    trained = TrainedModel(config, model, params)
    per_image = trained.denoising_bound(x, seed=7)
    assert per_image.shape == (6,)
    adam = Adam({name: value.copy() for name, value in params.items()}, ops=ops)
    total = train_step(model, adam, make_corruption("salt-pepper-released", 0.1, ops=ops), x, np.random.default_rng(7),
                       bound=bound, k=k, m=m, lr=1e-3)
    assert float(per_image.astype(np.float32).sum()) == total   # the same float32 numbers, summed alike
    # another corruption, given: none at all, one copy and one sample, is the plain ELBO on clean images
    clean = trained.denoising_bound(x, corruption=make_corruption("salt-pepper-released", 0.0), k=1, m=1, seed=3)
    np.testing.assert_allclose(clean, trained.bound(x, k=1, seed=3), rtol=1e-6)
