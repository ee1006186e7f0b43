"""``npdvae gaps``: the inference gap of a trained model split into approximation and amortization,
on training and test images (npdvae.evaluation.gaps)."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import click
import numpy as np

from npdvae.data import DataError
from npdvae.evaluation.ais import STARTS, AISSettings
from npdvae.evaluation.gaps import GAPS, GapSettings, analysed_images, inference_gaps, report_to_dict
from npdvae.evaluation.gaps_record import REPORT_NAME, GapsRecord, GapsRecordError, params_digest
from npdvae.evaluation.local_optimum import LocalOptimumSettings
from npdvae.run_folder.checkpoint import CheckpointError
from npdvae.run_folder.run_files import RunLockedError, RunWriteError
from npdvae.run_folder.runs import RunDirectoryError, load_trained, prepare_dataset
from npdvae.training.optim import NonFiniteGradientError
from .common import check_writable, data_dir_option, say_data
from .progress import Progress
from .stopping import StopRequests

LABELS = {
    "log_px_ais": "log p(x), AIS",
    "log_px_is": "log p(x), IS",
    "bound_q_star": "bound of q* (best Gaussian per image)",
    "bound_encoder": "bound of the encoder's q(z|x)",
    "bound_encoder_iw": "K-sample bound of the encoder's q (K={k})",
    "approximation_gap": "approximation gap (AIS - q*)",
    "amortization_gap": "amortization gap (q* - encoder)",
    "inference_gap": "inference gap (AIS - encoder)",
}


def label(name: str, iw_k: int = 1) -> str:
    """The row label of a figure or gap; the K bound's names its K."""
    return LABELS[name].format(k=iw_k)


class GapsStopped(Exception):
    pass


@click.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option("--examples", type=click.IntRange(min=1), default=1000, show_default=True,
              help="The first N training and the first N test images.")
