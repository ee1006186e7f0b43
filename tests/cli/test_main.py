"""The command line end to end, through click's test runner, on a small subset of the real data."""

import json
import re
import os
import signal
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from npdvae.cli.main import main
from npdvae.run_folder.checkpoint import load_checkpoint
from npdvae.run_folder.runs import read_metrics
from tests.data.conftest import REPO, dataset_root

try:
    import matplotlib  # noqa: F401
    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False

SMALL = ["--train-examples", "600", "--eval-examples", "60", "--latent", "8", "--hidden", "32"]


@pytest.fixture
def data_env(mnist_root, monkeypatch):
    monkeypatch.setenv("NPDVAE_DATA_DIR", str(mnist_root))
    return mnist_root


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_train_evaluate_sample_reconstruct_plot(data_env, tmp_path):
    out = tmp_path / "run"
    result = run("train", "--dataset", "mnist", "--noise", "0.05", "--k", "5", "--bound", "iwae",
                 "--epochs", "2", *SMALL, "--out", out)
    assert result.exit_code == 0, result.output
    assert "DIWAE (K=5), 1 hidden layer, noise 5% on mnist; corruption salt-pepper-released:" in result.output
    assert json.loads((out / "config.json").read_text())["noise_type"] == "salt-pepper-released"
    epoch_lines = [line for line in result.output.splitlines() if line.strip()[:1].isdigit()]
    assert len(epoch_lines) == 2
    pictures = ("samples.png", "reconstructions.png") if HAVE_MATPLOTLIB else ()
    if not HAVE_MATPLOTLIB:   # the plot extra is optional: training says it drew nothing
        assert "note: no pictures written (pictures need matplotlib" in result.output
    for name in ("config.json", "metrics.jsonl", "best.h5", "last.h5", *pictures):
        assert (out / name).is_file(), name
    metrics = read_metrics(out)
    assert [m["epoch"] for m in metrics] == [1, 2] and all(np.isfinite(m["valid_bound"]) for m in metrics)

    result = run("evaluate", out, "--examples", "40", "--is-samples", "200", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)   # stderr says where the data came from
    assert report["examples"] == 40 and report["k"] == 5 and report["is_samples"] == 200
    assert report["log_likelihood"]["mean"] >= report["iwae_k"]["mean"] >= report["elbo"]["mean"]
    result = run("evaluate", out, "--examples", "20", "--is-samples", "50")
    assert "log p(x), importance sampled (K=50)" in result.output and "+-" in result.output

    for command, png in (("sample", tmp_path / "s.png"), ("reconstruct", tmp_path / "r.png"),
                         ("plot", tmp_path / "c.png")):
        result = run(command, out, "--out", png)
        if not HAVE_MATPLOTLIB:
            assert result.exit_code == 1 and "pip install -e '.[plot]'" in result.output
            continue
        assert result.exit_code == 0, result.output
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_frey_face_trains_with_the_gaussian_decoder(data_env, frey_datasets, tmp_path, monkeypatch):
    monkeypatch.setenv("NPDVAE_DATA_DIR", str(frey_datasets))
    result = run("train", "--dataset", "frey-face", "--noise", "0.025", "--epochs", "1", "--batch-size", "50",
                 "--latent", "5", "--hidden", "20", "--out", tmp_path / "frey")
    assert result.exit_code == 0, result.output
    assert "DVAE (K=1), 1 hidden layer, noise sigma 0.025 on frey-face" in result.output


def _params(path):
    return load_checkpoint(path).params


