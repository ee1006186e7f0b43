"""The gaps of a linear Gaussian decoder come out as their closed forms."""

import numpy as np
import pytest

from npdvae.data import Dataset
from npdvae.evaluation.ais import AISSettings
from npdvae.evaluation.gaps import FIGURES, GapSettings, inference_gaps, paired_difference, report_to_dict, summarize
from npdvae.evaluation.local_optimum import LocalOptimumSettings
from tests.evaluation import linear_gaussian as lg

FAST = GapSettings(examples=6, is_samples=20000, bound_samples=4000, warmup_examples=4, batch_size=3,
                   ais=AISSettings(steps=500, chains=64, leapfrog=5),
                   local=LocalOptimumSettings(steps=3000, lr=5e-2, samples=20))


@pytest.fixture(scope="module")
def analysed():
    model, params = lg.linear_gaussian_model(latent=2, pixels=3)
    lg.near_optimal_encoder(model, params)
    images = {split: lg.sample_images(model, params, 6, seed=seed).astype(np.float32)
              for split, seed in (("train", 1), ("valid", 2), ("test", 3))}
    dataset = Dataset("frey-face", "gaussian", (1, 3), images)
    stages = []
    report = inference_gaps(model, params, dataset, FAST, progress=lambda stage, f: stages.append((stage, f)))
    return model, params, dataset, report, stages


def _exact(model, params, dataset, split):
    x = dataset.batch(split, np.arange(6)).astype(np.float64)
    mu, log_sigma2, _ = model.encode(params, x)
    star_mean, star_variance = lg.q_star(model, params, x)
    return {"log_px": lg.log_px(model, params, x), "q_star": lg.elbo(model, params, x, star_mean, star_variance),
            "encoder": lg.elbo(model, params, x, mu, np.exp(log_sigma2))}


@pytest.mark.parametrize("split", ["train", "test"])
def test_each_figure_and_gap_is_its_closed_form_within_its_error(analysed, split):
    model, params, dataset, report, _ = analysed
    exact = _exact(model, params, dataset, split)
    entry = report[split]
    want = {"log_px_ais": exact["log_px"].mean(), "log_px_is": exact["log_px"].mean(),
            "bound_q_star": exact["q_star"].mean(), "bound_encoder": exact["encoder"].mean(),
            "approximation_gap": (exact["log_px"] - exact["q_star"]).mean(),
            "amortization_gap": (exact["q_star"] - exact["encoder"]).mean(),
            "inference_gap": (exact["log_px"] - exact["encoder"]).mean()}
    for name, value in want.items():
        # the estimates are of the images' own figures; their noise is that of the estimators,
        # much below the spread over images that the standard errors carry
        assert abs(entry[name].mean - value) < 0.1, (name, entry[name], value)
        assert entry[name].stderr > 0 and entry[name].n == 6
    assert entry["approximation_gap"].mean > 0.1    # the posterior is correlated: q* cannot be exact
    assert entry["amortization_gap"].mean > 0.05    # the encoder is near q*, not at it
    assert entry["q_star_last_change"] < 0.05


def test_the_generalization_gaps_are_train_minus_test_with_combined_errors(analysed):
    _, _, _, report, _ = analysed
    for name, gap in report["generalization"].items():
        assert gap.mean == pytest.approx(report["train"][name].mean - report["test"][name].mean)
        assert gap.stderr == pytest.approx(np.hypot(report["train"][name].stderr, report["test"][name].stderr))


