"""The ``npdvae`` command line: parses options, calls the library, prints.

Nothing here computes anything the library does not offer as a function;
each command is a few lines of glue around ``npdvae``.
"""

from __future__ import annotations

import json
import os
import shlex
from concurrent.futures import BrokenExecutor
import signal
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from click.core import ParameterSource

from npdvae.vae.bounds import BOUNDS
from npdvae.training.checkpoint import CheckpointError
from npdvae.vae.corruption import NOISE_TYPE_DESCRIPTIONS, NOISE_TYPES, Corruption
from npdvae.data import DATASETS, DataError
from npdvae.data.files import ENV_VAR, describe, get_spec, read_verified
from npdvae.data.download import fetch
from npdvae.data.datasets import BINARIZATIONS, SPLITS
from npdvae.experiments.reproduce import BINARY_NOISE_TYPES, EXPERIMENTS
from npdvae.nn.activations import HIDDEN_ACTIVATIONS
from npdvae.vae.model import ENCODERS
from npdvae.evaluation.evaluate import EVALUATION_BATCH, evaluate_run, results_to_dict
from npdvae.evaluation.pictures import MAX_IMAGES, PlotLibraryMissing, picture_format, write_reconstructions, write_samples
from npdvae.training.config import SCHEDULES, ConfigError, TrainConfig
from npdvae.training.runs import (
    RunDirectoryError, default_run_dir, has_checkpoint, load_trained, open_run, prepare_dataset, read_metrics,
    read_run_config, resumed_config,
)
from npdvae.experiments.cluster import ClusterError
from npdvae.experiments.executor import GridStopped, SharedStorageError
from npdvae.evaluation.history import milestone_table
from npdvae.nn.jit_cache import numba_cache_is_warm
from npdvae.training.model_file import is_model_file, load_model_file, model_from_run, save_model_file
from npdvae.training.run_files import RunLockedError, RunWriteError
from npdvae.training.loop import NonFiniteBoundError, TrainingInterrupted, validation_bound
from .progress import EpochProgress, Progress
from .stopping import StopRequests

DATASET_NAMES = sorted(DATASETS)
def _check_data_dirs(ctx, param, value):
    """A data folder the user named (--data-dir or $NPDVAE_DATA_DIR) must exist: a typo must
    not send the tool to another folder."""
    if value is not None and not value.is_dir():
        raise click.BadParameter(f"{value}: no such folder", ctx=ctx, param=param)
    env = os.environ.get(ENV_VAR)
    if env and not Path(env).is_dir():
        raise click.UsageError(f"{ENV_VAR}={env}: no such folder (unset it or point it at the data)", ctx=ctx)
    return value


data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), callback=_check_data_dirs,
    help="Folder with the data files (default: $NPDVAE_DATA_DIR, then the default data directory).")


def _say_data(message):
    """Where the data came from, on stderr (stdout may be JSON)."""
    click.echo(f"data: {message}", err=True)


class _Commands(click.Group):
    """The command group, ending an interrupt outside the polled loops in one line, exit 130."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            pass
        except SystemError as err:   # a KeyboardInterrupt raised while a Numba kernel returned
            if not isinstance(err.__context__, KeyboardInterrupt):
                raise
        click.echo("\ninterrupted", err=True)
        ctx.exit(130)


def _print_version(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    from npdvae.training.provenance import provenance
    record = provenance()
    git = record["git"]
    commit = f", git {git['commit'][:12]}{' (with local changes)' if git['dirty'] else ''}" if git else ""
    blas = ", ".join(f"{b['internal_api']} {b['version']}" for b in record["blas"]) or "unknown"
    libraries = ", ".join(f"{name} {version}" for name, version in record["libraries"].items())
    click.echo(f"npdvae {record['npdvae']}{commit}\n{libraries}, BLAS {blas}, Python {record['python']}")
    ctx.exit()


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="The version, the git commit when run from a checkout, and the numerical libraries.")
def main():
    """Denoising variational autoencoders (DVAE, DIWAE) with hand-written gradients."""
    # past RLIMIT_FSIZE a write must fail with EFBIG (and be reported), not kill the process
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


# --------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------

TRAIN_FIELDS = ("dataset", "bound", "noise", "noise_type", "k", "m", "encoder", "encoder_layers", "latent",
                "hidden", "activation", "epochs", "batch_size", "lr", "schedule", "clip_grad_norm", "binarize",
                "seed", "patience", "train_examples", "eval_examples", "kernels")


def _config_error(err: ValueError) -> click.BadParameter:
    """A configuration's error as the option it names (ConfigError.field)."""
    field = getattr(err, "field", None)
    hint = f"--{field.replace('_', '-')}" if field in TRAIN_FIELDS else None
    return click.BadParameter(str(err), param_hint=hint)


