"""Issue 37's training comparison (results/README.md, E8): the README quotes what
results/estimators_table.py and results/estimators_gaps.py print from the committed tables and
gaps analyses of results/estimators-k5-300/, verbatim; and the scripts refuse, in one line, a
grid that is not there rather than print a comparison without it. No data set is needed."""

import shutil
import subprocess
import sys

import pytest

from tests.data.conftest import REPO

RESULTS = REPO / "results"


def _run(script, cwd=REPO):
    return subprocess.run([sys.executable, str(script)], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("script", ["estimators_table.py", "estimators_gaps.py"])
def test_results_readme_quotes_the_estimator_comparison_verbatim(script):
    result = _run(RESULTS / script)
    assert result.returncode == 0, result.stderr
    readme = (RESULTS / "README.md").read_text()
    marker = f"<!-- printed by python results/{script}, verbatim -->"
    assert marker in readme, f"results/README.md does not quote results/{script}"
    block = readme[readme.index(marker):].split("\n", 2)[2]
    assert block.strip().startswith(result.stdout.strip()), f"results/README.md's quote of {script} differs"


@pytest.mark.parametrize("script, missing", [("estimators_table.py", "no table at"),
                                             ("estimators_gaps.py", "holds no finished gaps analysis")])
def test_a_comparison_without_one_of_its_grids_is_refused_in_one_line(tmp_path, script, missing):
    # the committed folder less the DReG grid of seed 1, beside a copy of the script
    shutil.copy(RESULTS / script, tmp_path / script)
    shutil.copytree(RESULTS / "estimators-k5-300", tmp_path / "estimators-k5-300",
                    ignore=shutil.ignore_patterns("*.h5", "dreg-seed1"))
    result = _run(tmp_path / script, cwd=REPO)
    assert result.returncode == 1 and missing in result.stderr and "dreg-seed1" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
