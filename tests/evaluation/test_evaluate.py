import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import logsumexp

from npdvae.evaluation import evaluate as evaluate_module
from npdvae.evaluation.evaluate import Estimate, evaluate_model, importance_sampled_bound
from npdvae.training.operations import operations
from npdvae.training.config import TrainConfig
from npdvae.run_folder.runs import open_run, prepare_dataset


class StreamModel:
    """A stand-in whose log-weight is the drawn noise itself: log w_s = eps_s."""

    config = SimpleNamespace(latent=1)
    ops = operations(kernels=True)

    def forward(self, params, x, x_tilde, eps, with_grad=True):
        return eps[..., 0].astype(np.float64) * 40, None


@pytest.mark.parametrize("chunk_k", [1, 7, 64, 1000])
def test_chunked_log_mean_exp_equals_the_one_shot_value(chunk_k):
    x = np.zeros((1, 1))
    got = importance_sampled_bound(StreamModel(), None, x, 300, np.random.default_rng(0), chunk_k)
    stream = np.random.default_rng(0).standard_normal(300) * 40  # x is float64, so eps is too
    np.testing.assert_allclose(got, [logsumexp(stream) - math.log(300)], rtol=1e-12)


@pytest.mark.parametrize("rows_per_forward", [1, 30, 10_000])
def test_forward_blocking_changes_no_draw_and_no_result(monkeypatch, rows_per_forward):
    """Each image's estimate uses the same eps whether the model sees one image
    a pass or all of them: eps is drawn per chunk for the whole batch."""
    x = np.zeros((7, 1))
    monkeypatch.setattr(evaluate_module, "ROWS_PER_FORWARD", rows_per_forward)
    got = importance_sampled_bound(StreamModel(), None, x, 90, np.random.default_rng(0), chunk_k=40)
    rng = np.random.default_rng(0)  # chunks of 40, 40, 10 samples, each drawn for all 7 images
    chunks = [rng.standard_normal((7, 1, k, 1))[:, 0, :, 0] for k in (40, 40, 10)]
    log_w = np.concatenate(chunks, axis=1) * 40
    np.testing.assert_allclose(got, logsumexp(log_w, axis=1) - math.log(90), rtol=1e-12)


def test_estimate_reports_mean_and_standard_error():
    e = Estimate.of(np.array([1.0, 2.0, 3.0, 4.0]))
    assert e.mean == 2.5 and math.isclose(e.stderr, np.std([1, 2, 3, 4], ddof=1) / 2) and e.n == 4


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_root):
    data_dir = mnist_root
    config = TrainConfig(dataset="mnist", bound="iwae", noise=0.05, k=5, epochs=2, train_examples=3000,
                         eval_examples=100, seed=1)
    dataset = prepare_dataset(config, data_dir)
    trainer = open_run(config, tmp_path_factory.mktemp("run") / "run", dataset)
    trainer.run()
    return trainer, dataset


def test_is_estimate_beats_iwae_k5_beats_elbo_on_a_trained_model(trained):
    """log p(x) >= E[L_5000] >= E[L_5] >= E[L_1] (Burda et al.), averaged over the test examples."""
    trainer, dataset = trained
    results = evaluate_model(trainer.model, trainer.params, lambda idx: dataset.batch("test", idx), 100,
                             k=5, is_samples=5000, corruption=trainer.corruption, bound="iwae",
                             num_samples_k=5, batch_size=50)
    elbo, iwae, ll = results["elbo"].mean, results["iwae_k"].mean, results["log_likelihood"].mean
    assert ll > iwae > elbo, (ll, iwae, elbo)
    assert all(np.isfinite(results[k].stderr) for k in ("elbo", "iwae_k", "log_likelihood", "denoising_bound"))
