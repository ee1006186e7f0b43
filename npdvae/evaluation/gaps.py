"""The inference gap split in two, on training and test images (Cremer, Li and Duvenaud 2018).

For each image x, four figures in nats, all lower bounds on log p(x) except where noted:

    log p(x) by AIS         the tightest (:mod:`npdvae.evaluation.ais`)
    log p(x) by IS          importance sampling with the encoder as proposal, K = 5000
                            (:func:`npdvae.evaluation.evaluate.importance_sampled_bound`)
    bound of q*             the ELBO of the best factorized Gaussian for that image
                            (:mod:`npdvae.evaluation.local_optimum`)
    encoder's bound         the ELBO of the encoder's q(z | x)

and from them

    approximation gap  = log p(x) [AIS] - bound of q*       what the Gaussian family costs
    amortization gap   = bound of q* - encoder's bound      what one shared encoder costs
    inference gap      = their sum, log p(x) [AIS] - encoder's bound

Each figure is a mean over the images, with its standard error over them; a gap's error is
that of the per-image differences (the same images enter both terms). The generalization gap
of a figure is its training mean minus its test mean, with the two errors combined as
independent (different images).

The two subsets are the first N images of the training split and of the test split, as the
issue of this analysis asks; AIS's step sizes are adapted on the first validation images,
which neither subset holds, and nothing is tuned on the test images.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from npdvae.evaluation.ais import AISSettings, adapt_step_sizes, anneal
from npdvae.evaluation.evaluate import Estimate, importance_sampled_bound
from npdvae.evaluation.local_optimum import LocalOptimumSettings, gaussian_bound, last_change, optimize_gaussian

FIGURES = ("log_px_ais", "log_px_is", "bound_q_star", "bound_encoder")
GAPS = {   # name: (minuend, subtrahend)
    "approximation_gap": ("log_px_ais", "bound_q_star"),
    "amortization_gap": ("bound_q_star", "bound_encoder"),
    "inference_gap": ("log_px_ais", "bound_encoder"),
}
SUBSETS = ("train", "test")


@dataclass(frozen=True)
class GapSettings:
    """Every setting of a gaps analysis; ``examples`` images of each subset."""

    examples: int = 1000
    is_samples: int = 5000
    bound_samples: int = 100       # eps per image scoring the encoder's and q*'s bounds
    warmup_examples: int = 10      # validation images that adapt AIS's step sizes
    batch_size: int = 25           # images at a time (memory: batch_size * chains decoder rows)
    seed: int = 0
    ais: AISSettings = field(default_factory=AISSettings)
    local: LocalOptimumSettings = field(default_factory=LocalOptimumSettings)

    def __post_init__(self):
        for name in ("examples", "is_samples", "bound_samples", "warmup_examples", "batch_size"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value}")

    def to_dict(self) -> dict:
        return asdict(self)


def _streams(seed: int):
    """Independent streams for each use, so that changing one setting moves no other figure's draws."""
    names = ("warmup", "train", "test", "images")
    return {name: np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,))) for i, name in enumerate(names)}