def settings_line(config: TrainConfig) -> str:
    """Every setting of a run, as the header of ``train`` shows it."""
    return "  " + "  ".join(f"{k}={v}" for k, v in config.to_dict().items() if v is not None)


def _check_output_file(path: Path, option: str, picture: bool = True):
    """Fail before any work if ``path`` cannot be written: missing folder, no write access,
    a directory in its place, or (for pictures) a suffix that names no format."""
    if picture:
        try:
            picture_format(path)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint=option) from None
    folder = path.parent
    if not folder.is_dir():
        raise click.BadParameter(f"{path}: the folder {folder} does not exist", param_hint=option)
    if path.is_dir():
        raise click.BadParameter(f"{path} is a directory", param_hint=option)
    if not os.access(folder, os.W_OK):
        raise click.BadParameter(f"{path}: the folder {folder} is not writable", param_hint=option)


def _check_writable(run_dir: Path):
    """Fail early, naming --out, if the run directory cannot be written; leave no trace."""
    probe_dir = run_dir
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    try:
        with tempfile.TemporaryFile(dir=probe_dir):
            pass
    except OSError as err:
        raise click.BadParameter(f"cannot write to {run_dir}: {err.strerror}", param_hint="--out") from None


@main.command()
@click.option("--dataset", type=click.Choice(DATASET_NAMES, case_sensitive=False), default="mnist", show_default=True)
@click.option("--bound", type=click.Choice(BOUNDS), default="elbo", show_default=True,
              help="elbo: VAE/DVAE (eq. 11); iwae: IWAE/DIWAE (eq. 12).")
@click.option("--noise", type=float, default=0.0, show_default=True,
              help="Corruption level: salt-and-pepper rate in [0, 1), or Gaussian std on [0, 1] pixels. 0 is the plain VAE/IWAE.")
@click.option("--noise-type", type=click.Choice(NOISE_TYPES),
              help="Default: salt-pepper-released for binary data (the authors' released code: a hit pixel "
                   "becomes Bernoulli(noise)), gaussian for frey-face. salt-pepper: the textbook form "
                   "(a hit pixel becomes 0 or 1 with equal chance).")
@click.option("--k", type=click.IntRange(min=1), default=1, show_default=True, help="Samples of z per corrupted copy.")
@click.option("--m", type=click.IntRange(min=1), default=1, show_default=True, help="Corrupted copies per example.")
@click.option("--encoder", type=click.Choice(ENCODERS), default="mlp", show_default=True,
              help="Inference network: an MLP, or a GRU run for five steps (Table 3).")
@click.option("--encoder-layers", type=click.IntRange(1, 2), default=1, show_default=True)
@click.option("--latent", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--hidden", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--activation", type=click.Choice(HIDDEN_ACTIVATIONS),
              help="Default by bound, as in the paper: softplus (elbo), tanh (iwae).")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=EVALUATION_BATCH, show_default=True,
              help="Images per batch; the importance samples' stream depends on it.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--schedule", type=click.Choice(SCHEDULES), default="constant", show_default=True,
              help="staged: stage i lasts 3^i epochs at lr * 10^(-i/7) (Burda et al.).")
@click.option("--clip-grad-norm", type=click.FloatRange(min=0, min_open=True),
              help="Rescale the gradient to at most this global L2 norm.")