@click.option("--is-samples", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Importance samples of the IS estimate of log p(x).")
@click.option("--bound-samples", type=click.IntRange(min=1), default=100, show_default=True,
              help="Samples of z per image scoring the encoder's and q*'s bounds.")
@click.option("--iw-k", type=click.IntRange(min=1), default=None,
              help="Also score the encoder's importance-weighted bound with K samples, on groups of K of "
                   "the --bound-samples draws. Default: the K an importance-weighted model was trained "
                   "with; 1 (none) for a model trained with the ELBO.")
@click.option("--ais-steps", type=click.IntRange(min=1), default=500, show_default=True,
              help="Intermediate densities of the AIS path.")
@click.option("--ais-chains", type=click.IntRange(min=1), default=16, show_default=True,
              help="AIS chains per image.")
@click.option("--leapfrog", type=click.IntRange(min=1), default=10, show_default=True,
              help="Leapfrog steps per HMC transition.")
@click.option("--ais-start", type=click.Choice(STARTS), default=AISSettings.start, show_default=True,
              help="The AIS path's first density: the prior p(z), or the encoder's q(z|x).")
@click.option("--warmup-examples", type=click.IntRange(min=1), default=10, show_default=True,
              help="Validation images on which AIS's step sizes are adapted.")
@click.option("--local-steps", type=click.IntRange(min=20), default=LocalOptimumSettings.steps, show_default=True,
              help="Adam steps of the search for q*.")
@click.option("--local-lr", type=click.FloatRange(min=0, min_open=True), default=1e-2, show_default=True,
              help="Adam's first rate in the search for q* (it falls to a tenth).")
@click.option("--local-samples", type=click.IntRange(min=1), default=10, show_default=True,
              help="Samples of z per Adam step of the search for q*.")
@click.option("--batch-size", type=click.IntRange(min=1), default=25, show_default=True,
              help="Images at a time; memory is batch size x chains decoder rows.")
@click.option("--seed", type=click.IntRange(0, 2 ** 63 - 2), default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the analysis in this folder: every finished batch of images, and the report "
                   f"({REPORT_NAME}) at the end; the same command continues it after a stop.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@data_dir_option
def gaps(run, examples, is_samples, bound_samples, iw_k, ais_steps, ais_chains, leapfrog, ais_start, warmup_examples,
         local_steps, local_lr, local_samples, batch_size, seed, out, as_json, data_dir):
    """Split the gap between log p(x) and the encoder's bound, on training and test images.

    RUN is a run folder or a model file. For the first N images of each subset: log p(x) by
    annealed importance sampling and by importance sampling, the bound of the best factorized
    Gaussian of each image (q*) and the encoder's bound (its ELBO, for every model, so that the
    gaps compare across bounds; for an importance-weighted model also its K-sample bound); the
    approximation gap (AIS - q*), the amortization gap (q* - encoder), and each one's
    generalization gap (train - test), all with standard errors over the images. Without --out nothing is written; with it, a stop
    loses at most the batch under way. An interrupt ends it in one line."""
    if not math.isfinite(local_lr):
        raise click.BadParameter(f"{local_lr}: a learning rate must be a finite number", param_hint="--local-lr")
    if out is not None:
        check_writable(out)   # before the data is read: an --out that cannot be written is the one line said
    stops = StopRequests().install()
    try:
        notes = []
        config, model, params = load_trained(run, notes=notes)   # best.h5, or what it fell back on, said below
        for note in notes:
            click.echo(f"note: {note}", err=True)
        if iw_k is None:
            iw_k = config.k if config.bound == "iwae" else 1
        if iw_k > bound_samples:
            raise click.BadParameter(f"{iw_k}: the K bound is scored on groups of K of the --bound-samples "
                                     f"{bound_samples} draws; give --bound-samples of at least {iw_k}",
                                     param_hint="--iw-k")
        settings = GapSettings(examples=examples, is_samples=is_samples, bound_samples=bound_samples,
                               warmup_examples=warmup_examples, batch_size=batch_size, seed=seed, iw_k=iw_k,
                               ais=AISSettings(steps=ais_steps, chains=ais_chains, leapfrog=leapfrog, start=ais_start),
                               local=LocalOptimumSettings(steps=local_steps, lr=local_lr, samples=local_samples))
        problem = settings.memory_problem(model.config.input_dim, model.config.hidden, model.config.latent)
        if problem:
            raise click.BadParameter(problem[1], param_hint=problem[0])
        dataset = prepare_dataset(config, data_dir, say=say_data)
    except (RunDirectoryError, CheckpointError) as err:
        raise click.BadParameter(str(err), param_hint="RUN") from None
    except DataError as err:
        raise click.ClickException(str(err)) from None
    record = None
    if out is not None:
        try:
            record = GapsRecord(out, settings.to_dict(), params_digest(params),
                                analysed_images(dataset, settings, params["decoder.hidden0.W"].dtype))
        except GapsRecordError as err:
            raise click.BadParameter(str(err), param_hint="--out") from None
        except (RunLockedError, RunWriteError) as err:
            raise click.ClickException(str(err)) from None
    n = {subset: min(examples, dataset.num_examples(subset)) for subset in ("train", "test")}
    bar = Progress("gaps", enabled=True)
    started = {"stage": None, "at": time.perf_counter()}
    begun = time.perf_counter()

    def progress(stage, fraction):
        if stops():   # polled between HMC transitions: no signal lands inside a kernel
            raise GapsStopped(f"gaps stopped in {stage} ({fraction:.0%} of it done); nothing was written")
        if stage != started["stage"]:
            if started["stage"] is not None:
                bar.clear()
                click.echo(f"  {started['stage']}: done in {time.perf_counter() - started['at']:.0f} s", err=True)
            started.update(stage=stage, at=time.perf_counter())
        bar.label = f"gaps: {stage}"
        bar.update(int(1000 * fraction), 1000)

    click.echo(f"{config.model_name} on {config.dataset}: gaps on the first {n['train']} training and "
               f"{n['test']} test images", err=True)
    try:
        # a diverging search says so below, in one line; NumPy's overflow warnings would only repeat it
        with stops, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            report = inference_gaps(model, params, dataset, settings, progress=progress, record=record)
    except GapsStopped as stop:
        bar.clear()
        kept = (f"; the finished batches are kept in {out}: the same command continues" if out is not None
                else "; nothing was written")
        click.echo(f"{stops.name}: {str(stop).replace('; nothing was written', '')}{kept}", err=True)
        sys.exit(stops.exit_code)
    except RunWriteError as err:
        raise click.ClickException(f"{err}; the batches written before it are kept, whole: once the file can be "
                                   f"written, the same command continues") from None
    except NonFiniteGradientError as err:
        bar.clear()
        kept = "; the batches written before it are kept" if out is not None else ""
        raise click.ClickException(f"the search for each image's best Gaussian diverged at --local-lr {local_lr} "
                                   f"({err}): give a smaller --local-lr{kept}") from None
    bar.clear()
    if started["stage"] is not None:
        click.echo(f"  {started['stage']}: done in {time.perf_counter() - started['at']:.0f} s", err=True)
    if report["batches_done_before"]:
        click.echo(f"  {report['batches_done_before']} batches were done before, read from {out}", err=True)
    seconds = time.perf_counter() - begun
    if not all(np.isfinite(report[subset][name].mean) for subset in ("train", "test") for name in settings.figures):
        raise click.ClickException(f"the gaps of {run} are not finite; its parameters give NaN or infinite bounds")
    payload = {"run": str(run), "model": config.model_name, "examples": n, "seconds": round(seconds, 1),
               **report_to_dict(report)}
    if record is not None:
        try:
            record.write_report(payload)
        except RunWriteError as err:
            raise click.ClickException(str(err)) from None
        record.close()
    if as_json:
        click.echo(json.dumps(payload, indent=2))
        return
    s = settings
    click.echo(f"{config.model_name} on {config.dataset}: first {n['train']} training and {n['test']} test images "
               f"({seconds:.0f} s); nats, mean ± standard error over the images")
    click.echo(f"  AIS: {s.ais.steps} steps from the {s.ais.start}, {s.ais.chains} chains, {s.ais.leapfrog} leapfrog "
               f"steps, step sizes adapted on {s.warmup_examples} validation images "
               f"(median {report['step_sizes']['median']:.3g}); IS: K={s.is_samples}; q*: {s.local.steps} Adam steps "
               f"from {s.local.lr:g}, {s.local.samples} samples each; bounds scored with {s.bound_samples} samples")
    header = f"  {'':40s} {'train':>16s} {'test':>16s} {'train - test':>16s}"
    click.echo(header)
    for name in (*settings.figures, *GAPS):
        cells = [f"{report[key][name].mean:8.2f} ± {report[key][name].stderr:5.2f}"
                 for key in ("train", "test", "generalization")]
        click.echo(f"  {label(name, settings.iw_k):40s} {cells[0]:>16s} {cells[1]:>16s} {cells[2]:>16s}")
    click.echo(f"  q* search, largest change of a batch's bound over its last tenth of steps: "
               f"{report['train']['q_star_last_change']:.3f} (train), {report['test']['q_star_last_change']:.3f} (test)")
