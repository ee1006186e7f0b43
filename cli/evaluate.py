"""``npdvae evaluate`` and ``npdvae export``: a trained model's figures, and its model file."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np

from npdvae.run_folder.checkpoint import CheckpointError
from npdvae.data import DataError
from npdvae.data.datasets import SPLITS
from npdvae.evaluation.evaluate import EVALUATION_BATCH, evaluate_run, results_to_dict
from npdvae.training.config import TrainConfig
from npdvae.run_folder.runs import RunDirectoryError, is_run_folder, load_trained, prepare_dataset
from npdvae.run_folder.model_card import card_path, write_model_card
from npdvae.run_folder.model_file import is_model_file, load_model_file, model_from_run, save_model_file
from npdvae.run_folder.provenance import describe
from npdvae.run_folder.run_files import RunWriteError, remove_orphaned_temporaries
from npdvae.training.loop import split_bound
from .progress import Progress
from .stopping import StopRequests
from .common import check_output_file, data_dir_option, say_data


@click.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option("--k", type=click.IntRange(min=1), help="Samples of the K-sample bound (default: the run's K).")
@click.option("--is-samples", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Importance samples for the log p(x) estimate.")
@click.option("--examples", type=click.IntRange(min=1), help="Evaluate only the first N examples.")
@click.option("--batch-size", type=click.IntRange(min=1), default=EVALUATION_BATCH, show_default=True,
              help="Images per batch; the importance samples' stream depends on it.")
@click.option("--checkpoint", "which", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--seed", type=click.IntRange(0, 2 ** 63 - 2),
              help="Seed of the evaluation's draws (default: the run's seed, as the grids evaluate).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@data_dir_option
def evaluate(run, split, k, is_samples, examples, batch_size, which, seed, as_json, data_dir):
    """Bounds and the importance-sampled log-likelihood of a trained run.

    The protocol is the grids': with the defaults, --split test --examples N
    --is-samples S gives the log p(x) a reproduce table reports for N and S."""
    # from the start: a signal while the model and the data load is honoured like one later
    stops = StopRequests().install()
    notes = []
    published = None
    try:
        if is_model_file(run):
            if which != "best":
                raise click.BadParameter("a model file holds one checkpoint, the best", param_hint="--checkpoint")
            published = load_model_file(run)
        config, model, params = load_trained(run, which, notes)
        dataset = prepare_dataset(config, data_dir, say=say_data)
    except (RunDirectoryError, CheckpointError) as err:
        raise click.BadParameter(str(err), param_hint="RUN") from None
    except DataError as err:
        raise click.ClickException(str(err)) from None
    for note in notes:
        click.echo(f"note: {note}", err=True)
    n = min(examples or dataset.num_examples(split), dataset.num_examples(split))
    try:
        corruption = config.corruption(dataset.pixel_mean("train"))
    except ValueError as err:   # a corruption this process has not registered: what to import
        raise click.ClickException(str(err)) from None
    bar = Progress("evaluate", enabled=not as_json)
    if stops():
        click.echo(f"{stops.name}: evaluation stopped before its first example; nothing was written", err=True)
        sys.exit(stops.exit_code)

    class EvaluationStopped(Exception):
        pass

    def progress(done, total):
        if stops():   # polled between batches: no signal ever lands inside a Numba kernel
            raise EvaluationStopped(f"evaluation stopped after {done} of {total} examples; nothing was written")
        bar.update(done, total)

    start = time.perf_counter()
    try:
        with stops:
            results = evaluate_run(model, params, dataset, config, split, n, k=k, is_samples=is_samples, seed=seed,
                                   batch_size=batch_size, corruption=corruption, progress=progress)
        table_bound = split_bound(model, params, dataset, config, split=split, num_examples=n)
    except EvaluationStopped as stop:
        bar.clear()
        click.echo(f"{stops.name}: {stop}", err=True)
        sys.exit(stops.exit_code)
    bar.clear()
    seconds = time.perf_counter() - start
    if not np.isfinite(table_bound) or not all(
            np.isfinite(results[key].mean) for key in ("elbo", "iwae_k", "log_likelihood", "denoising_bound")):
        raise click.ClickException(f"the evaluation of {run} is not finite; the checkpoint's parameters "
                                   "give NaN or infinite bounds")
    recorded = published.evaluation if published is not None else None
    if as_json:
        payload = {"run": str(run), "model": config.model_name, "split": split, "examples": n,
                   "seconds": round(seconds, 2), "table_bound": table_bound, **results_to_dict(results)}
        if published is not None:
            payload["published"] = recorded
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(f"{config.model_name} on {config.dataset}, {split} split, {n} examples ({seconds:.1f} s)")
    table_label = f"training bound ({config.bound.upper()}, K={config.k}), as tables score"
    click.echo(f"  {table_label:44s} {table_bound:.2f}  nats")
    rows = (("ELBO (K=1)", "elbo"), (f"IWAE bound (K={results['k']})", "iwae_k"),
            (f"log p(x), importance sampled (K={is_samples})", "log_likelihood"),
            ("denoising bound (training noise)", "denoising_bound"))
    for label, key in rows:
        click.echo(f"  {label:44s} {results[key]}  nats")
    if recorded is not None:
        click.echo(f"published with the model (its run's evaluation, epoch {recorded['checkpoint_epoch']}): "
                   f"test bound {recorded['test_bound']:.2f} on {recorded['test_examples']} test images, "
                   f"log p(x) {recorded['log_likelihood']:.2f} ± {recorded['log_likelihood_stderr']:.2f} "
                   f"(K={recorded['is_samples']}, first {recorded['log_likelihood_examples']})")
    if published is not None and published.trained_by is not None:
        click.echo(f"trained by {describe(published.trained_by)}")


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The model file to write (.h5).")
def export(run, out):
    """Write a run's model file: its best parameters, configuration, curves, evaluation
    and provenance, without optimizer state. evaluate, sample and reconstruct take it
    wherever they take a run folder."""
    if out.suffix not in (".h5", ".hdf5"):
        raise click.BadParameter(f"{out}: a model file is HDF5; name it .h5", param_hint="--out")
    check_output_file(out, "--out", picture=False)
    check_output_file(card_path(out), "--out", picture=False)
    if is_run_folder(out.resolve().parent):
        raise click.BadParameter(f"{out} is inside the run folder {out.parent}: write the model file outside every "
                                 "run folder", param_hint="--out")
    for path in (out, card_path(out)):   # left by an export that was killed while writing
        remove_orphaned_temporaries(path)
    stops = StopRequests().install()   # SIGTERM and SIGHUP end it in one line too, never half-written
    try:
        model = model_from_run(run)
        if stops():
            click.echo(f"{stops.name}: export stopped before writing; nothing was written", err=True)
            sys.exit(stops.exit_code)
        save_model_file(out, model)
        card = write_model_card(out)
    except (RunDirectoryError, CheckpointError) as err:
        raise click.BadParameter(str(err), param_hint="RUN") from None
    except RunWriteError as err:
        raise click.ClickException(str(err)) from None
    except KeyboardInterrupt:   # a second signal: stop at once; each file is whole or absent
        click.echo(f"{stops.name}: export stopped; {out} and its card are each written whole or not at all",
                   err=True)
        sys.exit(stops.exit_code)
    finally:
        stops.uninstall()
    if stops():
        click.echo(f"{stops.name} arrived while writing: {out} and its card were written whole first", err=True)
        sys.exit(stops.exit_code)
    size = out.stat().st_size / 1e6
    scored = ("test bound {:.2f}".format(model.evaluation["test_bound"]) if model.evaluation
              else "no evaluation (the run was not scored by a grid)")
    click.echo(f"wrote {out} ({size:.1f} MB): {TrainConfig.from_dict(model.config).model_name}, "
               f"epoch {model.epoch}, {scored}")
    click.echo(f"wrote its model card, {card}")
