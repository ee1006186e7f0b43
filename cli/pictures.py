"""``npdvae sample``, ``reconstruct`` and ``plot``: pictures of a trained model and its curves."""

from __future__ import annotations

from pathlib import Path

import click

from npdvae.run_folder.checkpoint import CheckpointError
from npdvae.vae.corruption_registry import make_corruption
from npdvae.data import DataError
from npdvae.data.datasets import SPLITS
from npdvae.evaluation.pictures import MAX_IMAGES, PlotLibraryMissing, write_reconstructions, write_samples
from npdvae.run_folder.runs import RunDirectoryError, load_trained, prepare_dataset, read_metrics, read_run_config
from npdvae.evaluation.history import milestone_table
from npdvae.training.config import ConfigError, TrainConfig
from npdvae.run_folder.model_file import is_model_file, load_model_file
from npdvae.run_folder.run_files import RunWriteError

from .common import check_output_file, data_dir_option, say_data


@click.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option("--n", "num_images", type=click.IntRange(1, MAX_IMAGES), default=64, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("samples.png"), show_default=True,
              help="Picture file: .png, .pdf, .svg or .jpg.")
@click.option("--seed", type=click.IntRange(0, 2 ** 63 - 1), default=0, show_default=True)
def sample(run, num_images, out, seed):
    """A grid of decoder means at z drawn from the prior."""
    check_output_file(out, "--out")
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


@click.command()
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
    check_output_file(out, "--out")
    notes = []
    try:
        config, model, params = load_trained(run, "best", notes)
        for note in notes:
            click.echo(f"note: {note}", err=True)
        dataset = prepare_dataset(config, data_dir, say=say_data)
        level = config.noise if noise is None else noise
        config.corruption()   # registered in this process, or one line saying what to import
        corruption = make_corruption(config.noise_type, level, config.noise_params,
                                     mean_image=dataset.pixel_mean("train"))
        write_reconstructions(out, model, params, dataset, corruption, split, num_images, seed)
    except (RunDirectoryError, CheckpointError) as err:
        raise click.BadParameter(str(err), param_hint="RUN") from None
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--noise") from None
    except (DataError, PlotLibraryMissing, RunWriteError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {out}")


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("curves.png"), show_default=True,
              help="Picture file: .png, .pdf, .svg or .jpg.")
@click.option("--linear", is_flag=True, help="Linear epoch axis (default: log-scaled, as in Figure 1).")
@click.option("--every", type=click.IntRange(min=1),
              help="Also print, as a Markdown table, each run's best validation bound so far at every N-th epoch.")
@click.option("--from-epoch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Draw the curves from this epoch on (the y axis then spans only what is drawn).")
def plot(runs, out, linear, every, from_epoch):
    """Training curves of one or several runs or model files: bound against epoch."""
    from npdvae.evaluation.pictures import plot_training_curves
    check_output_file(out, "--out")
    series = []
    for run in runs:
        try:
            if run.is_file() and not is_model_file(run):
                raise RunDirectoryError(f"{run} is neither a run folder nor a model file")
            if is_model_file(run):
                published = load_model_file(run)
                label, metrics = TrainConfig.from_dict(published.config).model_name, published.history()
            else:
                notes = []
                label = read_run_config(run, notes).model_name
                metrics = read_metrics(run)
                for note in notes:
                    click.echo(f"note: {note}", err=True)
        except (RunDirectoryError, CheckpointError) as err:
            raise click.BadParameter(str(err), param_hint="RUNS") from None
        if not metrics:
            raise click.BadParameter(f"{run} has no finished epoch yet", param_hint="RUNS")
        series.append((label, metrics))
    labels = [label for label, _ in series]
    # two runs of one model (another seed, another folder) would share a legend entry: each gets its file's
    # or folder's name, or its whole path where two names are the same
    names = [run.stem if run.is_file() else run.name for run in runs]
    names = [name if names.count(name) == 1 else str(run) for name, run in zip(names, runs)]
    series = [((f"{label} ({name})" if labels.count(label) > 1 else label), metrics)
              for (label, metrics), name in zip(series, names)]
    last = max(int(metrics[-1]["epoch"]) for _, metrics in series)
    if from_epoch > last:
        raise click.BadParameter(f"{from_epoch}: the runs end at epoch {last}, so nothing would be drawn",
                                 param_hint="--from-epoch")
    if every:
        click.echo(milestone_table(series, every))
    try:
        plot_training_curves(series, out, log_epochs=not linear, from_epoch=from_epoch)
    except (PlotLibraryMissing, RunWriteError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {out}")
