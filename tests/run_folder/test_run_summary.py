"""``npdvae runs``: each run folder's model, progress, scores and state, from real folders."""

import json
import shutil
import signal
import subprocess
import sys
import time

from click.testing import CliRunner

from npdvae.cli.main import main
from npdvae.run_folder.run_summary import find_runs, summarize_run
from tests.data.conftest import REPO

TINY = ["--train-examples", "1000", "--eval-examples", "50", "--hidden", "64", "--latent", "8"]


def _train(mnist_root, out, *args):
    return subprocess.Popen([sys.executable, "-m", "npdvae.cli", "train", *TINY, "--out", str(out),
                             "--data-dir", str(mnist_root), *map(str, args)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def _wait_for_best(out, process, timeout=300):
    deadline = time.monotonic() + timeout
    while not (out / "best.h5").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)


def test_runs_shows_finished_interrupted_in_use_and_damaged_runs(mnist_root, tmp_path):
    root = tmp_path / "runs"
    finished = _train(mnist_root, root / "finished", "--epochs", "2", "--noise", "0.05")
    assert finished.wait(timeout=600) == 0, finished.communicate()
    shutil.copytree(root / "finished", root / "damaged", ignore=shutil.ignore_patterns(".lock"))
    for name in ("last.h5", "best.h5"):
        (root / "damaged" / name).write_bytes(b"not HDF5")
    stopped = _train(mnist_root, root / "interrupted", "--epochs", "1000")
    _wait_for_best(root / "interrupted", stopped)
    stopped.send_signal(signal.SIGINT)
    stopped.communicate(timeout=300)
    running = _train(mnist_root, root / "busy", "--epochs", "1000", "--k", "2")
    try:
        _wait_for_best(root / "busy", running)
        summaries = {s.path.split("/")[-1]: s for s in map(summarize_run, find_runs([tmp_path]))}
        listing = CliRunner().invoke(main, ["runs", str(root)])
        as_json = CliRunner().invoke(main, ["runs", str(root), "--json", "--sort", "valid"])
    finally:
        running.send_signal(signal.SIGINT)
        running.communicate(timeout=300)
    assert {name: s.state for name, s in summaries.items()} == {
        "finished": "finished", "damaged": "damaged", "interrupted": "interrupted", "busy": "in use"}
    assert summaries["busy"].detail == f"pid {running.pid}"
    done = summaries["finished"]
    assert (done.model, done.corruption, done.epochs_done, done.epochs_asked) == \
        ("DVAE (K=1), 1 hidden layer, noise 5%", "salt-pepper-released 5%", 2, 2)
    assert done.best_epoch in (1, 2) and done.best_valid < 0
    assert summaries["interrupted"].epochs_asked == 1000 and summaries["interrupted"].epochs_done < 1000
    assert "not HDF5" in summaries["damaged"].detail or "unreadable" in summaries["damaged"].detail
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert lines[0].split()[:2] == ["run", "model"] and len(lines) == 1 + 4 + 1   # a line more for the damage
    assert any(line.startswith("busy ") and line.endswith(f"in use (pid {running.pid})") for line in lines)
    assert any(line.startswith("finished ") and " 2/2 " in line and line.endswith("finished") for line in lines)
    assert lines[-1].startswith(f"damaged: {root / 'damaged'}: ")
    records = [json.loads(line) for line in as_json.output.splitlines()]
    valid = [r["best_valid"] for r in records if r["best_valid"] is not None]
    assert valid == sorted(valid, reverse=True) and len(records) == 4


def test_runs_names_a_missing_folder_and_says_when_there_is_none(tmp_path):
    result = CliRunner().invoke(main, ["runs", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "nowhere: no such folder" in result.output
    empty = CliRunner().invoke(main, ["runs", str(tmp_path)])
    assert empty.exit_code == 0 and empty.output.startswith("no run folders under")


def test_a_run_whose_best_checkpoint_is_another_runs_is_listed_as_damaged(mnist_root, tmp_path):
    """Issue 35: a folder whose last.h5 is its own but whose best.h5 is not is not `finished`."""
    for name, seed in (("a", "0"), ("b", "1")):
        process = _train(mnist_root, tmp_path / name, "--epochs", "1", "--seed", seed)
        assert process.wait(timeout=600) == 0, process.communicate()
    assert summarize_run(tmp_path / "a").state == "finished"
    shutil.copy(tmp_path / "b" / "best.h5", tmp_path / "a" / "best.h5")
    summary = summarize_run(tmp_path / "a")
    assert summary.state == "damaged" and "best.h5" in summary.detail, summary


def test_a_run_stopped_before_its_selection_rule_keeps_an_epoch_is_interrupted_not_damaged(tmp_path):
    """Issue 38's released rule keeps no epoch before 40% of the budget, so a run stopped earlier
    has no best.h5 yet: it is to be continued, not moved aside as damaged."""
    from npdvae.run_folder.runs import open_run
    from npdvae.training.config import TrainConfig
    from npdvae.training.loop import TrainingInterrupted
    from tests.synthetic import synthetic_dataset
    # 4 epochs, none kept before 0.6 x 4: only the last may be; 300 examples, batch 50: 6 minibatches an epoch
    config = TrainConfig(dataset="mnist", latent=3, hidden=8, epochs=4, batch_size=50, select_after=0.6)
    run, data = tmp_path / "run", synthetic_dataset()
    trainer = open_run(config, run, data)
    polls = iter(range(10 ** 6))
    trainer.stop_requested = lambda: next(polls) == 12     # before the third epoch
    try:
        trainer.run()
    except TrainingInterrupted:
        pass
    finally:
        trainer.release()
    assert not (run / "best.h5").exists()
    stopped = summarize_run(run)
    assert (stopped.state, stopped.epochs_done, stopped.best_epoch) == ("interrupted", 2, None), stopped
    resumed = open_run(config, run, data, resume=True)
    try:
        resumed.run()
    finally:
        resumed.release()
    finished = summarize_run(run)
    assert (finished.state, finished.best_epoch) == ("finished", 4), finished
