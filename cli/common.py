"""What the commands share: the data-folder option, option checks, the settings line."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click

from npdvae.data import DATASETS
from npdvae.data.files import ENV_VAR
from npdvae.evaluation.pictures import picture_format
from npdvae.training.config import TrainConfig, UnregisteredCorruptionError, defining_settings
from npdvae.vae.corruption_registry import corruption_names, is_registered


DATASET_NAMES = sorted(DATASETS)
def check_data_dirs(ctx, param, value):
    """A data folder the user named (--data-dir or $NPDVAE_DATA_DIR) must exist: a typo must
    not send the tool to another folder."""
    if value is not None and not value.is_dir():
        raise click.BadParameter(f"{value}: no such folder", ctx=ctx, param=param)
    env = os.environ.get(ENV_VAR)
    if env and not Path(env).is_dir():
        raise click.UsageError(f"{ENV_VAR}={env}: no such folder (unset it or point it at the data)", ctx=ctx)
    return value


data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), callback=check_data_dirs,
    help="Folder with the data files (default: $NPDVAE_DATA_DIR, then the default data directory).")


def say_data(message):
    """Where the data came from, on stderr (stdout may be JSON)."""
    click.echo(f"data: {message}", err=True)


TRAIN_FIELDS = ("dataset", "bound", "noise", "noise_type", "k", "m", "encoder", "encoder_layers", "latent",
                "hidden", "activation", "epochs", "batch_size", "lr", "schedule", "clip_grad_norm", "binarize",
                "seed", "patience", "train_examples", "eval_examples", "kernels", "optimizer", "select_every",
                "select_after", "encoder_gradient", "noise_params")


def config_error(err: ValueError) -> click.ClickException:
    """A configuration's error as the option it names (ConfigError.field); a corruption this
    process has not registered is no bad option but a missing import (exit 1), which the
    command line makes with --import."""
    if isinstance(err, UnregisteredCorruptionError):
        return click.ClickException(f"{err} (on the command line: npdvae --import MODULE or FILE.py ...)")
    field = getattr(err, "field", None)
    hint = "--noise-param" if field == "noise_params" else \
        f"--{field.replace('_', '-')}" if field in TRAIN_FIELDS else None
    return click.BadParameter(str(err), param_hint=hint)


class CorruptionName(click.ParamType):
    """The name of a registered corruption: the built-in four, and those the code that
    ``npdvae --import`` named registered (checked when the option is read, after the imports)."""

    name = "NAME"

    def convert(self, value, param, ctx):
        if is_registered(value):
            return value
        self.fail(f"{value!r} is not a registered corruption (registered: {', '.join(corruption_names())}); "
                  "one of one's own is registered by code that npdvae --import MODULE names", param, ctx)


def noise_params_option(ctx, param, values):
    """``NAME=VALUE`` pairs as a corruption's parameters: each VALUE read as JSON, else as text;
    none given is None (no parameters)."""
    params = {}
    for item in values:
        name, equals, text = item.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(f"{item!r}: give NAME=VALUE", ctx=ctx, param=param)
        if name.strip() in params:
            raise click.BadParameter(f"{name.strip()} is given twice", ctx=ctx, param=param)
        try:
            params[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            params[name.strip()] = text
    return params or None


def settings_line(config: TrainConfig) -> str:
    """Every setting of a run, as the header of ``train`` shows it."""
    shown = defining_settings(config.to_dict())   # a later setting at its default is left out, as from a run's name
    return "  " + "  ".join(f"{k}={v}" for k, v in config.to_dict().items()
                            if v is not None and k != "noise_source" and (k in shown or k == "noise_type"))


def check_path_length(path: Path, option: str):
    """A path the system would refuse for its length (a name past NAME_MAX, the whole past
    PATH_MAX) fails here, naming the option, instead of as ENAMETOOLONG deep in the work."""
    existing = Path(path).absolute()
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    try:
        name_max, path_max = os.pathconf(existing, "PC_NAME_MAX"), os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    for part in Path(path).parts:
        if len(os.fsencode(part)) > name_max:
            raise click.BadParameter(f"the name {part[:24]}... ({len(os.fsencode(part))} bytes) is longer than the "
                                     f"{name_max} bytes a file name may have here", param_hint=option)
    if len(os.fsencode(str(Path(path).absolute()))) >= path_max:
        raise click.BadParameter(f"{str(path)[:40]}...: the path is longer than the {path_max} bytes "
                                 "a path may have here", param_hint=option)


def check_output_file(path: Path, option: str, picture: bool = True):
    """Fail before any work if ``path`` cannot be written: missing folder, no write access,
    a directory in its place, or (for pictures) a suffix that names no format."""
    check_path_length(path, option)
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


def check_writable(run_dir: Path):
    """Fail early, naming --out, if the run directory cannot be written; leave no trace."""
    # room for the longest file name a run writes beside its checkpoints
    check_path_length(Path(run_dir) / f"reconstructions.png.{os.getpid()}.tmp", "--out")
    probe_dir = run_dir
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise click.BadParameter(f"cannot write to {run_dir}: {probe_dir} is not a folder", param_hint="--out")
    try:
        with tempfile.TemporaryFile(dir=probe_dir):
            pass
    except OSError as err:
        raise click.BadParameter(f"cannot write to {run_dir}: {err.strerror}", param_hint="--out") from None