def test_the_report_says_its_settings_and_progress_in_plain_types(analysed):
    import json
    _, _, _, report, stages = analysed
    plain = report_to_dict(report)
    assert json.loads(json.dumps(plain))["settings"]["ais"]["steps"] == 500
    assert set(plain["train"]["amortization_gap"]) == {"mean", "stderr", "n"}
    assert [stage for stage, _ in stages][0] == "warm-up" and stages[-1] == ("test", 1.0)
    fractions = [f for stage, f in stages if stage == "train"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_summarize_pairs_the_gaps_image_by_image():
    figures = {"log_px_ais": np.array([1.0, 2.0, 3.0]), "log_px_is": np.array([1.0, 2.0, 3.0]),
               "bound_q_star": np.array([0.5, 1.5, 2.5]), "bound_encoder": np.array([0.0, 1.0, 2.0]),
               "q_star_last_change": np.array([0.001])}
    entry = summarize({"train": figures})["train"]
    assert entry["approximation_gap"].mean == 0.5 and entry["approximation_gap"].stderr == 0   # paired
    assert entry["log_px_ais"].stderr > 0


def _figures(rng, n, shift):
    """Figures of n images whose per-image level varies a lot and is shared by both models."""
    level = rng.normal(-90.0, 25.0, size=n)
    return {name: level + shift + k + rng.normal(0, 0.1, size=n) for k, name in enumerate(FIGURES)}


def test_the_paired_difference_subtracts_image_by_image():
    rng = np.random.default_rng(0)
    a = {"train": _figures(rng, 50, 0.0), "test": _figures(rng, 40, 0.0)}
    b = {subset: {name: values + (0.5 if subset == "test" else 0.2) * (name == "bound_encoder")
                  + rng.normal(0, 0.1, size=values.size) for name, values in a[subset].items()} for subset in a}
    report = paired_difference(a, b)
    for subset, n in (("train", 50), ("test", 40)):
        for name in FIGURES:
            d = b[subset][name] - a[subset][name]
            assert report[subset][name].mean == pytest.approx(d.mean())
            assert report[subset][name].stderr == pytest.approx(d.std(ddof=1) / np.sqrt(n))
            assert report[subset][name].stderr < 0.05 < a[subset][name].std(ddof=1) / np.sqrt(n)   # the level cancels
    # the encoder's bound of B is up, so its amortization gap is down by as much
    assert report["test"]["amortization_gap"].mean == pytest.approx(-0.5, abs=0.05)
    assert report["train"]["amortization_gap"].mean == pytest.approx(-0.2, abs=0.05)
    assert report["generalization"]["amortization_gap"].mean == pytest.approx(0.3, abs=0.07)
    assert report["generalization"]["amortization_gap"].stderr == pytest.approx(np.hypot(
        report["train"]["amortization_gap"].stderr, report["test"]["amortization_gap"].stderr))


def test_the_paired_difference_refuses_different_images():
    rng = np.random.default_rng(1)
    a = {"train": _figures(rng, 5, 0.0), "test": _figures(rng, 5, 0.0)}
    b = {"train": _figures(rng, 5, 0.0), "test": _figures(rng, 4, 0.0)}
    with pytest.raises(ValueError, match="5 and 4 test images"):
        paired_difference(a, b)


TINY = GapSettings(examples=3, is_samples=20, bound_samples=50, warmup_examples=2, batch_size=3,
                   ais=AISSettings(steps=10, chains=4, leapfrog=2), local=LocalOptimumSettings(steps=20))


def test_the_k_bound_is_kept_only_when_asked_and_moves_no_other_figure():
    from dataclasses import replace
    from npdvae.evaluation.gaps import IW_FIGURE, batch_figures
    from npdvae.evaluation.local_optimum import grouped_iw_bound
    model, params = lg.linear_gaussian_model(latent=2, pixels=3)
    x = lg.sample_images(model, params, 3, seed=4)
    step_sizes = np.full(TINY.ais.steps, 0.1)
    plain, _ = batch_figures(model, params, x, TINY, step_sizes, np.random.default_rng(7))
    with_k, _ = batch_figures(model, params, x, replace(TINY, iw_k=5), step_sizes, np.random.default_rng(7))
    assert IW_FIGURE not in plain and set(with_k) == set(plain) | {IW_FIGURE}
    for name in plain:   # the K bound is scored on the ELBO's own draws: nothing else moves
        np.testing.assert_array_equal(with_k[name], plain[name])
    # the same draws: the K bound of eps's first 50 samples, which the ELBO averaged
    eps = np.random.default_rng(7).standard_normal((3, 50, 2))
    mu, log_sigma2, _ = model.encode(params, x)
    from npdvae.evaluation.local_optimum import gaussian_log_weights
    np.testing.assert_array_equal(with_k[IW_FIGURE],
                                  grouped_iw_bound(gaussian_log_weights(model, params, x, mu, log_sigma2, eps), 5))
    assert np.all(with_k[IW_FIGURE] > with_k["bound_encoder"])


def test_settings_name_the_k_bound_only_when_it_is_asked_for():
    from dataclasses import replace
    assert "iw_k" not in TINY.to_dict() and TINY.figures == FIGURES   # as records made before it
    assert replace(TINY, iw_k=5).to_dict()["iw_k"] == 5 and replace(TINY, iw_k=5).figures[-1] == "bound_encoder_iw"
    with pytest.raises(ValueError, match="iw_k"):
        replace(TINY, iw_k=51)
    with pytest.raises(ValueError, match="iw_k"):
        replace(TINY, iw_k=0)


def test_the_k_bound_is_summarized_and_paired_only_where_both_analyses_have_it():
    rng = np.random.default_rng(2)
    a = {"train": _figures(rng, 20, 0.0), "test": _figures(rng, 20, 0.0)}
    b = {subset: {name: values + 0.3 for name, values in a[subset].items()} for subset in a}
    for figures in (*a.values(), *b.values()):
        figures["q_star_last_change"] = np.array([0.01])
    assert "bound_encoder_iw" not in paired_difference(a, b)["test"]
    for subset in a:
        a[subset]["bound_encoder_iw"] = a[subset]["bound_encoder"] + 1.0
        b[subset]["bound_encoder_iw"] = a[subset]["bound_encoder_iw"] + 0.5
    report = paired_difference(a, b)
    assert report["test"]["bound_encoder_iw"].mean == pytest.approx(0.5)
    assert report["generalization"]["bound_encoder_iw"].mean == pytest.approx(0.0)
    summary = summarize(b)
    assert summary["train"]["bound_encoder_iw"].mean == pytest.approx(b["train"]["bound_encoder_iw"].mean())
    assert "bound_encoder_iw" in summary["generalization"]