@click.option("--binarize", type=click.Choice(BINARIZATIONS), default="dynamic", show_default=True)
@click.option("--seed", type=click.IntRange(0, 2 ** 63 - 1), default=0, show_default=True)
@click.option("--patience", type=click.IntRange(min=1), help="Stop after this many epochs without a better validation bound.")
@click.option("--train-examples", type=click.IntRange(min=1), help="Use only the first N training examples.")
@click.option("--eval-examples", type=click.IntRange(min=1), help="Use only the first N validation/test examples.")
@click.option("--kernels/--reference", default=True, show_default=True,
              help="--reference trains with the plain NumPy references instead of the Numba kernels "
                   "(slower; the same numbers to float32 rounding).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory (default: runs/<dataset>-<bound>-k<K>-noise<noise>-seed<seed>).")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out (default: the default folder of the options given) "
                   "from its last checkpoint.")
@data_dir_option
@click.pass_context
def train(ctx, out, resume, data_dir, **options):
    """Train a (D)VAE or (D)IWAE; one line per epoch."""
    try:
        if resume:
            if out is None:   # the folder a run of these options gets by default
                out = default_run_dir(TrainConfig(**options))
            config_notes = []
            given = {k: v for k, v in options.items() if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE}
            try:
                config = resumed_config(out, given, config_notes)
            except RunDirectoryError as err:
                raise click.BadParameter(str(err), param_hint="--out") from None
            for note in config_notes:
                click.echo(f"note: {note}")
        else:
            config = TrainConfig(**options)
    except ValueError as err:
        raise _config_error(err) from None
    if out is None:
        out = default_run_dir(config)
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} is a file, not a run directory", param_hint="--out")
    if not resume and has_checkpoint(out):
        raise click.BadParameter(f"{out} already holds a run; nothing was overwritten. "
                                 "Use --resume to continue it, or choose another --out.", param_hint="--out")
    _check_writable(out)

    click.echo(f"{config.model_name} on {config.dataset}"
               + (f"; corruption {config.noise_type}: {NOISE_TYPE_DESCRIPTIONS[config.noise_type]}"
                  if config.noise > 0 else ""))
    click.echo(settings_line(config))
    click.echo(f"  run directory: {out}")
    if not numba_cache_is_warm():
        click.echo("  compiling the Numba kernels (the first run of this installation; cached afterwards)")
    # from here to the end of training a signal only asks to stop (see cli/stopping.py); the
    # data is loaded first, so that Ctrl-C during a download stops it at once
    stops = StopRequests()
    try:
        _train_in(config, out, resume, data_dir, stops)
    finally:
        stops.uninstall()


def _train_in(config, out, resume, data_dir, stops):
    try:
        dataset = prepare_dataset(config, data_dir, progress=Progress.for_download(),
                                  say=lambda message: click.echo(f"  data: {message}"))
        stops.install()
        trainer = open_run(config, out, dataset, resume=resume)
    except (DataError, RunLockedError, RunWriteError) as err:
        raise click.ClickException(str(err)) from None
    except (CheckpointError, RunDirectoryError) as err:
        raise click.UsageError(str(err)) from None
    except ConfigError as err:
        raise _config_error(err) from None
    for note in trainer.notes:
        click.echo(f"  note: {note}")
    if resume and trainer.epoch_state is not None:
        click.echo(f"  resumed in epoch {trainer.epoch + 1} at minibatch {trainer.epoch_state.position}")
    elif resume and trainer.history:
        click.echo(f"  resumed after epoch {trainer.epoch}")
    continue_command = f"npdvae train --resume --out {shlex.quote(str(out))}"
    if resume and trainer.epoch >= config.epochs and trainer.epoch_state is None:
        click.echo(f"already finished at epoch {trainer.epoch}; give a larger --epochs to train further")
        return

    bar = EpochProgress(config.epochs)
    bar.start_epoch(trainer.epoch + 1)
    header = f"{'epoch':>5}  {'train bound':>12}  {'valid bound':>12}  {'seconds':>8}"
    click.echo(header)

    def on_epoch(record):
        bar.clear()
        bar.start_epoch(record.epoch + 1)
        mark = "  *" if record.best else ""
        click.echo(f"{record.epoch:5d}  {record.train_bound:12.3f}  {record.valid_bound:12.3f}  "
                   f"{record.seconds:8.1f}{mark}")

    trainer.stop_requested = stops
    try:
        trainer.run(progress=bar.update, on_epoch=on_epoch)
    except TrainingInterrupted as stop:
        bar.clear()
        click.echo(f"{stops.name}: {stop}, saved in {out / 'last.h5'}; continue with: {continue_command}", err=True)
        sys.exit(stops.exit_code)
    except NonFiniteBoundError as err:
        bar.clear()
        where = (f"after epoch {trainer.epoch}" if trainer.epoch else "before the first epoch (the initial parameters)")
        click.echo(f"Error: {err}.", err=True)
        click.echo(f"{out / 'last.h5'} keeps the run as it was {where}. Resume with a smaller learning rate:\n"
                   f"  {continue_command} --lr {config.lr / 10:g}", err=True)
        sys.exit(1)
    except RunWriteError as err:
        bar.clear()
        click.echo(f"Error: {err}; the checkpoints written before it are intact. "
                   f"Once the cause is fixed, continue with: {continue_command}", err=True)
        sys.exit(1)
    stops.uninstall()   # training is over; pictures are quick, and an interrupt there ends with exit 130
    history = trainer.history
    if history:
        best = max(history, key=lambda h: h["valid_bound"])
        click.echo(f"best validation bound {best['valid_bound']:.3f} at epoch {best['epoch']}")
    try:
        samples = write_samples(out / "samples.png", trainer.model, trainer.params, dataset.image_shape,
                                seed=config.seed)
        recon = write_reconstructions(out / "reconstructions.png", trainer.model, trainer.params, dataset,
                                      trainer.corruption, split="valid", seed=config.seed)
        click.echo(f"pictures: {samples}, {recon}")
    except PlotLibraryMissing as err:
        click.echo(f"note: no pictures written ({err})")
    except RunWriteError as err:
        raise click.ClickException(f"{err}; the run itself is complete and saved") from None


