"""The inference gap split in two, on training and test images (Cremer, Li and Duvenaud 2018).

For each image x, four figures in nats, all lower bounds on log p(x) except where noted:

    log p(x) by AIS         the tightest (:mod:`npdvae.evaluation.ais`)
    log p(x) by IS          importance sampling with the encoder as proposal, K = 5000
                            (:func:`npdvae.evaluation.evaluate.importance_sampled_bound`)
    bound of q*             the ELBO of the best factorized Gaussian for that image
                            (:mod:`npdvae.evaluation.local_optimum`)
    encoder's bound         the ELBO of the encoder's q(z | x)
    encoder's K bound       with ``iw_k`` = K > 1 only: the importance-weighted bound of the
                            encoder's q with K samples, on the same draws of z as its ELBO; for a
                            model trained with K samples it is the bound its encoder was trained for

and from them

    approximation gap  = log p(x) [AIS] - bound of q*       what the Gaussian family costs
    amortization gap   = bound of q* - encoder's bound      what one shared encoder costs
    inference gap      = their sum, log p(x) [AIS] - encoder's bound

The gaps use the ELBO for every model, an importance-weighted one included, because q* is the
best Gaussian by the ELBO: so the gaps of a model trained with eq. 11 and of one trained with
eq. 12 are the same measurement. The K bound says how much of the inference gap K samples
close for the encoder's q.

Each figure is a mean over the images, with its standard error over them; a gap's error is
that of the per-image differences (the same images enter both terms). The generalization gap
of a figure is its training mean minus its test mean, with the two errors combined as
independent (different images).

The two subsets are the first N images of the training split and of the test split, as the
issue of this analysis asks; AIS's step sizes are adapted on the first validation images,
which neither subset holds, and nothing is tuned on the test images.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from npdvae.evaluation.ais import AISSettings, adapt_step_sizes, anneal
from npdvae.evaluation.evaluate import Estimate, importance_sampled_bound
from npdvae.evaluation.local_optimum import (LocalOptimumSettings, gaussian_bound, gaussian_log_weights,
                                             grouped_iw_bound, last_change, optimize_gaussian)

FIGURES = ("log_px_ais", "log_px_is", "bound_q_star", "bound_encoder")
IW_FIGURE = "bound_encoder_iw"   # the encoder's K-sample bound, present only when iw_k > 1
GAPS = {   # name: (minuend, subtrahend)
    "approximation_gap": ("log_px_ais", "bound_q_star"),
    "amortization_gap": ("bound_q_star", "bound_encoder"),
    "inference_gap": ("log_px_ais", "bound_encoder"),
}
SUBSETS = ("train", "test")
# The most memory one decoder pass of an analysis may ask for, refused before anything is allocated
MAX_PASS_BYTES = 8 * 1024 ** 3


@dataclass(frozen=True)
class GapSettings:
    """Every setting of a gaps analysis; ``examples`` images of each subset."""

    examples: int = 1000
    is_samples: int = 5000
    bound_samples: int = 100       # eps per image scoring the encoder's and q*'s bounds
    warmup_examples: int = 10      # validation images that adapt AIS's step sizes
    batch_size: int = 25           # images at a time (memory: batch_size * chains decoder rows)
    seed: int = 0
    iw_k: int = 1                  # K of the encoder's importance-weighted bound; 1: none
    ais: AISSettings = field(default_factory=AISSettings)
    local: LocalOptimumSettings = field(default_factory=LocalOptimumSettings)

    def __post_init__(self):
        for name in ("examples", "is_samples", "bound_samples", "warmup_examples", "batch_size", "iw_k"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value}")
        if self.iw_k > self.bound_samples:
            raise ValueError(f"iw_k ({self.iw_k}) must be at most bound_samples ({self.bound_samples}): the "
                             "K bound is scored on groups of K of those samples")

    def to_dict(self) -> dict:
        """Every setting in plain types; iw_k only when it asks for the K bound, so that an
        analysis without it has the settings, and compares with, records made before it existed."""
        settings = asdict(self)
        if self.iw_k == 1:
            del settings["iw_k"]
        return settings

    @property
    def figures(self) -> tuple[str, ...]:
        """The per-image figures an analysis with these settings keeps."""
        return FIGURES + ((IW_FIGURE,) if self.iw_k > 1 else ())

    def memory_problem(self, input_dim: int, hidden: int, latent: int) -> tuple[str, str] | None:
        """(the option to lower, why) when the largest decoder pass of the analysis would need
        more than :data:`MAX_PASS_BYTES`, counting each row's activations, their gradients and
        temporaries in float64; None when it fits. Checked before anything is allocated."""
        passes = {  # option to lower: (decoder rows of its largest pass, how they come about)
            "--ais-chains": (self.batch_size * self.ais.chains, f"--batch-size {self.batch_size} x --ais-chains "
                                                                f"{self.ais.chains}"),
            "--bound-samples": (self.batch_size * self.bound_samples, f"--batch-size {self.batch_size} x "
                                                                      f"--bound-samples {self.bound_samples}"),
            "--local-samples": (self.batch_size * self.local.samples, f"--batch-size {self.batch_size} x "
                                                                      f"--local-samples {self.local.samples}"),
            "--warmup-examples": (self.warmup_examples * self.ais.chains, f"--warmup-examples "
                                                                          f"{self.warmup_examples} x --ais-chains "
                                                                          f"{self.ais.chains}"),
        }
        option, (rows, why) = max(passes.items(), key=lambda item: item[1][0])
        need = rows * 4 * 8 * (2 * hidden + 2 * input_dim + 4 * latent)
        if need <= MAX_PASS_BYTES:
            return None
        return option, (f"{why} decoder rows need about {need / 1024 ** 3:.0f} GiB at once "
                        f"(limit {MAX_PASS_BYTES / 1024 ** 3:.0f} GiB); lower {option} or --batch-size")


def _stream(seed: int, *key: int) -> np.random.Generator:
    """The stream of one use: the warm-up (0,), or a batch (subset, first image, purpose), so that
    a batch draws the same numbers whatever ran before it (an analysis can stop and continue)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def batch_figures(model, params, x, settings: GapSettings, step_sizes, rng, tick=None) -> tuple[dict, float]:
    """Per-image figures (name -> (B,) float64) of the images x (B, D), and the q* search's last
    change (see :func:`npdvae.evaluation.local_optimum.last_change`). ``tick(fraction)`` hears 0..1."""
    tick = tick or (lambda fraction: None)
    Z = model.config.latent
    figures = {}
    mu, log_sigma2, _ = model.encode(params, np.ascontiguousarray(x))
    eps = rng.standard_normal((x.shape[0], settings.bound_samples, Z)).astype(mu.dtype)
    # the K bound is scored on the ELBO's own draws, so that no other figure's draws move
    log_w = gaussian_log_weights(model, params, x, mu, log_sigma2, eps)
    figures["bound_encoder"] = log_w.mean(axis=1)
    if settings.iw_k > 1:
        figures[IW_FIGURE] = grouped_iw_bound(log_w, settings.iw_k)
    mu_star, log_sigma2_star, trace = optimize_gaussian(model, params, x, mu, log_sigma2, settings.local, rng)
    eps = rng.standard_normal((x.shape[0], settings.bound_samples, Z)).astype(mu.dtype)
    figures["bound_q_star"] = gaussian_bound(model, params, x, mu_star, log_sigma2_star, eps)
    tick(0.1)
    figures["log_px_is"] = importance_sampled_bound(model, params, x, settings.is_samples, rng)
    tick(0.2)
    figures["log_px_ais"], _ = anneal(model, params, x, settings.ais, step_sizes, rng,
                                      tick=lambda fraction: tick(0.2 + 0.8 * fraction))
    tick(1.0)
    return figures, last_change(trace)


