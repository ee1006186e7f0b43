"""Faults injected on purpose, through real processes: signals at random moments, two
writers, damaged checkpoints, symlinks, a file-size limit, a gzip bomb and bad inputs.

Each test checks the exit code, the message (one line, never a traceback) and that
nothing outside the run folder changed.
"""

import gzip
import hashlib
import json
import os
import resource
import shutil
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from npdvae.run_folder.checkpoint import load_checkpoint, save_checkpoint
from npdvae.run_folder.runs import read_metrics
from tests.data.conftest import REPO
from npdvae.experiments.executor import TOKEN_NAME
from tests.grids import runs_past_an_epoch

TINY = ["--train-examples", "600", "--eval-examples", "60", "--latent", "8", "--hidden", "32"]
# 30 minibatches an epoch, and checkpoints of a few MB, so that a signal lands in all phases
RUN = ["--epochs", "3", "--k", "2", "--noise", "0.1", "--train-examples", "3000", "--eval-examples", "100",
       "--latent", "16", "--hidden", "256", "--seed", "5"]


def _env(mnist_root):
    return {**os.environ, "NPDVAE_DATA_DIR": str(mnist_root), "OPENBLAS_NUM_THREADS": "1"}


def npdvae(mnist_root, *args, preexec_fn=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "npdvae.cli", *map(str, args)], cwd=REPO, env=_env(mnist_root),
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec_fn,
                          stdin=subprocess.DEVNULL)


