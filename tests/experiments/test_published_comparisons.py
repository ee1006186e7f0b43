"""The comparisons of results/README.md printed by scripts from committed results: issue 37's
(E8: results/estimators_table.py and results/estimators_gaps.py, from results/estimators-k5-300/) and
issue 38's (E9: results/table1_released_script.py, from table1-released-script/, the 3280-epoch
grids and model files, and table1-adam-released-400/).
The README quotes what each prints, verbatim; and each refuses, in one line, a
grid that is not there rather than print a comparison without it. And every table the README says
it copies verbatim from a committed table file is that file's text. No data set is needed."""

import re
import shutil
import subprocess
import sys

import pytest

from tests.data.conftest import REPO

RESULTS = REPO / "results"
COPIED = re.compile(r"<!-- copied verbatim from (results/[^\s,]+)(.*?)-->\n")


def _run(script, cwd=REPO):
    return subprocess.run([sys.executable, str(script)], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("script", ["estimators_table.py", "estimators_gaps.py", "table1_released_script.py"])
def test_results_readme_quotes_each_comparison_verbatim(script):
    result = _run(RESULTS / script)
    assert result.returncode == 0, result.stderr
    readme = (RESULTS / "README.md").read_text()
    marker = f"<!-- printed by python results/{script}, verbatim -->"
    assert marker in readme, f"results/README.md does not quote results/{script}"
    block = readme[readme.index(marker):].split("\n", 2)[2]
    assert block.strip().startswith(result.stdout.strip()), f"results/README.md's quote of {script} differs"


@pytest.mark.parametrize("script, folders, left_out, missing", [
    ("estimators_table.py", ["estimators-k5-300"], "dreg-seed1", "no table at"),
    ("estimators_gaps.py", ["estimators-k5-300"], "dreg-seed1", "holds no finished gaps analysis"),
    ("table1_released_script.py", ["table1-released-script", "table1-released-3280", "table1-released-3280-seed1",
                                   "table1-released-3280-seed0-rerun", "table1-adam-released-400"],
     "models", "no model file at")])
def test_a_comparison_without_one_of_its_grids_is_refused_in_one_line(tmp_path, script, folders, left_out, missing):
    # the committed folders less one part (the DReG grid of seed 1, the model files), beside copies of the script and its table reader
    for name in (script, "table_cells.py"):
        shutil.copy(RESULTS / name, tmp_path / name)
    for folder in folders:
        shutil.copytree(RESULTS / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.h5", "*.png", left_out))
    result = _run(tmp_path / script, cwd=REPO)
    assert result.returncode == 1 and missing in result.stderr and left_out in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_results_readme_copies_each_table_verbatim():
    readme = (RESULTS / "README.md").read_text()
    copies = list(COPIED.finditer(readme))
    assert len(copies) >= 6
    for copy in copies:
        text = (REPO / copy.group(1)).read_text().strip()
        if "its heading one level down" in copy.group(2):
            text = "\n".join("#" + line if line.startswith("#") else line for line in text.split("\n"))
        assert readme[copy.end():].lstrip("\n").startswith(text), f"results/README.md's copy of {copy.group(1)} differs"