def test_killed_and_resumed_run_equals_the_uninterrupted_run(data_env, tmp_path):
    args = ["--epochs", "4", "--k", "2", "--noise", "0.1", "--train-examples", "3000", "--eval-examples", "60",
            "--latent", "8", "--hidden", "64", "--seed", "5"]
    assert run("train", *args, "--out", tmp_path / "straight").exit_code == 0
    killed_dir = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "train", *args, "--out", str(killed_dir)],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "NPDVAE_DATA_DIR": str(data_env)})
    deadline = time.monotonic() + 120
    while not (killed_dir / "last.h5").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    result = run("train", "--out", killed_dir, "--resume", "--epochs", "4")
    assert result.exit_code == 0, result.output
    straight, resumed = _params(tmp_path / "straight" / "last.h5"), _params(killed_dir / "last.h5")
    for name in straight:
        np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)

    def metrics(run_dir):
        return [{k: v for k, v in record.items() if k != "seconds"} for record in read_metrics(run_dir)]

    assert metrics(killed_dir) == metrics(tmp_path / "straight")


BAD_TRAIN_OPTIONS = [
    (["--dataset", "cifar"], "--dataset"),
    (["--noise", "1.5"], "--noise"),
    (["--noise", "-0.1"], "--noise"),
    (["--k", "0"], "--k"),
    (["--m", "0"], "--m"),
    (["--batch-size", "1000", "--train-examples", "500"], "--batch-size"),
    (["--train-examples", "1000000000"], "--train-examples"),     # more than the 50,000 there are
    (["--eval-examples", "10001"], "--eval-examples"),
]


