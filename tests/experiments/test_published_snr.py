"""The SNR reports under results/snr/ are of the published models they name, and
results/README.md quotes what results/snr_table.py prints from them, verbatim."""

import json
import subprocess
import sys

from npdvae.run_folder.model_file import load_model_file
from npdvae.training.config import TrainConfig
from tests.data.conftest import REPO

RESULTS = REPO / "results"


def test_each_snr_report_is_of_the_published_model_it_names():
    reports = sorted((RESULTS / "snr").glob("*.json"))
    assert len(reports) == 8
    for path in reports:
        report = json.loads(path.read_text())
        model = load_model_file(REPO / report["run"])
        assert report["model"] == TrainConfig.from_dict(model.config).model_name, path
        assert path.name.startswith(REPO.joinpath(report["run"]).stem.replace("dvae-k1-1l-", "")), path
        assert ("corrupted" in path.name) == report["inputs"].startswith("corrupted"), path


def test_results_readme_quotes_the_snr_tables_verbatim():
    printed = subprocess.run([sys.executable, str(RESULTS / "snr_table.py")], capture_output=True, text=True,
                             check=True).stdout.strip()
    readme = (RESULTS / "README.md").read_text()
    block = readme[readme.index("<!-- printed by python results/snr_table.py, verbatim -->"):]
    assert block.split("\n", 2)[2].strip().startswith(printed)
