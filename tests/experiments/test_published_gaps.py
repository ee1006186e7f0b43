"""The gaps analyses committed under results/EXPERIMENT/gaps/MODEL/ belong to the model file they
name and give back their own report.

Each folder holds what ``npdvae gaps --out`` wrote: the per-image record (gaps.jsonl, whose
header carries the analysed parameters' digest) and the report (gaps.json). The report must
be the summary of the record's figures, and the record's digest must be that of the committed
model the report names, so that a table or a ``gaps-compare`` read from these folders is the
analysis of the published model and of nothing else; and results/README.md must quote
the tables and comparisons as results/gaps_table.py and ``npdvae gaps-compare`` print them from
these folders. No data set is needed."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from npdvae.evaluation.gaps import report_to_dict, summarize
from npdvae.evaluation.gaps_record import REPORT_NAME, finished_figures, params_digest
from npdvae.run_folder.runs import load_trained

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = sorted(path.parent for path in (ROOT / "results").glob("**/gaps/*/gaps.jsonl"))
ESTIMATORS = ROOT / "results" / "estimators-k5-300"
IDS = [str(f.relative_to(ROOT / "results")).replace("/gaps/", "/") for f in FOLDERS]


def _numbers(value, prefix=""):
    """Every number of a nested report, keyed by its path, so two reports compare leaf by leaf."""
    if isinstance(value, dict):
        return {key: number for name, v in value.items() for key, number in _numbers(v, f"{prefix}/{name}").items()}
    return {prefix: value}


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_a_published_gaps_analysis_is_the_analysis_of_the_model_it_names(folder):
    report = json.loads((folder / REPORT_NAME).read_text())
    header, figures = finished_figures(folder)
    model_path = ROOT / report["run"]
    assert model_path.is_file(), f"{folder}'s report names {report['run']}, which is not committed"
    _, _, params = load_trained(model_path)
    assert header["model"] == params_digest(params), f"{folder} analysed other parameters than {report['run']}'s"
    assert header["settings"] == report["settings"]
    assert {subset: len(figures[subset]["log_px_ais"]) for subset in figures} == report["examples"]


@pytest.mark.parametrize("folder", FOLDERS, ids=IDS)
def test_a_published_gaps_report_is_the_summary_of_its_record(folder):
    report = json.loads((folder / REPORT_NAME).read_text())
    _, figures = finished_figures(folder)
    recomputed = _numbers(report_to_dict(summarize(figures)))
    published = _numbers({key: report[key] for key in ("train", "test", "generalization")})
    assert recomputed.keys() == published.keys()
    for key, value in recomputed.items():
        assert np.isclose(published[key], value, rtol=1e-12, atol=1e-12), key


def _printed(command) -> str:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_results_readme_quotes_the_gaps_tables_and_comparisons_as_they_print():
    # The README's gaps figures are pasted output; this catches a paste that no longer
    # matches the committed analyses (or one edited by hand).
    readme = (ROOT / "results" / "README.md").read_text()
    for row in ([], ["diwae"]):
        printed = _printed([sys.executable, "results/gaps_table.py", *row]).strip()
        assert printed in readme, f"results/README.md does not quote results/gaps_table.py {' '.join(row)}"
    pairs = [(folder.with_name(folder.name.replace("noise5", "noise0")), folder)
             for folder in FOLDERS if "noise5" in folder.name]
    assert pairs and all(zero in FOLDERS for zero, _ in pairs), "a published 5% analysis without its 0% pair"
    for zero, five in pairs:
        if ESTIMATORS in five.parents:
            continue   # quoted as results/estimators_gaps.py prints them (test_published_comparisons.py)
        compared = _printed([sys.executable, "-m", "npdvae.cli", "gaps-compare",
                             str(zero.relative_to(ROOT)), str(five.relative_to(ROOT))])
        assert compared.strip() in readme, f"results/README.md does not quote gaps-compare of {five.parent}"