# --------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------


@main.command()
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
        dataset = prepare_dataset(config, data_dir, say=_say_data)
    except (RunDirectoryError, CheckpointError) as err:
        raise click.BadParameter(str(err), param_hint="RUN") from None
    except DataError as err:
        raise click.ClickException(str(err)) from None
    for note in notes:
        click.echo(f"note: {note}", err=True)
    n = min(examples or dataset.num_examples(split), dataset.num_examples(split))
    corruption = Corruption(config.noise_type, config.noise, dataset.pixel_mean("train"))
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
        table_bound = validation_bound(model, params, dataset, config, split=split, num_examples=n)
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


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The model file to write (.h5).")
def export(run, out):
    """Write a run's model file: its best parameters, configuration, curves, evaluation
    and provenance, without optimizer state. evaluate, sample and reconstruct take it
    wherever they take a run folder."""
    if out.suffix not in (".h5", ".hdf5"):
        raise click.BadParameter(f"{out}: a model file is HDF5; name it .h5", param_hint="--out")
    _check_output_file(out, "--out", picture=False)
    if (run / "best.h5").resolve() == out.resolve() or (run / "last.h5").resolve() == out.resolve():
        raise click.BadParameter(f"{out} is one of the run's checkpoints", param_hint="--out")
    try:
        model = model_from_run(run)
        save_model_file(out, model)
    except (RunDirectoryError, CheckpointError) as err:
        raise click.BadParameter(str(err), param_hint="RUN") from None
    except RunWriteError as err:
        raise click.ClickException(str(err)) from None
    size = out.stat().st_size / 1e6
    scored = ("test bound {:.2f}".format(model.evaluation["test_bound"]) if model.evaluation
              else "no evaluation (the run was not scored by a grid)")
    click.echo(f"wrote {out} ({size:.1f} MB): {TrainConfig.from_dict(model.config).model_name}, "
               f"epoch {model.epoch}, {scored}")


# --------------------------------------------------------------------------
# pictures
# --------------------------------------------------------------------------


@main.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option("--n", "num_images", type=click.IntRange(1, MAX_IMAGES), default=64, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("samples.png"), show_default=True,
              help="Picture file: .png, .pdf, .svg or .jpg.")