def summarize(figures_by_subset: dict) -> dict:
    """Estimates of every figure and gap per subset, and their generalization gaps (train - test)."""
    report = {}
    for subset, figures in figures_by_subset.items():
        entry = {name: Estimate.of(figures[name]) for name in _figure_names(figures)}
        for gap, (a, b) in GAPS.items():
            entry[gap] = Estimate.of(figures[a] - figures[b])
        entry["q_star_last_change"] = float(np.max(np.abs(figures["q_star_last_change"])))
        report[subset] = entry
    if all(subset in report for subset in SUBSETS):
        report["generalization"] = _train_minus_test(report)
    return report


def _figure_names(*figures: dict) -> tuple[str, ...]:
    """The figures every one of ``figures`` holds: the four always, the K bound where all have it."""
    return FIGURES + ((IW_FIGURE,) if all(IW_FIGURE in f for f in figures) else ())


def _train_minus_test(report: dict) -> dict:
    """Each figure's and gap's training mean minus its test mean; errors combined as independent."""
    return {name: Estimate(report["train"][name].mean - report["test"][name].mean,
                           math.hypot(report["train"][name].stderr, report["test"][name].stderr),
                           min(report["train"][name].n, report["test"][name].n))
            for name in (*_figure_names(report["train"], report["test"]), *GAPS)}


def _images(dataset, settings: GapSettings, subset: str, number: int, first: int, size: int, dtype):
    """The images of one batch, as the analysis scores them (a dynamic binarization draws them
    from the batch's own stream)."""
    return dataset.batch(subset, np.arange(first, first + size), _stream(settings.seed, number, first, 1)) \
        .astype(dtype, copy=False)


