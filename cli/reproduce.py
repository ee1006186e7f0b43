"""``npdvae reproduce``: an experiment of section 4 as a grid of runs, and its tables."""

from __future__ import annotations

from concurrent.futures import BrokenExecutor
from contextlib import contextmanager
import os
import signal
import sys
import time
from pathlib import Path

import click
import numpy as np
from click.core import ParameterSource

from npdvae.run_folder.checkpoint import CheckpointError
from npdvae.data import DataError
from npdvae.data.datasets import BINARIZATIONS
from npdvae.experiments.time_left import TimeLeft
from npdvae.experiments.grids import BINARY_NOISE_TYPES, EXPERIMENTS
from npdvae.training.config import OPTIMIZERS, SCHEDULES
from npdvae.run_folder.runs import RunDirectoryError
from npdvae.experiments.cluster import ClusterError, scheduler_address_problem
from npdvae.experiments.executor import GridStopped, SharedStorageError
from npdvae.run_folder.run_files import RunLockedError, RunWriteError

from .common import check_path_length, check_writable, config_error, data_dir_option


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


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _time_left_text(left: float | None, more: bool) -> str:
    if left is None or not more:
        return ""
    if left < 1:   # the runs left are under way and, at the mean duration, due
        return "; the runs still going should end about now"
    return f"; about {_duration(left)} left"


@contextmanager
def _termination_as_interrupt():
    """SIGTERM and SIGHUP (a closed terminal) stop the driver as Ctrl-C does: the running
    tasks stop at a minibatch with a checkpoint. Yields the list of signals received."""
    received = []

    def interrupt(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _parse_rows(values):
    rows = set()
    for value in values:
        name, _, layers = value.rpartition("/")
        if not name or not layers.isdigit():
            raise click.BadParameter(f"{value!r}: expected MODEL/LAYERS, e.g. 'DIWAE (K=5)/1'", param_hint="--row")
        rows.add((name, int(layers)))
    return rows or None


def _scheduler(address):
    """A --scheduler address Dask can parse (it is asked who it is later, with a deadline)."""
    problem = scheduler_address_problem(address) if address else None
    if problem:
        raise click.BadParameter(f"{address}: {problem}", param_hint="--scheduler")
    return address


@click.command()
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
              help="staged: stage i lasts 3^i epochs at lr * 10^(-i/7) (Burda et al.); released: the authors' "
                   "script's, stage k from epoch 3^k - 1 at lr * 10^(-k/c), c = log(epochs // 2) / log 3; "
                   "constant: lr throughout. Default: staged for the MNIST experiments, constant for table2.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS),
              help="adam-released: the authors' script's Adam, whose first moment is the last gradient. "
                   "Default: adam.")
@click.option("--encoder-gradient", type=click.Choice(("standard", "stl", "dreg")),
              help="The encoder's gradient estimator of every run: stl (Roeder et al.) or dreg (Tucker et al., "
                   "for the importance-weighted rows). Default: standard.")
@click.option("--select-every", type=click.IntRange(min=1),
              help="Keep a best checkpoint only at every N-th epoch and the last (the authors' script: 50). Default: 1.")
@click.option("--select-after", type=click.FloatRange(0, 1, max_open=True),
              help="Keep no best checkpoint before this fraction of the epochs (the authors' script: 0.4). "
                   "Default: 0.")
@click.option("--clip-grad-norm", type=_ClipNorm(),
              help="Rescale every gradient to at most this global L2 norm, or 'none'. Default: 5 (the authors' "
                   "code) for the MNIST experiments, none for table2.")
@click.option("--binarize", type=click.Choice(BINARIZATIONS),
              help="MNIST training-set binarization for every run (default: static; augmentation sets its own).")
@click.option("--lr", "lrs", type=_LearningRates(), default="1e-3", show_default=True,
              help="A learning rate, or several separated by commas (1e-3,3e-4,1e-4): then each cell trains "
                   "once per rate and seed, and the table reports the rate with the best mean validation bound.")
@click.option("--scheduler", metavar="tcp://HOST:PORT", callback=lambda ctx, param, value: _scheduler(value),
              help="Run each run of the grid as one task on this Dask cluster (pip install -e '.[cluster]'); "
                   "--out must be on storage every worker sees.")
@click.option("--threads-per-task", type=click.IntRange(min=1), default=1, show_default=True,
              help="BLAS threads each run may use, with --jobs and --scheduler alike (a run trains to the "
                   "same bits whichever executor runs it with the same value).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Default: runs/reproduce/EXPERIMENT (never the committed results/ folder).")