def start(mnist_root, *args):
    return subprocess.Popen([sys.executable, "-m", "npdvae.cli", *map(str, args)], cwd=REPO, env=_env(mnist_root),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def snapshot(folder, skip=None):
    """Every file under ``folder`` (but ``skip``), with the hash of its content."""
    found = {}
    for path in sorted(Path(folder).rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        if path.is_symlink():
            found[str(path)] = "link:" + os.readlink(path)
        elif path.is_file():
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def assert_one_line_error(result, code, fragment):
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output and "SystemError" not in output, output
    assert fragment in output, output


def params_of(path):
    return load_checkpoint(path).params


def metrics_without_time(run_dir):
    """The epoch records; the header line holds the run's identity, another in every run."""
    return [{k: v for k, v in record.items() if k != "seconds"} for record in read_metrics(run_dir)]


@pytest.fixture(scope="module")
def straight_run(mnist_root, tmp_path_factory):
    """The run that is never interrupted, to compare with."""
    out = tmp_path_factory.mktemp("straight") / "run"
    result = npdvae(mnist_root, "train", *RUN, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def _wait_for(predicate, process, timeout=120):
    deadline = time.monotonic() + timeout
    while not predicate() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)


def _continue(mnist_root, out):
    """What a user does after a stop: resume; where there is no run yet, start it."""
    result = npdvae(mnist_root, "train", "--resume", "--out", out)
    if result.returncode == 2 and "start it without --resume" in result.stderr:
        result = npdvae(mnist_root, "train", *RUN, "--out", out)
    return result


# when each signal is sent: after the step-0 checkpoint appears, plus a delay; "tmp" waits
# for a checkpoint's temporary file, to land inside a checkpoint write
SIGNAL_CASES = [
    (signal.SIGKILL, "start", 0.0), (signal.SIGKILL, "last.h5", 0.05), (signal.SIGKILL, "last.h5", 0.9),
    (signal.SIGKILL, "tmp", 0.0), (signal.SIGINT, "start", 0.3), (signal.SIGINT, "last.h5", 0.0),
    (signal.SIGINT, "last.h5", 0.6), (signal.SIGINT, "last.h5", 1.5), (signal.SIGTERM, "last.h5", 0.4),
]


@pytest.mark.parametrize("sig, after, delay", SIGNAL_CASES)
def test_a_signal_at_any_moment_then_resume_ends_bit_identical(mnist_root, straight_run, tmp_path, sig, after, delay):
    out = tmp_path / "run"
    before = snapshot(tmp_path)
    process = start(mnist_root, "train", *RUN, "--out", out)
    if after == "last.h5":
        _wait_for(lambda: (out / "last.h5").exists(), process)
    elif after == "tmp":
        _wait_for(lambda: (out / "best.h5").exists(), process)   # the first epoch's checkpoints
        _wait_for(lambda: any(out.glob("*.tmp")), process)       # the second epoch's being written
    time.sleep(delay)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=120)
    assert "Traceback" not in stderr and "SystemError" not in stderr, stderr
    if sig == signal.SIGINT and process.returncode != 0:
        # -2: the signal came while the interpreter was starting or shutting down, with Python's
        # handler not (or no longer) installed; what was saved is resumed and compared below
        assert process.returncode in (130, -signal.SIGINT), stderr
        if (out / "last.h5").exists() and "continue with" in stderr:
            assert f"continue with: npdvae train --resume --out {out}" in stderr
            assert len(stderr.strip().splitlines()) == 1, stderr
    if sig == signal.SIGTERM and process.returncode != 0:
        assert process.returncode in (143, -signal.SIGTERM), stderr
    result = _continue(mnist_root, out)
    assert result.returncode == 0, result.stdout + result.stderr
    straight, resumed = params_of(straight_run / "last.h5"), params_of(out / "last.h5")
    for name in straight:
        np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)
    assert metrics_without_time(out) == metrics_without_time(straight_run)
    assert not list(out.glob("*.tmp"))
    assert {p for p in snapshot(tmp_path) if not p.startswith(str(out))} == set(before)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_an_interrupt_mid_epoch_saves_that_point_and_says_how_to_continue(mnist_root, tmp_path, sig):
    out = tmp_path / "run"
    longer = [*RUN, "--train-examples", "20000"]   # 200 minibatches: time to land inside the epoch
    process = start(mnist_root, "train", *longer, "--out", out)
    _wait_for(lambda: (out / "metrics.jsonl").exists() and '"epoch"' in (out / "metrics.jsonl").read_text(), process)
    time.sleep(0.3)
    process.send_signal(sig)   # SIGHUP: the terminal or the SSH connection closed
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + sig, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{sig.name}: stopped in epoch 2 after minibatch "), stderr
    assert lines[0].endswith(f"continue with: npdvae train --resume --out {out}")
    state = load_checkpoint(out / "last.h5").epoch_state
    assert state is not None and 0 < state.position < 200
    result = npdvae(mnist_root, "train", "--resume", "--out", out)
    assert result.returncode == 0 and f"resumed in epoch 2 at minibatch {state.position}" in result.stdout


