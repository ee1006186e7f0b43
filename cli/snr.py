"""``npdvae snr``: the signal-to-noise ratio of a trained model's gradient, per estimator and K."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import click
import numpy as np

from npdvae.data import DataError
from npdvae.evaluation.snr import SNRSettings, gradient_snr
from npdvae.run_folder.checkpoint import CheckpointError
from npdvae.run_folder.runs import RunDirectoryError, load_trained, prepare_dataset
from npdvae.vae.model import ENCODER_GRADIENTS
from .common import data_dir_option, say_data
from .progress import Progress
from .stopping import StopRequests


class _Stopped(Exception):
    pass


@click.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option("--k", "ks", type=click.IntRange(min=1), multiple=True,
              help="Samples of z per copy (repeatable).  [default: 1, 5, 50]")
@click.option("--estimator", "estimators", type=click.Choice(ENCODER_GRADIENTS), multiple=True,
              help="The encoder's gradient estimator (repeatable).  [default: all three]")
@click.option("--draws", type=click.IntRange(min=2), default=200, show_default=True,
              help="Gradient estimates per estimator and K, on the same images.")
@click.option("--examples", type=click.IntRange(min=1), default=100, show_default=True,
              help="The first N training images: one minibatch, averaged in each estimate.")
@click.option("--corrupted/--clean", default=False, show_default=True,
              help="Corrupt the images afresh at every draw with the model's own corruption, or not.")
@click.option("--noise", type=float,
              help="With --corrupted: the level of the model's kind of corruption (default: its own level; a "
                   "clean model's is 0, so it needs one).")
@click.option("--seed", type=click.IntRange(0, 2 ** 63 - 2), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON, per parameter array too.")
@data_dir_option
def snr(run, ks, estimators, draws, examples, corrupted, noise, seed, as_json, data_dir):
    """The signal-to-noise ratio of the gradient at a trained model (a run folder or a model
    file): |mean| / std of each parameter's estimate over repeated draws, summarized for the
    encoder and the decoder, for each estimator of the encoder's gradient and each K of the
    importance-weighted bound (eq. 12; eq. 11 at K = 1). Nothing is written."""
    settings = SNRSettings(ks=tuple(ks) or (1, 5, 50), estimators=tuple(dict.fromkeys(estimators)) or ENCODER_GRADIENTS,
                           draws=draws, corrupted=corrupted, seed=seed)
    stops = StopRequests().install()
    notes = []
    try:
        config, model, params = load_trained(run, "best", notes)
    except (RunDirectoryError, CheckpointError) as err:
        raise click.BadParameter(str(err), param_hint="RUN") from None
    if noise is not None and not corrupted:
        raise click.BadParameter("a level only says how to corrupt: give --corrupted too", param_hint="--noise")
    try:
        level = replace(config, noise=noise) if noise is not None else config
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--noise") from None
    try:
        dataset = prepare_dataset(config, data_dir, say=say_data)
        corruption = level.corruption(dataset.pixel_mean("train"), ops=model.ops)
    except (DataError, ValueError) as err:   # the data, or a corruption this process has not registered
        raise click.ClickException(str(err)) from None
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if corrupted and not level.corrupted:
        raise click.BadParameter(f"{config.model_name} was trained without corruption: give --clean, or --noise "
                                 f"for a level of {config.noise_type}", param_hint="--corrupted")
    n = min(examples, dataset.num_examples("train"))
    x = dataset.batch("train", np.arange(n), np.random.default_rng(seed))
    bar = Progress("snr", enabled=not as_json)

    def progress(done, total):
        if stops():
            raise _Stopped(f"stopped after {done} of {total} draws; nothing was written")
        bar.update(done, total)

    start = time.perf_counter()
    try:
        with stops, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            results = gradient_snr(model, params, x, corruption, settings, m=config.m, progress=progress)
    except _Stopped as stop:
        bar.clear()
        click.echo(f"{stops.name}: {stop}", err=True)
        sys.exit(stops.exit_code)
    bar.clear()
    seconds = time.perf_counter() - start
    inputs = f"corrupted ({level.noise_type} {level.noise_level})" if corrupted else "clean"
    if as_json:
        click.echo(json.dumps({"run": str(run), "model": config.model_name, "inputs": inputs, "examples": n,
                               "draws": draws, "seed": seed, "seconds": round(seconds, 1),
                               "results": [{"estimator": r.estimator, "k": r.k, "groups": r.groups,
                                            "arrays": r.arrays} for r in results]}, indent=2))
        return
    click.echo(f"{config.model_name} on {config.dataset}: gradient SNR (|mean| / std over {draws} draws of the "
               f"minibatch gradient on the first {n} training images, {inputs}; {seconds:.0f} s)")
    click.echo(f"  {'estimator':10s} {'K':>4s}  {'encoder mean':>12s} {'median':>8s}  {'decoder mean':>12s} {'median':>8s}")
    for r in results:
        enc, dec = r.groups["encoder"], r.groups["decoder"]
        click.echo(f"  {r.estimator:10s} {r.k:4d}  {enc['mean']:12.3f} {enc['median']:8.3f}  "
                   f"{dec['mean']:12.3f} {dec['median']:8.3f}")