@data_dir_option
def reproduce(experiment, epochs, seeds, only_seeds, jobs, rows, columns, noise_type, schedule, optimizer,
              encoder_gradient, select_every,
              select_after, clip_grad_norm, binarize, lrs,
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
    from npdvae.experiments.grids import (build_experiment, column_label, column_labels, grid_protocol, plan,
                                         usual_protocol)
    from npdvae.experiments.reproduce import run_grid
    from npdvae.experiments.tables import plural, table_name, write_outputs
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
    valid = sorted({f"{cell.row}/{cell.layers}" for cell in build_experiment(experiment).cells})
    unknown_rows = [f"{name}/{layers}" for name, layers in sorted(selected or ()) if f"{name}/{layers}" not in valid]
    if unknown_rows or not grid.cells:
        raise click.BadParameter(f"{', '.join(map(repr, unknown_rows or rows))} is not a row of {experiment}; "
                                 "its rows: " + ", ".join(repr(v) for v in valid), param_hint="--row")
    asked = {k: v for k, v in (("epochs", epochs), ("train_examples", train_examples),
                               ("eval_examples", eval_examples), ("binarize", binarize), ("schedule", schedule),
                               ("clip_grad_norm", clip_grad_norm), ("optimizer", optimizer),
                               ("encoder_gradient", encoder_gradient),
                               ("select_every", select_every), ("select_after", select_after)) if v is not None}
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
        if getattr(err, "field", None) == "batch_size":   # a grid's minibatch is the paper's: --train-examples made it too small
            raise click.BadParameter(str(err), param_hint="--train-examples") from None
        raise config_error(err) from None
    for spec in specs:   # every run folder, and the longest file name a run writes in it
        check_path_length(Path(spec.run_dir) / f"metrics.jsonl.{os.getpid()}.tmp", "--out")
    check_writable(out)   # before the header: an --out that cannot be written is the one line said
    rates = f" x {len(lrs)} learning rates" if len(lrs) > 1 else ""
    where = f"on the Dask cluster at {scheduler}" if scheduler else f"{jobs} at a time"
    click.echo(f"{grid.title}: {plural(len(specs), 'run')} ({plural(len(grid.cells), 'cell')}{rates} x "
               f"{plural(len(seeds) if only_seeds else seeds, 'seed')}), {plural(epochs, 'epoch')} each, {where}, in {out}")
    finished = [0]
    # a cluster's slots are its own, unknown here: the estimate is made for local processes only
    time_left = None if scheduler else TimeLeft(len(specs), jobs, time.perf_counter())

    def on_done(spec, result):
        finished[0] += 1
        if time_left is not None:
            time_left.finished(time.perf_counter(), trained=not result.get("done_before"))
        where = (f"[{finished[0]}/{len(specs)}] {spec.cell.row}, {spec.cell.layers} layer"
                 f"{'s' if spec.cell.layers > 1 else ''}, {column_label(spec.cell.column)}, seed {spec.seed}, "
                 f"lr {spec.config['lr']:g}")
        # in the table's sign: MNIST's tables print -bound (lower is better)
        bound = (f"test -bound {-result['test_bound']:.2f}" if grid.negate
                 else f"test bound {result['test_bound']:.2f}")
        figures = f"{bound}, log p(x) {result['log_likelihood']:.2f}"
        if result.get("done_before"):
            click.echo(f"{where}: done before ({figures})")
        else:
            left = time_left.seconds_left(time.perf_counter()) if time_left is not None else None
            seconds = sum(b - a for a, b in result.get("intervals", [])[-1:])
            click.echo(f"{where}: {figures}, {seconds:.0f} s" + _time_left_text(left, finished[0] < len(specs)))
        for note in result.get("notes", []):
            click.echo(f"  note: {note}")

    try:
        with _termination_as_interrupt() as received:
            results = run_grid(specs, jobs, data_dir, is_samples, is_examples, on_done, scheduler=scheduler,
                               threads_per_task=threads_per_task)
    except GridStopped as stop:
        signum = received[0] if received else signal.SIGINT
        click.echo(f"{signal.Signals(signum).name}: {stop}; each run keeps its checkpoint. "
                   "Rerun the same command to continue.", err=True)
        sys.exit(128 + signum)
    except BrokenExecutor as err:
        raise click.ClickException(f"a process of the grid died ({err}); every run keeps its last checkpoint: "
                                   "rerun the same command to continue") from None
    except (DataError, RunDirectoryError, CheckpointError, ClusterError, SharedStorageError, RunLockedError,
            RunWriteError) as err:
        raise click.ClickException(str(err)) from None
    # a grid restricted by --row, --column or --seed writes its own table, never over the whole one
    every = build_experiment(experiment)
    all_rows = {(cell.row, cell.layers) for cell in every.cells}
    named = {**overrides, "noise_type": noise_type or usual_protocol(experiment)["noise_type"],
             "lr": lrs[0] if len(lrs) == 1 else list(lrs)}
    name = table_name(selected if selected and selected != all_rows else None,
                      wanted if wanted and wanted != set(labels) else None, only_seeds, named,
                      usual_protocol(experiment))
    try:
        write_outputs(grid, specs, results, out, name)
    except RunWriteError as err:
        raise click.ClickException(f"{err}; every run is finished and kept: rerun the same command to write "
                                   "the tables") from None
    click.echo(f"wrote {out / (name + '.md')} and {out / (name + '.csv')}"
               + (f" and {out / (name.replace('table', 'figure1', 1) + '.png')}" if experiment == "figure1" else ""))
