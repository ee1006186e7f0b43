"""results/carry.py carries a grid's unfinished runs through git to a new machine, where the
same command continues them bit for bit.

The procedure as DEVELOPERS.md and issue 32 give it, at a tiny budget: a grid of two runs is
stopped (Ctrl-C) after its first epoch, the four files of each run are carried into a git
repository, a clean clone restores them under a fresh --out of the same path, and the same
``reproduce`` command continues them. Their parameters and epoch records must equal those
of the same grid run without a break."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import npdvae
from tests.data.conftest import REPO
from tests.grids import runs_past_an_epoch

CARRY = REPO / "results" / "carry.py"
GRID = ["reproduce", "table1", "--row", "DIWAE (K=5)/1", "--column", "0", "--column", "5%", "--seed", "0",
        "--epochs", "3", "--train-examples", "10000", "--eval-examples", "60", "--is-samples", "5", "--jobs", "2"]


def _env(mnist_root):
    return {**os.environ, "NPDVAE_DATA_DIR": str(mnist_root), "OPENBLAS_NUM_THREADS": "1"}


def _run(mnist_root, *args, cwd=REPO):
    return subprocess.run([*map(str, args)], cwd=cwd, env=_env(mnist_root), capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)


def _grid(mnist_root, out):
    return _run(mnist_root, sys.executable, "-m", "npdvae.cli", *GRID, "--out", out)


def _git(folder, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                   capture_output=True, timeout=120)


def _params(run):
    from npdvae.run_folder.checkpoint import load_checkpoint
    return load_checkpoint(run / "last.h5").params


def _records(run):
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{k: v for k, v in record.items() if k != "seconds"} for record in lines if "epoch" in record]


def test_a_carried_grid_continues_on_a_clean_clone_to_the_bits_of_an_unbroken_one(mnist_root, tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git carries the runs; it is not installed")
    unbroken = tmp_path / "unbroken"
    result = _grid(mnist_root, unbroken)
    assert result.returncode == 0, result.stderr

    # the first machine: the grid starts, and is stopped after both runs' first epoch
    out = tmp_path / "grid"
    driver = subprocess.Popen([sys.executable, "-m", "npdvae.cli", *GRID, "--out", str(out)], cwd=REPO,
                              env=_env(mnist_root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while runs_past_an_epoch(out) < 2 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.killpg(driver.pid, signal.SIGINT)
    _, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 130, stderr
    stopped = {Path(s.path).name: s for s in npdvae.runs(out / "runs")}
    assert len(stopped) == 2 and all(s.state == "interrupted" for s in stopped.values()), stopped

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    carry = repo / "results" / "tiny" / "carry"
    result = _run(mnist_root, sys.executable, CARRY, "save", out, carry, "--commit", "0" * 40, "--",
                  "npdvae", *GRID, "--out", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in carry.iterdir() if p.is_dir()) == sorted(stopped)
    for name, summary in stopped.items():
        assert sorted(p.name for p in (carry / name).iterdir()) == ["best.h5", "config.json", "last.h5",
                                                                    "metrics.jsonl"]
        assert f"| `{name}` | {summary.epochs_done} of 3 | {summary.best_valid:.4f}" in (carry / "README.md").read_text()
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "carry")

    # the new machine: none of the first one's folders, a clean clone of the repository
    shutil.rmtree(out)
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(repo), str(clone))
    result = _run(mnist_root, sys.executable, CARRY, "restore", clone / "results" / "tiny" / "carry", out)
    assert result.returncode == 0, result.stderr
    again = _run(mnist_root, sys.executable, CARRY, "restore", clone / "results" / "tiny" / "carry", out)
    assert again.returncode == 1 and "exists" in again.stderr   # never over a run this machine kept

    result = _grid(mnist_root, out)
    assert result.returncode == 0, result.stderr
    for name, summary in stopped.items():
        records = _records(out / "runs" / name)
        assert [r["epoch"] for r in records] == [1, 2, 3]        # continued after the carried epoch, none twice
        assert records == _records(unbroken / "runs" / name)
        params, straight = _params(out / "runs" / name), _params(unbroken / "runs" / name)
        assert all(np.array_equal(params[key], straight[key]) for key in straight), name


def test_carrying_nothing_is_one_line_and_writes_nothing(mnist_root, tmp_path):
    result = _run(mnist_root, sys.executable, CARRY, "save", tmp_path / "none", tmp_path / "carry", "--commit", "x",
                  "--", "npdvae")
    assert result.returncode == 1 and "no run folders" in result.stderr and "Traceback" not in result.stderr
    result = _run(mnist_root, sys.executable, CARRY, "restore", tmp_path / "nothing", tmp_path / "out")
    assert result.returncode == 1 and "no carried runs" in result.stderr and not (tmp_path / "out").exists()


def test_a_run_whose_selection_rule_has_kept_no_epoch_is_carried_without_best_h5(tmp_path):
    """Issue 38's released rule keeps no epoch before 40% of the budget: a run stopped before then
    has three of the four files, is carried with them, and continues to the bits of an unbroken
    run. Synthetic data: carry.py reads only the run folders."""
    from npdvae.run_folder.runs import open_run
    from npdvae.training.config import TrainConfig
    from npdvae.training.loop import TrainingInterrupted
    from tests.synthetic import synthetic_dataset
    config = TrainConfig(dataset="mnist", latent=3, hidden=8, epochs=4, batch_size=50, select_after=0.6)
    data = synthetic_dataset()   # 6 minibatches an epoch; only epoch 4 may be kept
    unbroken = open_run(config, tmp_path / "unbroken" / "runs" / "r", data)
    unbroken.run()
    unbroken.release()
    out = tmp_path / "grid"
    stopped = open_run(config, out / "runs" / "r", data)
    polls = iter(range(10 ** 6))
    stopped.stop_requested = lambda: next(polls) == 9     # in the second epoch
    with pytest.raises(TrainingInterrupted):
        stopped.run()
    stopped.release()

    carry = tmp_path / "repo" / "carry"
    result = subprocess.run([sys.executable, str(CARRY), "save", str(out), str(carry), "--commit", "0" * 40,
                             "--", "npdvae", "train"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (carry / "r").iterdir()) == ["config.json", "last.h5", "metrics.jsonl"]
    assert "| `r` | 1 of 4 | none kept yet" in (carry / "README.md").read_text()
    shutil.rmtree(out)
    result = subprocess.run([sys.executable, str(CARRY), "restore", str(carry), str(out)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    resumed = open_run(config, out / "runs" / "r", data, resume=True)
    resumed.run()
    resumed.release()
    assert _records(out / "runs" / "r") == _records(tmp_path / "unbroken" / "runs" / "r")
    params, straight = _params(out / "runs" / "r"), _params(tmp_path / "unbroken" / "runs" / "r")
    assert all(np.array_equal(params[key], straight[key]) for key in straight)
    assert npdvae.runs(out / "runs")[0].best_epoch == 4


def test_a_run_that_lost_the_best_h5_it_kept_is_refused_as_damaged_and_nothing_is_written(tmp_path):
    from npdvae.run_folder.runs import open_run
    from npdvae.training.config import TrainConfig
    from npdvae.training.loop import TrainingInterrupted
    from tests.synthetic import synthetic_dataset
    run = tmp_path / "grid" / "runs" / "r"
    trainer = open_run(TrainConfig(dataset="mnist", latent=3, hidden=8, epochs=4, batch_size=50), run,
                       synthetic_dataset())
    polls = iter(range(10 ** 6))
    trainer.stop_requested = lambda: next(polls) == 9     # in the second epoch: epoch 1 was kept
    with pytest.raises(TrainingInterrupted):
        trainer.run()
    trainer.release()
    (run / "best.h5").unlink()
    result = subprocess.run([sys.executable, str(CARRY), "save", str(tmp_path / "grid"), str(tmp_path / "carry"),
                             "--commit", "0" * 40, "--", "npdvae", "train"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1 and "is damaged, and cannot be carried" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "carry").exists()
