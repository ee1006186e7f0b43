"""The SNR reports under results/snr/ are of the published models they name, and
results/README.md quotes what results/snr_table.py prints from them, verbatim, for each row
of models it knows."""

import json
import subprocess
import sys

import pytest

from npdvae.run_folder.model_file import load_model_file
from npdvae.training.config import TrainConfig
from tests.data.conftest import REPO

RESULTS = REPO / "results"


def test_each_snr_report_is_of_the_published_model_it_names():
    reports = sorted((RESULTS / "snr").glob("*.json"))
    assert len(reports) == 12   # two inputs for each of 4 DVAE (K=1) and 2 DIWAE (K=5) models
    for path in reports:
        report = json.loads(path.read_text())
        model = load_model_file(REPO / report["run"])
        assert report["model"] == TrainConfig.from_dict(model.config).model_name, path
        assert path.name.startswith(REPO.joinpath(report["run"]).stem.replace("dvae-k1-1l-", "")), path
        assert ("corrupted" in path.name) == report["inputs"].startswith("corrupted"), path


@pytest.mark.parametrize("row", ["", "diwae"])
def test_results_readme_quotes_the_snr_tables_verbatim(row):
    command = [sys.executable, str(RESULTS / "snr_table.py"), *([row] if row else [])]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    readme = (RESULTS / "README.md").read_text()
    marker = f"<!-- printed by python results/snr_table.py{' ' + row if row else ''}, verbatim -->"
    block = readme[readme.index(marker):]
    assert block.split("\n", 2)[2].strip().startswith(printed)