def subset_figures(model, params, images_of, n, settings: GapSettings, step_sizes, rng, progress=None) -> dict:
    """Per-image figures (name -> (n,) float64) for the first ``n`` images, and the q* search's
    last change per batch (``"q_star_last_change"``). ``progress(fraction)`` hears 0..1."""
    per_image = {name: [] for name in FIGURES}
    changes = []
    Z, dtype = model.config.latent, params["decoder.hidden0.W"].dtype
    for first in range(0, n, settings.batch_size):
        x = images_of(np.arange(first, min(n, first + settings.batch_size))).astype(dtype, copy=False)
        B = x.shape[0]

        def tick(done_in_batch):
            if progress:
                progress(min(1.0, (first + done_in_batch * B) / n))

        mu, log_sigma2, _ = model.encode(params, np.ascontiguousarray(x))
        eps = rng.standard_normal((B, settings.bound_samples, Z)).astype(mu.dtype)
        per_image["bound_encoder"].append(gaussian_bound(model, params, x, mu, log_sigma2, eps))
        mu_star, log_sigma2_star, trace = optimize_gaussian(model, params, x, mu, log_sigma2, settings.local, rng)
        changes.append(last_change(trace))
        eps = rng.standard_normal((B, settings.bound_samples, Z)).astype(mu.dtype)
        per_image["bound_q_star"].append(gaussian_bound(model, params, x, mu_star, log_sigma2_star, eps))
        tick(0.1)
        per_image["log_px_is"].append(importance_sampled_bound(model, params, x, settings.is_samples, rng))
        tick(0.2)
        estimate, _ = anneal(model, params, x, settings.ais, step_sizes, rng,
                             tick=lambda fraction: tick(0.2 + 0.8 * fraction))
        per_image["log_px_ais"].append(estimate)
        tick(1.0)
    figures = {name: np.concatenate(values) for name, values in per_image.items()}
    figures["q_star_last_change"] = np.asarray(changes)
    return figures


def summarize(figures_by_subset: dict) -> dict:
    """Estimates of every figure and gap per subset, and their generalization gaps (train - test)."""
    report = {}
    for subset, figures in figures_by_subset.items():
        entry = {name: Estimate.of(figures[name]) for name in FIGURES}
        for gap, (a, b) in GAPS.items():
            entry[gap] = Estimate.of(figures[a] - figures[b])
        entry["q_star_last_change"] = float(np.max(np.abs(figures["q_star_last_change"])))
        report[subset] = entry
    if all(subset in report for subset in SUBSETS):
        report["generalization"] = {
            name: Estimate(report["train"][name].mean - report["test"][name].mean,
                           math.hypot(report["train"][name].stderr, report["test"][name].stderr),
                           min(report["train"][name].n, report["test"][name].n))
            for name in (*FIGURES, *GAPS)}
    return report


def inference_gaps(model, params, dataset, settings: GapSettings, progress=None) -> dict:
    """The whole analysis of a trained model on ``dataset``: ``{"settings", "step_sizes",
    "train", "test", "generalization"}``. ``progress(stage, fraction)`` hears "warm-up",
    "train" and "test" with 0..1."""
    streams = _streams(settings.seed)
    say = progress or (lambda stage, fraction: None)
    warmup = min(settings.warmup_examples, dataset.num_examples("valid"))
    x_warm = dataset.batch("valid", np.arange(warmup), streams["images"]).astype(
        params["decoder.hidden0.W"].dtype, copy=False)
    say("warm-up", 0.0)
    step_sizes = adapt_step_sizes(model, params, x_warm, settings.ais, streams["warmup"],
                                  tick=lambda fraction: say("warm-up", fraction))
    figures = {}
    for subset in SUBSETS:
        n = min(settings.examples, dataset.num_examples(subset))
        figures[subset] = subset_figures(
            model, params, lambda idx, s=subset: dataset.batch(s, idx, streams["images"]), n, settings,
            step_sizes, streams[subset], progress=lambda fraction, s=subset: say(s, fraction))
    report = summarize(figures)
    report["settings"] = settings.to_dict()
    report["step_sizes"] = {"first": float(step_sizes[0]), "median": float(np.median(step_sizes)),
                            "last": float(step_sizes[-1])}
    return report


def report_to_dict(report: dict) -> dict:
    """Plain JSON types: every Estimate as {"mean", "stderr", "n"}."""
    def plain(value):
        if isinstance(value, Estimate):
            return asdict(value)
        if isinstance(value, dict):
            return {key: plain(v) for key, v in value.items()}
        return value
    return plain(report)


__all__ = ["GapSettings", "FIGURES", "GAPS", "SUBSETS", "subset_figures", "summarize", "inference_gaps",
           "report_to_dict"]