def test_the_continue_line_is_a_command_that_works_with_the_data_folder_given(mnist_root, tmp_path):
    out = tmp_path / "run"
    env = {k: v for k, v in _env(mnist_root).items() if k != "NPDVAE_DATA_DIR"}   # only --data-dir says where
    args = [*RUN, "--train-examples", "20000", "--out", out, "--data-dir", mnist_root]
    process = subprocess.Popen([sys.executable, "-m", "npdvae.cli", "train", *map(str, args)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    _wait_for(lambda: (out / "metrics.jsonl").exists() and '"epoch"' in (out / "metrics.jsonl").read_text(), process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    command = stderr.strip().split("continue with: ", 1)[1]
    assert command.endswith(f"--data-dir {mnist_root}")
    words = shlex.split(command)
    assert words[:2] == ["npdvae", "train"]
    resumed = subprocess.run([sys.executable, "-m", "npdvae.cli", *words[1:], "--epochs", "2"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0 and "resumed in epoch 2" in resumed.stdout, resumed.stderr


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_evaluation_ends_in_one_line(mnist_root, trained, tmp_path, sig, code):
    before = snapshot(trained)
    process = start(mnist_root, "evaluate", trained, "--split", "train", "--is-samples", "5000", "--batch-size", "5")
    # the data line comes once the command honours signals (it installs its handler first)
    before_data = []
    while not (line := process.stderr.readline()).startswith("data: "):
        assert line, "".join(before_data) + process.communicate(timeout=120)[1]   # ended before its data line
        before_data.append(line)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    assert lines[0].startswith(f"{sig.name}: evaluation stopped ") and "nothing was written" in lines[0]
    assert snapshot(trained) == before


def test_a_second_writer_is_refused_naming_the_first(mnist_root, tmp_path):
    out = tmp_path / "run"
    first = start(mnist_root, "train", "--epochs", "100000", *TINY, "--out", out)   # still going when asked
    _wait_for(lambda: (out / "last.h5").exists(), first)
    second = npdvae(mnist_root, "train", "--resume", "--out", out)
    assert_one_line_error(second, 1, f"is in use by another npdvae process (pid {first.pid})")
    fresh = npdvae(mnist_root, "train", *TINY, "--out", out)
    assert_one_line_error(fresh, 2, "already holds this run")
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 130, stderr
    epochs = [r["epoch"] for r in metrics_without_time(out)]
    assert epochs == list(range(1, len(epochs) + 1))   # one writer: no interleaved records


def test_a_folder_stopped_before_its_first_checkpoint_is_restarted_saying_so(mnist_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("")          # what a kill during creation could leave
    (out / "last.h5.123.tmp").write_bytes(b"x" * 100)
    result = npdvae(mnist_root, "train", *TINY, "--epochs", "1", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "held no checkpoint" in result.stdout and "started afresh" in result.stdout
    assert not list(out.glob("*.tmp")) and load_checkpoint(out / "last.h5").epoch == 1


@pytest.fixture(scope="module")
def trained(mnist_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    result = npdvae(mnist_root, "train", *TINY, "--epochs", "2", "--noise", "0.05", "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def _flip_a_parameter_byte(path):
    with h5py.File(path, "r") as f:
        dataset = f["params/decoder.logits.W"]
        offset = dataset.id.get_offset() + dataset.id.get_storage_size() // 2
    with open(path, "r+b") as raw:
        raw.seek(offset)
        byte = raw.read(1)
        raw.seek(offset)
        raw.write(bytes([byte[0] ^ 0x10]))


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _nan_parameter(path):
    checkpoint = load_checkpoint(path)
    checkpoint.params["decoder.logits.b"][3] = np.nan
    save_checkpoint(path, checkpoint)


def _external_link(path, outside):
    np.save(outside / "x.npy", np.zeros(3))
    with h5py.File(outside / "other.h5", "w") as other:
        other["w"] = np.zeros((32, 784), dtype=np.float32)
    with h5py.File(path, "r+") as f:
        del f["params/decoder.logits.W"]
        f["params/decoder.logits.W"] = h5py.ExternalLink(str(outside / "other.h5"), "/w")


def _external_dataset(path, outside):
    values = np.zeros((32, 784), dtype=np.float32)
    (outside / "raw.bin").write_bytes(values.tobytes())
    with h5py.File(path, "r+") as f:
        del f["params/decoder.logits.W"]
        f.create_dataset("params/decoder.logits.W", shape=values.shape, dtype=values.dtype,
                         external=[(str(outside / "raw.bin"), 0, values.nbytes)])


def _huge_array(path):
    """Issue 35: an array of 2^30 values that is a few kilobytes on disk (compressed zeros),
    which reading whole would turn into 4 GiB."""
    with h5py.File(path, "r+") as f:
        del f["params/decoder.logits.b"]
        f.create_dataset("params/decoder.logits.b", shape=(2 ** 30,), dtype=np.float32, chunks=(2 ** 20,),
                         compression="gzip", fillvalue=0)


def _attribute(name, value):
    def damage(path):
        with h5py.File(path, "r+") as f:
            f.attrs[name] = value
    return damage


DAMAGES = {
    "truncated": (_truncate, "unreadable checkpoint"),
    "flipped byte": (_flip_a_parameter_byte, "fails its checksum"),
    "NaN parameter": (_nan_parameter, "holds NaN or infinite values"),
    "external link": (_external_link, "is a ExternalLink"),
    "external dataset": (_external_dataset, "keeps its data outside the file"),
    "huge array": (_huge_array, "more than a model of its configuration has"),
    "epoch 'two'": (_attribute("epoch", "two"), "attribute 'epoch' must be an integer >= 0"),
    "epoch -5": (_attribute("epoch", -5), "attribute 'epoch' must be an integer >= 0"),
    "bad JSON": (_attribute("config", "{not json"), "attribute 'config' is not valid JSON"),
    "config of wrong types": (_attribute("config", json.dumps({"k": "five"})), "its configuration is not valid"),
}


def _damage(path, name, outside):
    damage, _ = DAMAGES[name]
    if damage in (_external_link, _external_dataset):
        damage(path, outside)
    else:
        damage(path)


@pytest.mark.parametrize("name", sorted(DAMAGES))
def test_a_damaged_checkpoint_is_named_and_never_used(mnist_root, trained, tmp_path, name):
    fragment = DAMAGES[name][1]
    outside = tmp_path / "outside"
    outside.mkdir()
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / ".lock").unlink(missing_ok=True)
    _damage(run / "best.h5", name, outside)
    before = snapshot(tmp_path, skip=run)
    # one damaged: the other is used, and that is said
    result = npdvae(mnist_root, "evaluate", run, "--examples", "5", "--is-samples", "5")
    assert result.returncode == 0, result.stderr
    assert fragment in result.stderr and "using" in result.stderr and "last.h5" in result.stderr
    # both damaged: a one-line error, nothing computed
    _damage(run / "last.h5", name, outside)
    result = npdvae(mnist_root, "evaluate", run, "--examples", "5", "--is-samples", "5")
    assert_one_line_error(result, 2, fragment)
    assert "Neither checkpoint can be used" in result.stderr
    result = npdvae(mnist_root, "train", "--resume", "--epochs", "3", "--out", run)
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr, result.stderr
    assert snapshot(tmp_path, skip=run) == before


def test_resume_falls_back_on_best_when_last_is_damaged(mnist_root, trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    _flip_a_parameter_byte(run / "last.h5")
    best_epoch = load_checkpoint(run / "best.h5").epoch
    result = npdvae(mnist_root, "train", "--resume", "--epochs", "3", "--out", run)
    assert result.returncode == 0, result.stderr
    assert "fails its checksum" in result.stdout and f"using {run / 'best.h5'} (epoch {best_epoch})" in result.stdout
    assert load_checkpoint(run / "last.h5").epoch == 3


def test_symlinks_in_a_run_folder_are_replaced_never_followed(mnist_root, trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("metrics.jsonl", "config.json", "samples.png"):
        target = outside / name
        shutil.copy(run / name, target)
        (run / name).unlink()
        (run / name).symlink_to(target)
    before = snapshot(outside)
    result = npdvae(mnist_root, "train", "--resume", "--epochs", "3", "--out", run)
    assert result.returncode == 0, result.stderr
    assert snapshot(outside) == before
    for name in ("metrics.jsonl", "config.json", "samples.png"):
        assert (run / name).is_file() and not (run / name).is_symlink()
    assert [r["epoch"] for r in metrics_without_time(run)] == [1, 2, 3]


def test_a_write_failure_names_the_file_and_keeps_the_previous_checkpoints(mnist_root, trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    limit = (run / "last.h5").stat().st_size // 2

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = npdvae(mnist_root, "train", "--resume", "--epochs", "3", "--out", run, preexec_fn=small_files)
    assert_one_line_error(result, 1, "File too large (EFBIG)")
    assert ".h5" in result.stderr and "continue with: npdvae train --resume" in result.stderr
    assert load_checkpoint(run / "last.h5").epoch == 2 and not list(run.glob("*.tmp"))
    result = npdvae(mnist_root, "train", "--resume", "--epochs", "3", "--out", run)
    assert result.returncode == 0 and load_checkpoint(run / "last.h5").epoch == 3


def test_a_gzip_bomb_is_refused_without_inflating_it(mnist_root, tmp_path):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (folder / name).symlink_to(mnist_root / "mnist" / name)
    member = gzip.compress(bytes(16 * 1024 * 1024), compresslevel=9)   # 16 MB of zeros in ~16 KB
    (folder / "train-images-idx3-ubyte.gz").write_bytes(member * 256)   # 4 GB inflated, 4 MB on disk
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "print(r.returncode); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
             "print(r.stdout + r.stderr)")
    result = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "npdvae.cli", "datasets", "verify",
                             "mnist", "--data-dir", str(tmp_path / "data")], cwd=REPO, env=_env(mnist_root),
                            capture_output=True, text=True, timeout=300)
    code, peak_kib, output = result.stdout.split("\n", 2)
    assert code == "1", output
    assert "decompresses to more than 94081056 bytes, while the file holds 47040016" in output and "Traceback" not in output
    assert int(peak_kib) < 1024 * 1024, f"peak {int(peak_kib) / 1024:.0f} MB"


def _bad_config(run, values):
    run.mkdir()
    (run / "config.json").write_text(values)


BAD_INPUTS = [
    (["train", "--seed", "-1", *TINY, "--out", "{tmp}/r"], 2, "--seed"),
    (["train", "--k", "99999999999999999999", *TINY, "--out", "{tmp}/r"], 2, "k must be smaller"),
    (["train", "--hidden", "100000", "--out", "{tmp}/r"], 2, "hidden must be smaller"),
    (["train", "--lr", "inf", *TINY, "--out", "{tmp}/r"], 2, "lr must be a finite number"),
    (["train", "--resume", "--out", "{tmp}/empty-config"], 2, "is not a valid configuration"),
    (["train", "--resume", "--out", "{tmp}/typed-config"], 2, "k must be an integer"),
    (["train", "--resume", "--out", "{tmp}/zero-batch"], 2, "batch_size must be >= 1"),
    (["train", "--resume", "--out", "{tmp}/nan-lr"], 2, "lr must be a finite number"),
    (["train", "--resume", "--out", "{tmp}/huge-hidden"], 2, "hidden must be smaller"),
    (["plot", "{tmp}/empty-config", "--out", "{tmp}/c.png"], 2, "is not a valid configuration"),
    (["sample", "{tmp}", "--out", "{tmp}/missing/s.png"], 2, "does not exist"),
    (["sample", "{tmp}", "--out", "{tmp}/samples"], 2, "must end in one of .png"),
    (["sample", "{tmp}", "--n", "20000"], 2, "--n"),
    (["reconstruct", "{tmp}", "--out", "{tmp}/missing/r.png"], 2, "does not exist"),
    (["reconstruct", "{tmp}", "--n", "10000"], 2, "--n"),
    (["plot", "{tmp}", "--out", "{tmp}/missing/c.png"], 2, "does not exist"),
    (["bench", "--json", "{tmp}/missing/b.json"], 2, "does not exist"),
    (["bench", "--json", "/proc/npdvae-bench.json"], 2, "/proc/npdvae-bench.json: cannot write in /proc"),
    (["reproduce", "table1", "--row", "DVAE (K=1)/1", "--row", "NOPE/1", "--out", "{tmp}/g"], 2,
     "'NOPE/1' is not a row of table1"),
    (["reproduce", "table1", "--train-examples", "1000000", "--out", "{tmp}/g"], 2,
     "train_examples 1000000 is more than the train split of mnist holds (50000 images)"),
    (["reproduce", "table1", "--train-examples", "50", "--out", "{tmp}/g"], 2,
     "batch_size 100 is larger than the training set (50 examples)"),
    (["train", "--dataset", "frey-face", "--noise", "1e308", "--out", "{tmp}/r"], 2, "no corruption to train with"),
    (["train", "--schedule", "released", "--epochs", "3", *TINY, "--out", "{tmp}/r"], 2,
     "the released schedule needs at least 6 epochs"),
    (["train", "--select-after", "1.5", *TINY, "--out", "{tmp}/r"], 2, "--select-after"),
    (["reproduce", "table1", "--optimizer", "sgd", "--out", "{tmp}/g"], 2, "--optimizer"),
    (["reproduce", "table1", *TINY[:4], "--row", "DVAE (K=1)/1", "--column", "0", "--seeds", "1", "--epochs", "1",
      "--out", "/dev/null"], 2, "cannot write to /dev/null: /dev/null is not a folder"),
    (["reproduce", "table1", *TINY[:4], "--row", "DVAE (K=1)/1", "--column", "0", "--seeds", "1", "--epochs", "1",
      "--out", "/proc/npdvae-grid"], 2, "cannot write to /proc/npdvae-grid"),
    (["reproduce", "table2", "--eval-examples", "200", "--out", "{tmp}/g"], 2,
     "eval_examples 200 is more than the valid and test splits of frey-face hold (98 images)"),
]


@pytest.mark.parametrize("args, code, fragment", BAD_INPUTS, ids=[" ".join(a[:3]) for a, _, _ in BAD_INPUTS])
def test_a_bad_input_is_one_line_and_creates_nothing(mnist_root, tmp_path, args, code, fragment):
    base = json.loads(json.dumps({"dataset": "mnist", "k": 1, "epochs": 1, "train_examples": 600,
                                  "eval_examples": 60, "latent": 8, "hidden": 32}))
    _bad_config(tmp_path / "empty-config", "")
    _bad_config(tmp_path / "typed-config", json.dumps({**base, "k": "five"}))
    _bad_config(tmp_path / "zero-batch", json.dumps({**base, "batch_size": 0}))
    _bad_config(tmp_path / "nan-lr", json.dumps({**base, "lr": float("nan")}))
    _bad_config(tmp_path / "huge-hidden", json.dumps({**base, "hidden": 20000}))
    before = snapshot(tmp_path)
    started = time.monotonic()
    result = npdvae(mnist_root, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert_one_line_error(result, code, fragment)
    assert time.monotonic() - started < 60        # refused before any work (bench would take minutes)
    assert snapshot(tmp_path) == before and not (tmp_path / "r").exists()


def test_ctrl_c_on_a_local_grid_stops_every_run_at_a_checkpoint_and_a_rerun_continues(mnist_root, tmp_path):
    out = tmp_path / "grid"
    args = ["reproduce", "table1", "--row", "DVAE (K=1)/1", "--column", "0", "--column", "5", "--seeds", "1",
            "--train-examples", "3000", "--eval-examples", "60", "--is-samples", "5", "--jobs", "2", "--out", out]
    driver = subprocess.Popen([sys.executable, "-m", "npdvae.cli", *map(str, args), "--epochs", "1000"], cwd=REPO,
                              env=_env(mnist_root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)   # its own process group, as a terminal's job
    # both runs are training, each past its first epoch
    _wait_for(lambda: runs_past_an_epoch(out) == 2, driver, timeout=300)
    os.killpg(driver.pid, signal.SIGINT)                # Ctrl-C reaches the driver and its pool alike
    _, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 130, stderr
    assert "Rerun the same command to continue" in stderr and "Traceback" not in stderr, stderr
    stopped = {run.name: load_checkpoint(run / "last.h5").epoch for run in out.glob("runs/*")}
    assert len(stopped) == 2 and all(epoch < 1000 for epoch in stopped.values())
    again = npdvae(mnist_root, *args, "--epochs", str(max(stopped.values()) + 1))
    assert again.returncode == 0, again.stderr
    assert "[2/2]" in again.stdout and (out / "table-row-DVAE_K=1_-1l-column-0-column-5.md").exists()


def _children(pid):
    import psutil
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_a_grid_driver_stopped_alone_takes_its_pool_with_it_and_a_rerun_continues(mnist_root, tmp_path, sig):
    """A signal to the driver only (kill PID, a closed terminal, the OOM killer): no pool
    process trains on as an orphan or holds a run's lock, and the same command continues."""
    psutil = pytest.importorskip("psutil", reason="psutil (with the cluster extra) finds the pool processes")
    out = tmp_path / "grid"
    args = ["reproduce", "table1", "--row", "DVAE (K=1)/1", "--column", "0", "--column", "5", "--seeds", "1",
            "--train-examples", "3000", "--eval-examples", "60", "--is-samples", "5", "--jobs", "2", "--out", out]
    driver = subprocess.Popen([sys.executable, "-m", "npdvae.cli", *map(str, args), "--epochs", "1000"], cwd=REPO,
                              env=_env(mnist_root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    _wait_for(lambda: len(list(out.glob("runs/*/metrics.jsonl"))) == 2, driver)
    pool = _children(driver.pid)
    assert len([p for p in pool if "spawn_main" in " ".join(p.cmdline())]) >= 2
    driver.send_signal(sig)                              # the driver alone, not its group
    _, stderr = driver.communicate(timeout=300)
    if sig == signal.SIGKILL:
        assert driver.returncode == -signal.SIGKILL
    else:
        assert driver.returncode == 128 + sig, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{sig.name}: stopped with 0 of 2 runs finished"), stderr
    gone, alive = psutil.wait_procs(pool, timeout=120)
    assert not alive, [p.cmdline() for p in alive]
    stopped = {run.name: load_checkpoint(run / "last.h5").epoch for run in out.glob("runs/*")}
    assert len(stopped) == 2
    again = npdvae(mnist_root, *args, "--epochs", str(max(stopped.values()) + 1))
    assert again.returncode == 0 and "in use by another" not in again.stderr, again.stderr
    assert "[2/2]" in again.stdout


def test_a_closed_standard_output_ends_quietly_with_the_run_saved(mnist_root, tmp_path):
    """npdvae train ... | head -3: the reader goes away; the run stops without a word on
    stderr, and what it saved continues."""
    out = tmp_path / "run"
    process = start(mnist_root, "train", *RUN, "--out", out)
    lines = [process.stdout.readline() for _ in range(3)]
    assert lines[-1], lines
    process.stdout.close()                                 # as head does after its lines
    _wait_for(lambda: False, process, timeout=300)         # until it ends
    stderr = process.stderr.read()
    process.wait(timeout=60)
    assert process.returncode == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    result = _continue(mnist_root, out)
    assert result.returncode == 0, result.stderr


def test_a_second_driver_on_the_same_grid_folder_is_refused_and_the_first_goes_on(mnist_root, tmp_path):
    out = tmp_path / "grid"
    args = ["reproduce", "table1", "--row", "DVAE (K=1)/1", "--column", "0", "--seeds", "1", "--epochs", "1000",
            "--train-examples", "3000", "--eval-examples", "60", "--is-samples", "5", "--out", out]
    first = start(mnist_root, *args)
    _wait_for(lambda: any(out.glob("runs/*/best.h5")), first)       # the first driver's run is training
    second = npdvae(mnist_root, *args)
    assert_one_line_error(second, 1, f"{out} is in use by another `npdvae reproduce` driving its grid "
                                     f"(pid {first.pid})")
    assert len((second.stdout + second.stderr).strip().splitlines()) == 2   # the header, then the refusal
    assert (out / TOKEN_NAME).is_file()       # the refused driver left the first one's shared-storage token
    epoch = load_checkpoint(next(out.glob("runs/*/best.h5"))).epoch
    _wait_for(lambda: load_checkpoint(next(out.glob("runs/*/last.h5"))).epoch > epoch + 1, first)
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 130 and "Rerun the same command to continue" in stderr, stderr
    assert "shared" not in stderr, stderr


def test_a_fifo_in_place_of_the_lock_is_named_not_waited_on(mnist_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    os.mkfifo(out / ".lock")
    result = npdvae(mnist_root, "train", *TINY, "--epochs", "1", "--out", out, timeout=120)
    assert_one_line_error(result, 1, f"cannot write {out / '.lock'}: it is not a regular file; remove it")
    (out / ".lock").unlink()
    assert npdvae(mnist_root, "train", *TINY, "--epochs", "1", "--out", out).returncode == 0


@pytest.mark.parametrize("edit, code, fragment", [
    (lambda config: config.update(noise_type=7), 1, "is not a valid configuration"),
    (lambda config: config.pop("noise_type"), 0, "[1/1]"),
])
def test_a_grid_whose_clean_runs_config_was_edited_is_one_line_or_counted(mnist_root, tmp_path, edit, code, fragment):
    """Issue 35: a clean run's config.json without noise_type, or with a noise_type that is no
    corruption, ends in one line (or is counted as the run it is), never a traceback."""
    args = ["reproduce", "table1", "--row", "DVAE (K=1)/1", "--column", "0", "--seeds", "1", "--epochs", "1",
            "--train-examples", "600", "--eval-examples", "60", "--is-samples", "5", "--out", tmp_path / "g"]
    assert npdvae(mnist_root, *args).returncode == 0
    (path,) = (tmp_path / "g").glob("runs/*/config.json")
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    result = npdvae(mnist_root, *args)
    assert result.returncode == code and fragment in result.stdout + result.stderr, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("kind", ["directory", "link", "link loop"])
def test_a_directory_or_link_in_place_of_the_lock_is_named_with_the_way_out(mnist_root, tmp_path, kind):
    """Issue 35: not ELOOP or EISDIR alone, but what is there and what to do."""
    out = tmp_path / "run"
    out.mkdir()
    if kind == "directory":
        (out / ".lock").mkdir()
    elif kind == "link":
        (out / ".lock").symlink_to(tmp_path / "elsewhere")
    else:
        (out / ".lock").symlink_to(out / ".lock")
    result = npdvae(mnist_root, "train", *TINY, "--epochs", "1", "--out", out)
    what = "a directory" if kind == "directory" else "a symbolic link"
    assert_one_line_error(result, 1, f"cannot write {out / '.lock'}: it is {what}, not a lock file; remove it")
    assert not (tmp_path / "elsewhere").exists()


IDLE_POOL_DRIVER = """
import sys, time
from npdvae.experiments.executor import local_executor
with local_executor(2) as (pool, _):
    for future in [pool.submit(time.sleep, 0.5) for _ in range(2)]:   # both processes start, then idle
        future.result()
    print("idle", flush=True)
    time.sleep(600)
"""


def test_a_killed_driver_leaves_no_idle_pool_process_behind(tmp_path):
    """Issue 35: SIGKILL of a grid driver while a pool process waits for work: that process
    (and so multiprocessing's resource tracker) ends, and the driver's output reaches its end."""
    psutil = pytest.importorskip("psutil", reason="psutil (with the cluster extra) finds the pool processes")
    driver = subprocess.Popen([sys.executable, "-c", IDLE_POOL_DRIVER], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert driver.stdout.readline().strip() == "idle", driver.stderr.read()
    children = _children(driver.pid)
    assert len([p for p in children if "spawn_main" in " ".join(p.cmdline())]) == 2
    driver.kill()
    driver.wait(timeout=60)
    gone, alive = psutil.wait_procs(children, timeout=120)
    assert not alive, [p.cmdline() for p in alive]
    assert driver.stdout.read() == ""        # end of file: nobody holds the driver's output any more
