"""The gaps analyses committed under results/EXPERIMENT/gaps/MODEL/ belong to the model file they
name and give back their own report.

Each folder holds what ``npdvae gaps --out`` wrote: the per-image record (gaps.jsonl, whose
header carries the analysed parameters' digest) and the report (gaps.json). The report must
be the summary of the record's figures, and the record's digest must be that of the committed
model the report names, so that a table or a ``gaps-compare`` read from these folders is the
analysis of the published model and of nothing else. No data set is needed."""

import json
from pathlib import Path

import numpy as np
import pytest

from npdvae.evaluation.gaps import report_to_dict, summarize
from npdvae.evaluation.gaps_record import REPORT_NAME, finished_figures, params_digest
from npdvae.training.runs import load_trained

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = sorted(path.parent for path in (ROOT / "results").glob("*/gaps/*/gaps.jsonl"))


def _numbers(value, prefix=""):
    """Every number of a nested report, keyed by its path, so two reports compare leaf by leaf."""
    if isinstance(value, dict):
        return {key: number for name, v in value.items() for key, number in _numbers(v, f"{prefix}/{name}").items()}
    return {prefix: value}


@pytest.mark.parametrize("folder", FOLDERS, ids=[f"{f.parent.parent.name}/{f.name}" for f in FOLDERS])
def test_a_published_gaps_analysis_is_the_analysis_of_the_model_it_names(folder):
    report = json.loads((folder / REPORT_NAME).read_text())
    header, figures = finished_figures(folder)
    model_path = ROOT / report["run"]
    assert model_path.is_file(), f"{folder}'s report names {report['run']}, which is not committed"
    _, _, params = load_trained(model_path)
    assert header["model"] == params_digest(params), f"{folder} analysed other parameters than {report['run']}'s"
    assert header["settings"] == report["settings"]
    assert {subset: len(figures[subset]["log_px_ais"]) for subset in figures} == report["examples"]


@pytest.mark.parametrize("folder", FOLDERS, ids=[f"{f.parent.parent.name}/{f.name}" for f in FOLDERS])
def test_a_published_gaps_report_is_the_summary_of_its_record(folder):
    report = json.loads((folder / REPORT_NAME).read_text())
    _, figures = finished_figures(folder)
    recomputed = _numbers(report_to_dict(summarize(figures)))
    published = _numbers({key: report[key] for key in ("train", "test", "generalization")})
    assert recomputed.keys() == published.keys()
    for key, value in recomputed.items():
        assert np.isclose(published[key], value, rtol=1e-12, atol=1e-12), key
