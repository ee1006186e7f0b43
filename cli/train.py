"""``npdvae train``: one line per epoch, a stop that keeps everything, pictures at the end."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from npdvae.vae.bounds import BOUNDS
from npdvae.vae.model import ENCODER_GRADIENTS
from npdvae.training.selection import best_record
from npdvae.run_folder.checkpoint import CheckpointError
from npdvae.vae.corruption_registry import BUILT_IN_CORRUPTIONS
from npdvae.data import DataError
from npdvae.data.datasets import BINARIZATIONS
from npdvae.nn.activations import HIDDEN_ACTIVATIONS
from npdvae.vae.model import ENCODERS
from npdvae.evaluation.pictures import PlotLibraryMissing, write_reconstructions, write_samples
from npdvae.training.config import OPTIMIZERS, SCHEDULES, ConfigError, TrainConfig, settings_differences
from npdvae.run_folder.runs import (RunDirectoryError, default_run_dir, has_checkpoint, open_run, prepare_dataset,
                                  read_run_config, resumed_config)
from npdvae.kernels.cache import numba_cache_is_warm
from npdvae.run_folder.run_files import RunLockedError, RunWriteError
from npdvae.training.loop import NonFiniteBoundError, TrainingInterrupted, warm_up_kernels
from .progress import EpochProgress, Progress
from .stopping import StopRequests
from .common import (DATASET_NAMES, CorruptionName, check_path_length, check_writable, config_error,
                     data_dir_option, noise_params_option, settings_line)


@click.command()
@click.option("--dataset", type=click.Choice(DATASET_NAMES, case_sensitive=False), default="mnist", show_default=True)
@click.option("--bound", type=click.Choice(BOUNDS), default="elbo", show_default=True,
              help="elbo: VAE/DVAE (eq. 11); iwae: IWAE/DIWAE (eq. 12).")
@click.option("--noise", type=float, default=0.0, show_default=True,
              help="Corruption level: salt-and-pepper rate in [0, 1), or Gaussian std on [0, 1] pixels. 0 is the plain VAE/IWAE.")
@click.option("--noise-type", type=CorruptionName(),
              help=f"One of {', '.join(BUILT_IN_CORRUPTIONS)}, or a corruption of one's own that the module "
                   "npdvae --import names registers. Default: salt-pepper-released for binary data (the "
                   "authors' released code: a hit pixel becomes Bernoulli(noise)), gaussian for frey-face. "
                   "salt-pepper: the textbook form (a hit pixel becomes 0 or 1 with equal chance).")
@click.option("--noise-param", "noise_params", multiple=True, metavar="NAME=VALUE", callback=noise_params_option,
              help="A parameter of the corruption beyond its level (a JSON value, or else text), for a "
                   "corruption of one's own; repeatable.")
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
@click.option("--batch-size", type=click.IntRange(min=1), default=TrainConfig.batch_size, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--schedule", type=click.Choice(SCHEDULES), default="constant", show_default=True,
              help="staged: stage i lasts 3^i epochs at lr * 10^(-i/7) (Burda et al.); released: the authors' "
                   "script's, stage k from epoch 3^k - 1 at lr * 10^(-k/c), c = log(epochs // 2) / log 3.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="adam", show_default=True,
              help="adam-released: the authors' script's Adam, whose first moment is the last gradient.")
@click.option("--encoder-gradient", type=click.Choice(ENCODER_GRADIENTS), default="standard", show_default=True,
              help="The encoder's gradient estimator: stl drops log q's score term (Roeder et al.); dreg, for "
                   "--bound iwae, also weights each path term by its normalized weight (Tucker et al.).")
@click.option("--select-every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Keep a best checkpoint only at every N-th epoch and the last (the authors' script: 50).")
@click.option("--select-after", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Keep no best checkpoint before this fraction of the epochs (the authors' script: 0.4).")
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
              help="Run directory (default: runs/<dataset>-<bound>-k<K>-noise<noise>-<every other setting that "
                   "differs from its default>-seed<seed>).")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out (default: the default folder of the options given) "
                   "from its last checkpoint.")
@data_dir_option
@click.pass_context
def train(ctx, out, resume, data_dir, **options):
    """Train a (D)VAE or (D)IWAE; one line per epoch."""
    if out is not None:
        check_path_length(out, "--out")
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
        raise config_error(err) from None
    if out is None:
        out = default_run_dir(config)
    check_writable(out)
    if not resume and has_checkpoint(out):
        raise click.BadParameter(_occupied(out, config), param_hint="--out")

    click.echo(f"{config.model_name} on {config.dataset}"
               + (f"; corruption {config.noise_type}: {config.corruption_description}"
                  if config.corrupted else ""))
    click.echo(settings_line(config))
    click.echo(f"  run directory: {out}")
    # from here to the end of training a signal only asks to stop (see cli/stopping.py); the
    # data is loaded first, so that Ctrl-C during a download stops it at once
    stops = StopRequests()
    try:
        _train_in(config, out, resume, data_dir, stops)
    finally:
        stops.uninstall()


def _occupied(out, config) -> str:
    """Why a new run cannot go into ``out``, which holds a run, and the ways out."""
    try:
        differences = settings_differences(read_run_config(out), config)
    except RunDirectoryError:
        differences = []
    if not differences:
        return (f"{out} already holds this run; nothing was overwritten. Use --resume to continue it, "
                "or choose another --out.")
    return (f"{out} holds a run of other settings ({'; '.join(differences)}); nothing was overwritten. "
            f"Choose another --out for this one, or continue that run with npdvae train --resume --out {out}.")


def _train_in(config, out, resume, data_dir, stops):
    continue_command = f"npdvae train --resume --out {shlex.quote(str(out))}" + (
        f" --data-dir {shlex.quote(str(data_dir))}" if data_dir is not None else "")
    try:
        dataset = prepare_dataset(config, data_dir, progress=Progress.for_download(),
                                  say=lambda message: click.echo(f"  data: {message}"))
        stops.install()
        trainer = open_run(config, out, dataset, resume=resume)
    except (DataError, RunLockedError) as err:
        raise click.ClickException(str(err)) from None
    except RunWriteError as err:
        # the folder may hold what was written before the failure: a resume takes it from there
        way_out = f". Once the cause is fixed, continue with: {continue_command}" if out.is_dir() else ""
        raise click.ClickException(f"{err}{way_out}") from None
    except (CheckpointError, RunDirectoryError) as err:
        raise click.UsageError(str(err)) from None
    except ConfigError as err:
        raise config_error(err) from None
    for note in trainer.notes:
        click.echo(f"  note: {note}")
    if resume and trainer.epoch_state is not None:
        click.echo(f"  resumed in epoch {trainer.epoch + 1} at minibatch {trainer.epoch_state.position}")
    elif resume and trainer.history:
        click.echo(f"  resumed after epoch {trainer.epoch}")
    if resume and trainer.epoch >= config.epochs and trainer.epoch_state is None:
        click.echo(f"already finished at epoch {trainer.epoch}; give a larger --epochs to train further")
        return

    if not numba_cache_is_warm():
        click.echo("  compiling the Numba kernels (the first run of this installation; cached afterwards)")
    warm_up_kernels(trainer)   # the pause comes under its notice, not inside epoch 1's time
    bar = EpochProgress(config.epochs)
    bar.start_epoch(trainer.epoch + 1)
    header = f"{'epoch':>5}  {'train (nats)':>12}  {'valid (nats)':>12}  {'seconds':>8}"
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
        if trainer.epoch == 0 and config.corrupted:   # no step has ever worked: the corruption, more than the rate
            click.echo(f"{out / 'last.h5'} keeps the run as it was {where}. The bound was never finite with "
                       f"this corruption ({config.noise_type}, noise {config.noise:g}); a smaller --noise is the "
                       f"way out: start again with another --out, or try a smaller learning rate first:\n"
                       f"  {continue_command} --lr {config.lr / 10:g}", err=True)
        else:
            click.echo(f"{out / 'last.h5'} keeps the run as it was {where}. Resume with a smaller learning rate:\n"
                       f"  {continue_command} --lr {config.lr / 10:g}", err=True)
        sys.exit(1)
    except RunWriteError as err:
        bar.clear()
        click.echo(f"Error: {err}; the checkpoints written before it are intact. "
                   f"Once the cause is fixed, continue with: {continue_command}", err=True)
        sys.exit(1)
    stops.uninstall()   # training is over; pictures are quick, and an interrupt there ends with exit 130
    best = best_record(trainer.history)
    if best is not None:
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