@click.option("--seed", type=click.IntRange(0, 2 ** 63 - 1), default=0, show_default=True)
def sample(run, num_images, out, seed):
    """A grid of decoder means at z drawn from the prior."""
    _check_output_file(out, "--out")
    notes = []
    try:
        config, model, params = load_trained(run, "best", notes)
        for note in notes:
            click.echo(f"note: {note}", err=True)
        image_shape = (28, 20) if config.dataset == "frey-face" else (28, 28)
        write_samples(out, model, params, image_shape, num_images, seed)
    except (RunDirectoryError, CheckpointError) as err:
        raise click.BadParameter(str(err), param_hint="RUN") from None
    except (PlotLibraryMissing, RunWriteError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {out}")


@main.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option("--n", "num_images", type=click.IntRange(1, MAX_IMAGES // 3), default=10, show_default=True)
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option("--noise", type=float, help="Corruption level (default: the run's training noise).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("reconstructions.png"),
              show_default=True, help="Picture file: .png, .pdf, .svg or .jpg.")
@click.option("--seed", type=click.IntRange(0, 2 ** 63 - 1), default=0, show_default=True)
@data_dir_option
def reconstruct(run, num_images, split, noise, out, seed, data_dir):
    """Rows: clean, corrupted, reconstructed from the corrupted image."""
    _check_output_file(out, "--out")
    notes = []
    try:
        config, model, params = load_trained(run, "best", notes)
        for note in notes:
            click.echo(f"note: {note}", err=True)
        dataset = prepare_dataset(config, data_dir, say=_say_data)
        level = config.noise if noise is None else noise
        corruption = Corruption(config.noise_type, level, dataset.pixel_mean("train"))
        write_reconstructions(out, model, params, dataset, corruption, split, num_images, seed)
    except (RunDirectoryError, CheckpointError) as err:
        raise click.BadParameter(str(err), param_hint="RUN") from None
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--noise") from None
    except (DataError, PlotLibraryMissing, RunWriteError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {out}")


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("curves.png"), show_default=True,
              help="Picture file: .png, .pdf, .svg or .jpg.")
@click.option("--linear", is_flag=True, help="Linear epoch axis (default: log-scaled, as in Figure 1).")
@click.option("--every", type=click.IntRange(min=1),
              help="Also print, as a Markdown table, each run's best validation bound so far at every N-th epoch.")
@click.option("--from-epoch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Draw the curves from this epoch on (the y axis then spans only what is drawn).")
def plot(runs, out, linear, every, from_epoch):
    """Training curves of one or several runs: bound against epoch."""
    from npdvae.evaluation.pictures import plot_training_curves
    _check_output_file(out, "--out")
    series = []
    for run in runs:
        try:
            notes = []
            label = read_run_config(run, notes).model_name
            metrics = read_metrics(run)
            for note in notes:
                click.echo(f"note: {note}", err=True)
        except RunDirectoryError as err:
            raise click.BadParameter(str(err), param_hint="RUNS") from None
        if not metrics:
            raise click.BadParameter(f"{run} has no finished epoch yet", param_hint="RUNS")
        series.append((label, metrics))
    if every:
        click.echo(milestone_table([(f"{label} ({run.name})", metrics) for (label, metrics), run in zip(series, runs)],
                                   every))
    try:
        plot_training_curves(series, out, log_epochs=not linear, from_epoch=from_epoch)
    except (PlotLibraryMissing, RunWriteError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {out}")


# --------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------


@main.group()
def datasets():
    """List, fetch and verify the data sets."""


@datasets.command("list")
@click.option("--verify", is_flag=True, help="Also check each file's SHA-256 (reads every file).")
@data_dir_option
def datasets_list(verify, data_dir):
    """What is known, where it is, and (with --verify) whether it is intact."""
    for name in DATASET_NAMES:
        click.echo(name)
        for row in describe(get_spec(name), data_dir, verify=verify):
            status = "missing" if row["path"] is None else row["path"]
            if row["verified"] is not None:
                status += "  [verified]" if row["verified"] else f"  [BAD: {row['problem']}]"
            click.echo(f"  {row['file']:28s} {status}")


@datasets.command("fetch")
@click.argument("name", type=click.Choice(DATASET_NAMES, case_sensitive=False))
@data_dir_option
def datasets_fetch(name, data_dir):
    """Download (or find) and verify a data set."""
    spec = get_spec(name)
    try:
        paths = fetch(spec, data_dir=data_dir, progress=Progress.for_download(), say=_say_data)
        for file in spec.files:
            read_verified(paths[file.filename], file)
            click.echo(f"  {file.filename:28s} {paths[file.filename]}  [verified]")
    except DataError as err:
        raise click.ClickException(str(err)) from None


@datasets.command("verify")
@click.argument("name", type=click.Choice(DATASET_NAMES, case_sensitive=False), required=False)
@data_dir_option
def datasets_verify(name, data_dir):
    """Check the SHA-256 of every file found; exit 1 if any is bad or missing."""
    bad = 0
    for dataset_name in ([name] if name else DATASET_NAMES):
        for row in describe(get_spec(dataset_name), data_dir, verify=True):
            if row["path"] is None:
                # missing is an error only for a data set asked for by name
                state, bad = "missing", bad + (1 if name else 0)
            elif row["verified"]:
                state = "ok"
            else:
                state, bad = f"BAD ({row['problem']})", bad + 1
            click.echo(f"{dataset_name:14s} {row['file']:28s} {state}")
    if bad:
        raise click.ClickException(f"{bad} file(s) missing or bad")


# --------------------------------------------------------------------------
# reproduce
# --------------------------------------------------------------------------


class _LearningRates(click.ParamType):
    """One learning rate or several, separated by commas: a list of finite numbers > 0."""

    name = "LR[,LR...]"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        rates = []
        for part in str(value).split(","):
            try:
                rate = float(part)
            except ValueError:
                self.fail(f"{part.strip()!r} is not a number", param, ctx)
            if not (rate > 0 and np.isfinite(rate)):
                self.fail(f"{part.strip()}: a learning rate must be a finite number > 0", param, ctx)
            rates.append(rate)
        if len(set(rates)) != len(rates):
            self.fail(f"{value}: the rates must differ", param, ctx)
        return rates


class _ClipNorm(click.ParamType):
    """A finite number > 0, or ``none`` for no clipping."""

    name = "NORM|none"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, float):
            return value
        if str(value).strip().lower() == "none":
            return "none"
        try:
            norm = float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'none'", param, ctx)
        if not (norm > 0 and np.isfinite(norm)):
            self.fail(f"{value}: a clipping norm must be a finite number > 0 (or 'none')", param, ctx)
        return norm


def _count(number: int, word: str) -> str:
    return f"{number} {word}" + ("" if number == 1 else "s")


def _column_text(column):
    return f"{column:g}%" if isinstance(column, (int, float)) else str(column)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _parse_rows(values):
    rows = set()
    for value in values:
        name, _, layers = value.rpartition("/")
        if not name or not layers.isdigit():
            raise click.BadParameter(f"{value!r}: expected MODEL/LAYERS, e.g. 'DIWAE (K=5)/1'", param_hint="--row")
        rows.add((name, int(layers)))
    return rows or None


@main.command()
@click.argument("experiment", type=click.Choice(EXPERIMENTS))
@click.option("--epochs", type=click.IntRange(min=1),
              help="Epochs per run. Default: 3280 (the paper's budget) for the MNIST experiments, 100 for table2.")
@click.option("--seeds", type=click.IntRange(min=1), default=2, show_default=True,
              help="Seeds 0 to N-1 for every cell.")
@click.option("--seed", "only_seeds", type=click.IntRange(0, 2 ** 63 - 1), multiple=True,
              help="Only this seed (repeatable), instead of --seeds: a later grid over the same --out "
                   "with --seeds N counts it with the others.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs in parallel, one core each.")
@click.option("--row", "rows", multiple=True, help="Only this row, as MODEL/LAYERS (repeatable), e.g. 'DVAE (K=1)/1'.")
@click.option("--is-samples", type=click.IntRange(min=1), default=5000, show_default=True)
@click.option("--is-examples", type=click.IntRange(min=1), help="Test images for log p(x) (default: all).")
@click.option("--train-examples", type=click.IntRange(min=1), help="Tiny budgets: first N training examples.")
@click.option("--eval-examples", type=click.IntRange(min=1), help="Tiny budgets: first N validation/test examples.")
@click.option("--column", "columns", multiple=True,
              help="Only this column, as the table labels it (repeatable), e.g. '5%' or '0' for Table 1.")
@click.option("--noise-type", type=click.Choice(BINARY_NOISE_TYPES + ("gaussian",)),
              help="Salt-and-pepper form of the MNIST experiments. Default: salt-pepper-released, the authors' "
                   "released code's (a hit pixel becomes Bernoulli(noise)); salt-pepper: the textbook one. "
                   "Table 2 is always gaussian.")
@click.option("--schedule", type=click.Choice(SCHEDULES),
              help="staged: stage i lasts 3^i epochs at lr * 10^(-i/7), as the authors' code; constant: lr "
                   "throughout. Default: staged for the MNIST experiments, constant for table2.")
@click.option("--clip-grad-norm", type=_ClipNorm(),
              help="Rescale every gradient to at most this global L2 norm, or 'none'. Default: 5 (the authors' "
                   "code) for the MNIST experiments, none for table2.")
@click.option("--binarize", type=click.Choice(BINARIZATIONS),
              help="MNIST training-set binarization for every run (default: static; augmentation sets its own).")
@click.option("--lr", "lrs", type=_LearningRates(), default="1e-3", show_default=True,
              help="A learning rate, or several separated by commas (1e-3,3e-4,1e-4): then each cell trains "
                   "once per rate and seed, and the table reports the rate with the best mean validation bound.")
@click.option("--scheduler", metavar="tcp://HOST:PORT",
              help="Run each run of the grid as one task on this Dask cluster (pip install -e '.[cluster]'); "
                   "--out must be on storage every worker sees.")
@click.option("--threads-per-task", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --scheduler: BLAS threads each task may use.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Default: runs/reproduce/EXPERIMENT (never the committed results/ folder).")
@data_dir_option
def reproduce(experiment, epochs, seeds, only_seeds, jobs, rows, columns, noise_type, schedule, clip_grad_norm, binarize, lrs,
              scheduler, threads_per_task, is_samples, is_examples, train_examples, eval_examples, out, data_dir):
    """Run an experiment of section 4 (resumable) and write its tables.

    \b
    EXPERIMENT is one of:
      table1        MNIST, DVAE/DIWAE rows x salt-and-pepper 0, 5, 10, 15%
      table2        Frey Face, Gaussian noise 0, 2.5, 5, 7.5% (std on [0, 1] pixels)
      table3        MNIST with the GRU inference network, rows x 0, 5, 10, 15%
      figure1       MNIST at 5%: M = 1, 5, 10 corrupted copies, and the curves
      augmentation  MNIST: dynamic binarization (augmentation) against 5% noise
      mean-image    MNIST: global rates against per-pixel mean-image rates, 5% and 10%

    The MNIST experiments run the authors' released protocol unless options say
    otherwise: 3280 epochs, the staged schedule, gradients clipped at 5, static
    binarization (augmentation sets its own). table2 runs 100 epochs at a constant
    rate. --epochs and --train-examples make quick trials.

    Each run's folder under OUT/runs names its cell, its protocol and its seed;
    a folder trained with another protocol is never counted in the table."""
    from npdvae.experiments.reproduce import build_experiment, column_labels, grid_protocol, plan, run_grid, write_outputs
    selected = _parse_rows(rows)
    labels = column_labels(experiment)
    wanted = None
    if columns:
        wanted = {c if c in labels else f"{c}%" for c in columns}
        unknown = [c for c in columns if c not in labels and f"{c}%" not in labels]
        if unknown:
            raise click.BadParameter(f"{unknown[0]!r} is not a column of {experiment}; its columns: "
                                     + ", ".join(labels), param_hint="--column")
    try:
        grid = build_experiment(experiment, selected, noise_type, wanted)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--noise-type") from None
    if not grid.cells:
        valid = sorted({f"{cell.row}/{cell.layers}" for cell in build_experiment(experiment).cells})
        raise click.BadParameter(f"no row of {experiment} matches {', '.join(rows)}; its rows: "
                                 + ", ".join(repr(v) for v in valid), param_hint="--row")
    asked = {k: v for k, v in (("epochs", epochs), ("train_examples", train_examples),
                               ("eval_examples", eval_examples), ("binarize", binarize), ("schedule", schedule),
                               ("clip_grad_norm", clip_grad_norm)) if v is not None}
    if asked.get("clip_grad_norm") == "none":
        asked["clip_grad_norm"] = None
    epochs, overrides = grid_protocol(experiment, **asked)
    out = out or Path("runs") / "reproduce" / experiment
    if only_seeds:
        if click.get_current_context().get_parameter_source("seeds") != ParameterSource.DEFAULT:
            raise click.UsageError("give --seeds N or --seed S (repeatable), not both")
        twice = sorted({s for s in only_seeds if only_seeds.count(s) > 1})
        if twice:
            raise click.BadParameter(f"seed {twice[0]} is given twice", param_hint="--seed")
        seeds = sorted(only_seeds)
    try:
        specs = plan(grid, out, epochs, seeds, overrides, lrs=lrs)
    except ValueError as err:
        raise _config_error(err) from None
    rates = f" x {len(lrs)} learning rates" if len(lrs) > 1 else ""
    where = f"on the Dask cluster at {scheduler}" if scheduler else f"{jobs} at a time"
    click.echo(f"{grid.title}: {_count(len(specs), 'run')} ({_count(len(grid.cells), 'cell')}{rates} x "
               f"{_count(len(seeds) if only_seeds else seeds, 'seed')}), {_count(epochs, 'epoch')} each, {where}, in {out}")
    started = time.perf_counter()
    finished = [0]

    def on_done(spec, result):
        finished[0] += 1
        elapsed = time.perf_counter() - started
        left = elapsed / finished[0] * (len(specs) - finished[0])
        seconds = sum(b - a for a, b in result.get("intervals", [])[-1:])
        click.echo(f"[{finished[0]}/{len(specs)}] {spec.cell.row}, {spec.cell.layers} layer"
                   f"{'s' if spec.cell.layers > 1 else ''}, {_column_text(spec.cell.column)}, seed {spec.seed}, "
                   f"lr {spec.config['lr']:g}: test bound {result['test_bound']:.2f}, "
                   f"log p(x) {result['log_likelihood']:.2f}, {seconds:.0f} s"
                   + (f"; about {_duration(left)} left" if finished[0] < len(specs) else ""))

    try:
        results = run_grid(specs, jobs, data_dir, is_samples, is_examples, on_done, scheduler=scheduler,
                           threads_per_task=threads_per_task)
    except GridStopped as stop:
        click.echo(f"{stop}; each run keeps its checkpoint. Rerun the same command to continue.", err=True)
        sys.exit(130)
    except BrokenExecutor as err:
        raise click.ClickException(f"a process of the grid died ({err}); every run keeps its last checkpoint: "
                                   "rerun the same command to continue") from None
    except (DataError, RunDirectoryError, CheckpointError, ClusterError, SharedStorageError, RunLockedError,
            RunWriteError) as err:
        raise click.ClickException(str(err)) from None
    write_outputs(grid, specs, results, out)
    click.echo(f"wrote {out / 'table.md'} and {out / 'table.csv'}"
               + (f" and {out / 'figure1.png'}" if experiment == "figure1" else ""))


# --------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------


@main.command()
@click.option("--epochs", type=click.IntRange(min=1), default=3, show_default=True,
              help="Timed epochs per configuration (after one warm-up epoch); the median is reported.")
@click.option("--config", "configs", multiple=True, help="Only these configurations (repeatable); default: all.")
@click.option("--train-examples", type=click.IntRange(min=100), help="Epochs of N examples instead of 50,000.")
@click.option("--eval-examples", type=click.IntRange(min=0), default=200, show_default=True,
              help="Test images for the K=5000 evaluation timing (0 skips it).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the figures as JSON to this file.")
@data_dir_option
def bench(epochs, configs, train_examples, eval_examples, json_path, data_dir):
    """Training and evaluation speed against this machine's GEMM floor."""
    from npdvae.experiments.bench import CONFIGS, benchmark, format_report
    if json_path:
        _check_output_file(json_path, "--json", picture=False)
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise click.BadParameter(f"unknown configuration {unknown[0]!r}; known: {', '.join(CONFIGS)}",
                                 param_hint="--config")
    try:
        dataset = prepare_dataset(TrainConfig(dataset="mnist", train_examples=train_examples), data_dir)
    except DataError as err:
        raise click.ClickException(str(err)) from None
    report = benchmark(dataset, configs or None, epochs, eval_examples,
                       progress=lambda message: click.echo(f"... {message}", err=True))
    click.echo(format_report(report))
    if json_path:
        json_path.write_text(report.to_json() + "\n")
        click.echo(f"wrote {json_path}")


if __name__ == "__main__":
    main()
