"""``npdvae bench``: training and evaluation speed against the machine's GEMM floor."""

from __future__ import annotations

import os
from pathlib import Path

import click

from npdvae.data import DataError
from npdvae.run_folder.run_files import RunWriteError, replace_file
from npdvae.run_folder.runs import prepare_dataset
from npdvae.training.config import TrainConfig

from .common import check_output_file, data_dir_option


@click.command()
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
        check_output_file(json_path, "--json", picture=False)
        probe = json_path.with_name(f".{json_path.name}.{os.getpid()}.probe")
        try:   # before minutes of timing: a folder that takes no file (/proc, a read-only mount) is named now
            probe.open("x").close()
            probe.unlink()
        except OSError as err:
            raise click.BadParameter(f"{json_path}: cannot write in {json_path.parent} ({err.strerror})",
                                     param_hint="--json") from None
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
        try:   # atomically: a full disk leaves no half-written report
            replace_file(json_path, (report.to_json() + "\n").encode())
        except RunWriteError as err:
            raise click.ClickException(f"{err}; the figures are printed above") from None
        click.echo(f"wrote {json_path}")

