"""``npdvae runs``: the run folders one has, one line each."""

from __future__ import annotations

import json
from pathlib import Path

import click

from npdvae.run_folder.run_summary import RunSummary, find_runs, summarize_run

COLUMNS = {   # --sort name: (heading, key); bounds sort best first
    "run": ("run", lambda s: s.path),
    "model": ("model", lambda s: s.model or ""),
    "corruption": ("corruption", lambda s: s.corruption or ""),
    "epochs": ("epochs", lambda s: s.epochs_done or 0),
    "valid": ("best valid (epoch)", lambda s: -(s.best_valid if s.best_valid is not None else float("-inf"))),
    "test": ("test -bound", lambda s: -(s.test_bound if s.test_bound is not None else float("-inf"))),
    "loglik": ("log p(x)", lambda s: -(s.log_likelihood if s.log_likelihood is not None else float("-inf"))),
    "state": ("state", lambda s: s.state),
}


def _cells(summary: RunSummary, root: Path) -> list[str]:
    try:
        name = str(Path(summary.path).relative_to(root))
    except ValueError:
        name = summary.path
    epochs = f"{summary.epochs_done}/{summary.epochs_asked}" if summary.epochs_done is not None else \
        (f"-/{summary.epochs_asked}" if summary.epochs_asked else "-")
    valid = f"{summary.best_valid:.2f} ({summary.best_epoch})" if summary.best_valid is not None else "-"
    test = f"{-summary.test_bound:.2f}" if summary.test_bound is not None else "-"
    loglik = f"{summary.log_likelihood:.2f}" if summary.log_likelihood is not None else "-"
    state = summary.state + (f" ({summary.detail})" if summary.detail and summary.state == "in use" else "")
    return [name, summary.model or "?", summary.corruption or "?", epochs, valid, test, loglik, state]


@click.command("runs")
@click.argument("folders", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run, for machines.")
@click.option("--sort", type=click.Choice(sorted(COLUMNS)), default="run", show_default=True,
              help="Order the lines by this column (bounds: best first).")
def runs(folders, as_json, sort):
    """The run folders under FOLDERS (default: runs/), one line each: what each run is, how far
    it went, what it scored, and whether it is finished, interrupted, in use or damaged."""
    folders = folders or (Path("runs"),)
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise click.BadParameter(f"{missing[0]}: no such folder", param_hint="FOLDERS")
    summaries = sorted((summarize_run(path) for path in find_runs(folders)), key=COLUMNS[sort][1])
    if as_json:
        for summary in summaries:
            click.echo(json.dumps(summary.to_dict()))
        return
    if not summaries:
        click.echo(f"no run folders under {', '.join(map(str, folders))}")
        return
    root = folders[0] if len(folders) == 1 else Path(".")
    rows = [[heading for heading, _ in COLUMNS.values()]] + [_cells(s, root) for s in summaries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for summary in summaries:
        if summary.state == "damaged":
            click.echo(f"damaged: {summary.path}: {summary.detail}")