@pytest.mark.parametrize("options, named", BAD_TRAIN_OPTIONS)
def test_bad_train_options_are_usage_errors_naming_the_option(data_env, tmp_path, options, named):
    result = CliRunner().invoke(main, ["train", *options, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert not (tmp_path / "run").exists()


def test_run_directory_under_a_file_is_a_usage_error(data_env, tmp_path):
    (tmp_path / "file").write_text("")
    result = CliRunner().invoke(main, ["train", "--out", str(tmp_path / "file" / "run")])
    assert result.exit_code == 2 and "--out" in result.output and "cannot write" in result.output


def test_existing_run_directory_is_refused_and_untouched(data_env, tmp_path):
    out = tmp_path / "run"
    assert run("train", "--epochs", "1", *SMALL, "--out", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = CliRunner().invoke(main, ["train", "--epochs", "1", *SMALL, "--out", str(out)])
    assert result.exit_code == 2 and "--resume" in result.output and "nothing was overwritten" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    result = CliRunner().invoke(main, ["train", "--out", str(out), "--resume", "--k", "3"])
    assert result.exit_code == 2 and "k: checkpoint has 1, requested 3" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_reference_flag_trains_with_the_numpy_references_and_is_recorded(data_env, tmp_path):
    out = tmp_path / "run"
    result = run("train", "--epochs", "1", "--noise", "0.05", *SMALL, "--reference", "--out", out)
    assert result.exit_code == 0, result.output
    assert "kernels=False" in result.output
    assert json.loads((out / "config.json").read_text())["kernels"] is False
    # resuming may switch back to the kernels: the numbers agree to float32 rounding
    result = run("train", "--out", out, "--resume", "--epochs", "2", "--kernels")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["kernels"] is True


def test_non_finite_bound_stops_with_advice_and_keeps_the_checkpoint(data_env, tmp_path, monkeypatch):
    from npdvae.training import loop as train_module
    original = train_module.Trainer.train_epoch

    def explode_in_epoch_two(self, progress=None):
        if self.epoch == 1:
            raise train_module.NonFiniteBoundError("the bound became nan in epoch 2")
        return original(self, progress)

    monkeypatch.setattr(train_module.Trainer, "train_epoch", explode_in_epoch_two)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--epochs", "3", *SMALL, "--out", str(out)])
    assert result.exit_code == 1
    assert "nan" in result.output and f"npdvae train --resume --out {out} --lr 0.0001" in result.output
    assert load_checkpoint(out / "last.h5").epoch == 1


def test_datasets_list_and_verify(data_env):
    result = run("datasets", "list", "--verify")
    assert result.exit_code == 0
    assert f"{data_env / 'mnist' / 'train-images-idx3-ubyte.gz'}  [verified]" in result.output
    result = run("datasets", "verify", "mnist")
    assert result.exit_code == 0 and result.output.count(" ok") == 4
    if dataset_root("frey-face") == data_env:
        result = run("datasets", "fetch", "frey-face")
        assert result.exit_code == 0 and "[verified]" in result.output


def test_train_says_where_the_data_came_from_and_refuses_a_missing_data_dir(data_env, tmp_path):
    result = run("train", "--epochs", "1", *SMALL, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    shown = data_env / "mnist"   # as a path relative to here when it lies below the current folder
    if shown.resolve().is_relative_to(Path.cwd().resolve()):
        shown = shown.resolve().relative_to(Path.cwd().resolve())
    assert f"  data: mnist: read and verified (SHA-256) from {shown}" in result.output
    result = run("train", "--epochs", "1", *SMALL, "--data-dir", tmp_path / "typo", "--out", tmp_path / "other")
    assert result.exit_code == 2 and f"{tmp_path / 'typo'}: no such folder" in result.output
    assert not (tmp_path / "other").exists()


def test_a_missing_data_folder_in_the_environment_is_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NPDVAE_DATA_DIR", str(tmp_path / "nowhere"))
    result = CliRunner().invoke(main, ["datasets", "list"])
    assert result.exit_code == 2 and f"NPDVAE_DATA_DIR={tmp_path / 'nowhere'}: no such folder" in result.output


def test_resume_without_out_finds_the_default_folder_and_a_finished_run_says_so(data_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "runs" / "mnist-elbo-k1-noise0.05-z8-h32-train600-eval60-seed0"   # the settings it differs in
    assert run("train", "--epochs", "1", "--noise", "0.05", *SMALL).exit_code == 0
    assert (folder / "last.h5").is_file()
    result = run("train", "--resume", "--noise", "0.05", *SMALL, "--epochs", "2")   # the same options find it
    assert result.exit_code == 0 and "resumed after epoch 1" in result.output, result.output
    stamp = (folder / "samples.png").stat().st_mtime_ns
    result = run("train", "--resume", "--noise", "0.05", *SMALL)
    assert result.exit_code == 0 and "already finished at epoch 2" in result.output
    assert (folder / "samples.png").stat().st_mtime_ns == stamp


def test_on_a_pipe_progress_is_plain_lines_without_a_bar(data_env, tmp_path):
    result = subprocess.run([sys.executable, "-m", "npdvae.cli", "train", "--epochs", "1", *SMALL, "--out",
                             str(tmp_path / "run")], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "NPDVAE_DATA_DIR": str(data_env)})
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr + result.stdout and "[#" not in result.stderr + result.stdout


def test_epoch_progress_shows_the_epoch_the_rate_and_the_time_left():
    import io
    from npdvae.cli.progress import EpochProgress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, plain in ((Terminal(), False), (io.StringIO(), True)):
        progress = EpochProgress(10, stream=stream, plain_every=0.0)
        progress.start_epoch(3)
        for done in (0, 25000, 50000):
            progress.update(done, 50000)
            time.sleep(0.15)
        text = stream.getvalue()
        assert "epoch 3/10" in text and " ex/s " in text and " left, run " in text
        assert ("[#" not in text and "\r" not in text) if plain else "[###" in text


def test_reproduce_writes_outside_results_by_default_and_names_valid_rows(data_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("reproduce", "table1", "--row", "DVAE (K=1)/1", "--column", "5", "--seeds", "1", "--epochs", "1",
                 "--train-examples", "200", "--eval-examples", "20", "--is-samples", "5")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "reproduce" / "table1" / "table-row-DVAE_K=1_-1l-column-5.md").is_file() and not (tmp_path / "results").exists()
    assert "1 run (1 cell x 1 seed), 1 epoch each" in result.output
    assert "Too few epochs timed to project" in (tmp_path / "runs" / "reproduce" / "table1" / "table-row-DVAE_K=1_-1l-column-5.md").read_text()
    result = CliRunner().invoke(main, ["reproduce", "table1", "--row", "VAE/3"])
    assert result.exit_code == 2 and "its rows: 'DIWAE (K=5)/1'" in result.output


def test_reproduce_says_the_time_left_after_each_run_but_the_last(data_env, tmp_path):
    result = run("reproduce", "table1", "--row", "DVAE (K=1)/1", "--column", "0", "--column", "5", "--seeds", "1",
                 "--epochs", "1", "--train-examples", "200", "--eval-examples", "20", "--is-samples", "5",
                 "--out", str(tmp_path / "grid"))
    assert result.exit_code == 0, result.output
    first, second = [line for line in result.output.splitlines() if line.startswith("[")]
    assert first.startswith("[1/2]") and re.search(r"; about \d+ s left$", first), first   # one at a time: a run
    assert second.startswith("[2/2]") and "left" not in second and "about now" not in second, second


def test_dataset_names_are_case_insensitive(data_env):
    result = run("datasets", "verify", "MNIST")
    assert result.exit_code == 0 and result.output.count(" ok") == 4


def test_a_diverging_run_names_the_quantity_epoch_and_minibatch_without_raw_warnings(data_env, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "npdvae.cli", "train", "--lr", "1e6", "--epochs", "2", *SMALL,
                             "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "NPDVAE_DATA_DIR": str(data_env)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the training bound became nan in epoch 1, minibatch " in result.stderr
    assert "Warning" not in result.stderr and "Traceback" not in result.stderr
    assert f"npdvae train --resume --out {out} --lr 100000" in result.stderr
    assert load_checkpoint(out / "last.h5").epoch == 0


def test_train_options_default_to_the_configuration_defaults():
    from dataclasses import fields

    from npdvae.cli.train import train
    from npdvae.training.config import TrainConfig
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    context = train.make_context("train", [], resilient_parsing=True)
    options = {p.name: p.get_default(context) for p in train.params if p.name in defaults}
    assert len(options) > 15 and options["batch_size"] == 100
    for name, default in options.items():
        if isinstance(default, (bool, int, float, str)):   # no default given: TrainConfig decides
            assert default == defaults[name], name


@pytest.mark.parametrize("command", [
    ["train", "--out", "{long}"], ["train", "--resume", "--out", "{long}"], ["sample", "{tmp}", "--out", "{long}.png"],
    ["plot", "{tmp}", "--out", "{long}.png"], ["reproduce", "table1", "--out", "{long}"], ["bench", "--json", "{long}.json"],
    ["export", "{tmp}", "--out", "{long}.h5"], ["train", "--out", "{deep}"],
])
def test_a_path_too_long_for_the_system_is_one_line_naming_the_option(tmp_path, command):
    long, deep = tmp_path / ("x" * 300), tmp_path.joinpath(*["y" * 200] * 25)
    args = [a.format(long=long, deep=deep, tmp=tmp_path) for a in command]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "longer than the" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_runs_of_other_settings_get_their_own_folder_and_a_taken_one_says_both_ways_out(tmp_path, mnist_root,
                                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["train", "--epochs", "1", "--train-examples", "200", "--eval-examples", "20", "--k", "2",
            "--noise", "0.05", "--data-dir", str(mnist_root)]
    one = CliRunner().invoke(main, base)
    two = CliRunner().invoke(main, [*base, "--encoder-layers", "2"])
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert folders == ["mnist-elbo-k2-noise0.05-enc2-train200-eval20-seed0", "mnist-elbo-k2-noise0.05-train200-eval20-seed0"]
    taken = tmp_path / "runs" / folders[1]
    refused = CliRunner().invoke(main, [*base, "--hidden", "100", "--out", str(taken)])
    assert refused.exit_code == 2, refused.output
    assert "holds a run of other settings (hidden: checkpoint has 200, requested 100)" in refused.output
    assert "Choose another --out for this one, or continue that run with npdvae train --resume --out" in refused.output
    again = CliRunner().invoke(main, base)
    assert again.exit_code == 2 and "already holds this run" in again.output and "Use --resume" in again.output


def test_plot_labels_two_runs_of_one_model_by_their_folders(tmp_path, mnist_root):
    runs = []
    for seed in (0, 1):
        out = tmp_path / f"seed{seed}"
        result = CliRunner().invoke(main, ["train", "--epochs", "2", "--train-examples", "200", "--eval-examples",
                                           "20", "--seed", str(seed), "--out", str(out), "--data-dir", str(mnist_root)])
        assert result.exit_code == 0, result.output
        runs.append(str(out))
    plotted = CliRunner().invoke(main, ["plot", *runs, "--every", "1", "--out", str(tmp_path / "c.png")])
    if not HAVE_MATPLOTLIB:
        pytest.skip("the plot extra (matplotlib) is not installed")
    assert plotted.exit_code == 0, plotted.output
    header = plotted.output.splitlines()[0]
    assert "VAE (K=1), 1 hidden layer (seed0)" in header and "VAE (K=1), 1 hidden layer (seed1)" in header
    # two folders of one name (a run and its copy elsewhere) are told apart by their whole paths
    copy = tmp_path / "copy" / "seed0"
    shutil.copytree(runs[0], copy)
    plotted = CliRunner().invoke(main, ["plot", runs[0], str(copy), "--every", "1", "--out", str(tmp_path / "c.png")])
    assert plotted.exit_code == 0, plotted.output
    header = plotted.output.splitlines()[0]
    assert f"VAE (K=1), 1 hidden layer ({runs[0]})" in header and f"VAE (K=1), 1 hidden layer ({copy})" in header


def test_the_compile_notice_comes_right_before_the_compilation_and_only_once(data_env, tmp_path):
    # an empty Numba cache of its own: this process compiles every kernel, as a new installation does
    env = {**os.environ, "NPDVAE_DATA_DIR": str(data_env), "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}

    def train(name):
        done = subprocess.run([sys.executable, "-m", "npdvae.cli", "train", "--epochs", "1", *SMALL,
                               "--out", str(tmp_path / name)], cwd=REPO, capture_output=True, text=True,
                              env=env, timeout=900)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    lines = train("first")
    notice = next(i for i, line in enumerate(lines) if "compiling the Numba kernels" in line)
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["epoch"])
    assert notice == header - 1, lines   # after the data and the run folder, just before the table
    assert max(i for i, line in enumerate(lines) if "data:" in line) < notice
    assert not any("compiling" in line for line in train("second"))   # cached now


def test_a_finished_run_is_not_shrunk_nor_plotted_past_its_end_and_an_empty_folder_gets_no_resume_advice(
        data_env, tmp_path):
    """Issue 35: --resume --epochs below the epochs done is refused before config.json is touched;
    --from-epoch past the last epoch is refused, not an empty picture; plot of a folder that holds
    no run says so without telling to train."""
    out = tmp_path / "run"
    assert run("train", "--epochs", "2", *SMALL, "--out", out).exit_code == 0
    recorded = (out / "config.json").read_bytes()
    result = run("train", "--resume", "--epochs", "1", "--out", out)
    assert result.exit_code == 2 and "epochs 1 is fewer than the 2 epochs" in result.output, result.output
    assert (out / "config.json").read_bytes() == recorded
    result = run("plot", out, "--from-epoch", "100", "--out", tmp_path / "c.png")
    assert result.exit_code == 2 and "the runs end at epoch 2" in result.output and not (tmp_path / "c.png").exists()
    (tmp_path / "empty").mkdir()
    result = run("plot", tmp_path / "empty", "--out", tmp_path / "c.png")
    assert result.exit_code == 2 and "holds no run yet" in result.output and "--resume" not in result.output
    result = run("train", "--resume", "--out", tmp_path / "empty")
    assert result.exit_code == 2 and "start it without --resume" in result.output