def analysed_images(dataset, settings: GapSettings, dtype=np.float32) -> dict:
    """What images an analysis of ``dataset`` with ``settings`` covers, so that two analyses are
    compared only on the same images: the data set, its binarization and that binarization's
    seed, and per subset the number of images and the SHA-256 of the images themselves."""
    described = {"dataset": dataset.name, "binarization": dataset.binarization,
                 "binarization_seed": dataset.binarization_seed}
    for number, subset in enumerate(SUBSETS, start=1):
        n = min(settings.examples, dataset.num_examples(subset))
        digest = hashlib.sha256()
        for first in range(0, n, settings.batch_size):
            size = min(settings.batch_size, n - first)
            digest.update(np.ascontiguousarray(_images(dataset, settings, subset, number, first, size, dtype)).tobytes())
        described[subset] = {"images": n, "sha256": digest.hexdigest()}
    return described


def inference_gaps(model, params, dataset, settings: GapSettings, progress=None, record=None) -> dict:
    """The whole analysis of a trained model on ``dataset``: ``{"settings", "step_sizes",
    "train", "test", "generalization", "batches_done_before"}``. ``progress(stage, fraction)``
    hears "warm-up", "train" and "test" with 0..1. With a ``record``
    (:class:`npdvae.evaluation.gaps_record.GapsRecord`) every finished batch is kept there and
    the batches it already holds are not computed again."""
    say = progress or (lambda stage, fraction: None)
    dtype = params["decoder.hidden0.W"].dtype
    if record is not None and record.step_sizes is not None:
        step_sizes = record.step_sizes
    else:
        warmup = min(settings.warmup_examples, dataset.num_examples("valid"))
        x_warm = dataset.batch("valid", np.arange(warmup), _stream(settings.seed, 0, 1)).astype(dtype, copy=False)
        say("warm-up", 0.0)
        step_sizes = adapt_step_sizes(model, params, x_warm, settings.ais, _stream(settings.seed, 0),
                                      tick=lambda fraction: say("warm-up", fraction))
        if record is not None:
            record.begin(step_sizes)
    figures, done_before = {}, 0
    for number, subset in enumerate(SUBSETS, start=1):
        n = min(settings.examples, dataset.num_examples(subset))
        per_batch, changes = [], []
        for first in range(0, n, settings.batch_size):
            size = min(settings.batch_size, n - first)
            kept = record.batches.get((subset, first)) if record is not None else None
            if kept is not None and all(len(values) == size for values in kept["figures"].values()):
                batch, change = kept["figures"], kept["last_change"]
                done_before += 1
            else:
                x = _images(dataset, settings, subset, number, first, size, dtype)
                batch, change = batch_figures(
                    model, params, x, settings, step_sizes, _stream(settings.seed, number, first, 0),
                    tick=lambda fraction, f=first, s=subset, n=n, b=size: say(s, (f + fraction * b) / n))
                if record is not None:
                    record.add(subset, first, batch, change)
            per_batch.append(batch)
            changes.append(change)
            say(subset, (first + size) / n)
        figures[subset] = {name: np.concatenate([b[name] for b in per_batch]) for name in settings.figures}
        figures[subset]["q_star_last_change"] = np.asarray(changes)
    report = summarize(figures)
    report["settings"] = settings.to_dict()
    report["step_sizes"] = {"first": float(step_sizes[0]), "median": float(np.median(step_sizes)),
                            "last": float(step_sizes[-1])}
    report["batches_done_before"] = done_before
    return report


def paired_difference(figures_a: dict, figures_b: dict) -> dict:
    """Model B minus model A, image by image, for analyses of the same images:
    ``{subset: {name: Estimate}}`` for every figure and gap, and ``"generalization"``, the
    difference of their generalization gaps, (train_B - test_B) - (train_A - test_A).

    Pairing is what makes a small difference between two models visible: an image that is
    hard for one is hard for the other, so the per-image differences vary far less than the
    figures themselves. The generalization entry combines the two subsets' paired errors as
    independent (different images)."""
    report = {}
    for subset in SUBSETS:
        a, b = figures_a[subset], figures_b[subset]
        if len(a["log_px_ais"]) != len(b["log_px_ais"]):
            raise ValueError(f"the two analyses scored {len(a['log_px_ais'])} and {len(b['log_px_ais'])} "
                             f"{subset} images; a paired difference needs the same images")
        entry = {name: Estimate.of(b[name] - a[name]) for name in _figure_names(a, b)}
        for gap, (plus, minus) in GAPS.items():
            entry[gap] = Estimate.of((b[plus] - b[minus]) - (a[plus] - a[minus]))
        report[subset] = entry
    report["generalization"] = _train_minus_test(report)
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


__all__ = ["GapSettings", "FIGURES", "IW_FIGURE", "GAPS", "SUBSETS", "batch_figures", "summarize", "inference_gaps",
           "paired_difference", "report_to_dict"]
