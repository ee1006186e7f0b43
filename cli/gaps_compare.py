"""``npdvae gaps-compare``: two models' gaps analyses of the same images, subtracted image by image
(npdvae.evaluation.gaps.paired_difference)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from npdvae.evaluation.gaps import FIGURES, GAPS, IW_FIGURE, paired_difference, report_to_dict
from npdvae.evaluation.gaps_record import GapsRecordError, finished_figures, pairing_problem
from .gaps import label


@click.command("gaps-compare")
@click.argument("first", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("second", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def gaps_compare(first, second, as_json):
    """SECOND minus FIRST, image by image: two finished `npdvae gaps --out` folders.

    Both analyses must have the same settings (the same images, seed and estimators), so
    that each image's figures can be subtracted; the standard errors are those of the
    per-image differences, which is what shows a difference far smaller than the
    figures' own spread. The train - test column is the difference of the two models'
    generalization gaps."""
    analyses = []
    for name, folder in (("FIRST", first), ("SECOND", second)):
        try:
            analyses.append(finished_figures(folder))
        except GapsRecordError as err:
            raise click.BadParameter(str(err), param_hint=name) from None
    (header_a, figures_a), (header_b, figures_b) = analyses
    problem = pairing_problem(header_a, header_b)
    if problem:
        raise click.UsageError(f"{first} and {second} {problem}")
    if header_a["images"] is None or header_b["images"] is None:
        click.echo("note: a record made before gaps records named their images; that both cover the same "
                   "images is not checked", err=True)
    try:
        report = paired_difference(figures_a, figures_b)
    except (KeyError, ValueError) as err:
        raise click.ClickException(f"{first} and {second} cannot be paired: {err}") from None
    if as_json:
        click.echo(json.dumps({"first": str(first), "second": str(second), **report_to_dict(report)}, indent=2))
        return
    n = report["train"]["log_px_ais"].n, report["test"]["log_px_ais"].n
    click.echo(f"{second} minus {first}, image by image on the same {n[0]} training and {n[1]} test images; "
               "nats, mean ± standard error of the differences")
    click.echo(f"  {'':40s} {'train':>16s} {'test':>16s} {'train - test':>16s}")
    names = (*FIGURES, *((IW_FIGURE,) if IW_FIGURE in report["train"] else ()), *GAPS)
    iw_k = header_a["settings"].get("iw_k", 1)
    for name in names:
        cells = [f"{report[key][name].mean:+8.2f} ± {report[key][name].stderr:5.2f}"
                 for key in ("train", "test", "generalization")]
        click.echo(f"  {label(name, iw_k):40s} {cells[0]:>16s} {cells[1]:>16s} {cells[2]:>16s}")
