"""``npdvae datasets list | fetch | verify``."""

from __future__ import annotations

from pathlib import Path

import click

from npdvae.data import DataError
from npdvae.data.files import describe, get_spec, read_verified
from npdvae.data.download import fetch, install_from_files
from .progress import Progress
from .common import DATASET_NAMES, data_dir_option, say_data


@click.group()
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
            status = (row["problem"] or "missing") if row["path"] is None else row["path"]
            if row["verified"] is not None:
                status += "  [verified]" if row["verified"] else f"  [BAD: {row['problem']}]"
            click.echo(f"  {row['file']:28s} {status}")


@datasets.command("fetch")
@click.argument("name", type=click.Choice(DATASET_NAMES, case_sensitive=False))
@click.option("--from", "sources", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Copy this file you have (repeatable) into the data folder, verified, instead of "
                   "downloading it.")
@data_dir_option
def datasets_fetch(name, sources, data_dir):
    """Download (or find) and verify a data set, or copy in files you have (--from)."""
    spec = get_spec(name)
    try:
        if sources:
            install_from_files(spec, sources, dest_dir=Path(data_dir) / spec.subdir if data_dir else None,
                               say=say_data)
        paths = fetch(spec, data_dir=data_dir, progress=Progress.for_download(), say=say_data)
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
            if row["path"] is None and row["problem"]:
                state, bad = f"BAD ({row['problem']})", bad + 1
            elif row["path"] is None:
                # missing is an error only for a data set asked for by name
                state, bad = "missing", bad + (1 if name else 0)
            elif row["verified"]:
                state = "ok"
            else:
                state, bad = f"BAD ({row['problem']})", bad + 1
            click.echo(f"{dataset_name:14s} {row['file']:28s} {state}")
    if bad:
        raise click.ClickException(f"{bad} file(s) missing or bad")
