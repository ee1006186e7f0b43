"""``npdvae reproduce`` on a real Dask cluster: a scheduler and two single-threaded workers,
as processes on 127.0.0.1 (ephemeral ports), stopped at teardown."""

import csv
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

from npdvae.run_folder.checkpoint import array_checksum, load_checkpoint
from npdvae.experiments.grids import build_experiment, plan
from npdvae.experiments.reproduce import run_grid
from npdvae.experiments.tables import write_outputs
from tests.data.conftest import REPO
from tests.grids import runs_past_an_epoch

pytest.importorskip("distributed", reason="the cluster extra is not installed: pip install -e '.[cluster]'")
pytest.importorskip("threadpoolctl", reason="the cluster extra is not installed: pip install -e '.[cluster]'")

from distributed import Client  # noqa: E402

TINY = {"train_examples": 300, "eval_examples": 30, "latent": 4, "hidden": 16}


def _env(mnist_root):
    return {**os.environ, "NPDVAE_DATA_DIR": str(mnist_root), "OPENBLAS_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO)}


def _start_scheduler(folder, env):
    scheduler_file = folder / "scheduler.json"
    process = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                               cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return process, json.loads(scheduler_file.read_text())["address"]


def _worker_command(address, name):
    return [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--nworkers", "1",
            "--host", "127.0.0.1", "--no-dashboard", "--name", name]


def _wait_for_workers(address, count):
    with Client(address, timeout=30) as client:
        client.wait_for_workers(count, timeout=120)


def _stop(processes):
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def cluster(mnist_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    env = _env(mnist_root)
    scheduler, address = _start_scheduler(folder, env)
    workers = [subprocess.Popen(_worker_command(address, f"w{i}"), cwd=folder, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for i in range(2)]
    try:
        _wait_for_workers(address, 2)
        yield address
    finally:
        _stop(workers + [scheduler])


def tiny_grid(out, epochs=2, seeds=2, overrides=TINY, lrs=None):
    grid = build_experiment("table1", {("DVAE (K=1)", 1)}, columns={"0%", "5%"})
    return grid, plan(grid, out, epochs, seeds, dict(overrides), lrs=lrs)


def _table_rows(path):
    """table.csv without what differs between two writings of one table: the runs' wall-clock
    seconds, and when (and by which BLAS threads) the table was written."""
    return [{k: v for k, v in row.items() if k not in ("seconds_per_epoch", "table_written_by")}
            for row in csv.DictReader(open(path))]


def test_a_grid_on_the_cluster_writes_the_table_of_the_local_grid(cluster, mnist_root, tmp_path):
    grid, specs = tiny_grid(tmp_path / "dask")
    on_cluster = run_grid(specs, data_dir=mnist_root, is_samples=5, scheduler=cluster)
    write_outputs(grid, specs, on_cluster, tmp_path / "dask")
    _, local_specs = tiny_grid(tmp_path / "local")
    local = run_grid(local_specs, jobs=1, data_dir=mnist_root, is_samples=5)
    write_outputs(grid, local_specs, local, tmp_path / "local")
    assert len(on_cluster) == 4 and all(r is not None for r in on_cluster)
    assert _table_rows(tmp_path / "dask" / "table.csv") == _table_rows(tmp_path / "local" / "table.csv")
    for a, b in zip(specs, local_specs):
        straight, there = load_checkpoint(Path(b.run_dir) / "last.h5"), load_checkpoint(Path(a.run_dir) / "last.h5")
        for name in straight.params:
            np.testing.assert_array_equal(there.params[name], straight.params[name])


def test_one_run_trains_to_the_same_bits_with_one_job_two_jobs_and_the_cluster(cluster, mnist_root, tmp_path):
    """Whatever BLAS threads this process has, each executor gives a run --threads-per-task (1)."""
    grid = build_experiment("table1", {("DVAE (K=1)", 1)}, columns={"5%"})
    checksums = {}
    for how, options in (("one job", {"jobs": 1}), ("two jobs", {"jobs": 2}), ("cluster", {"scheduler": cluster})):
        specs = plan(grid, tmp_path / how.replace(" ", "-"), 2, 1,
                     {"train_examples": 1000, "eval_examples": 100})   # hidden 200: matrices BLAS would thread
        run_grid(specs, data_dir=mnist_root, is_samples=5, **options)
        params = load_checkpoint(Path(specs[0].run_dir) / "last.h5").params
        checksums[how] = {name: array_checksum(value) for name, value in params.items()}
    assert checksums["one job"] == checksums["two jobs"] == checksums["cluster"]


def test_a_worker_killed_mid_run_has_its_run_continued_elsewhere_bit_identical(cluster, mnist_root, tmp_path):
    longer = {**TINY, "train_examples": 3000, "hidden": 64}
    grid, specs = tiny_grid(tmp_path / "dask", epochs=6, seeds=1, overrides=longer)
    specs = specs[1:]                                   # one run: 5% noise
    run_dir = Path(specs[0].run_dir)
    killed = {}

    def kill_the_worker_training_it():
        with Client(cluster, timeout=30) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                metrics = run_dir / "metrics.jsonl"
                if metrics.exists() and metrics.read_text().count('"epoch"') >= 2:
                    break
                time.sleep(0.05)
            busy = [worker for worker, tasks in client.processing().items() if tasks]
            pids = client.run(os.getpid, workers=busy)
            for worker, pid in pids.items():
                os.kill(pid, signal.SIGKILL)
                killed[worker] = pid

    import threading
    killer = threading.Thread(target=kill_the_worker_training_it)
    killer.start()
    results = run_grid(specs, data_dir=mnist_root, is_samples=5, scheduler=cluster)
    killer.join()
    assert killed, "no worker was found training the run"
    assert results[0]["epochs"] == 6
    _, local_specs = tiny_grid(tmp_path / "local", epochs=6, seeds=1, overrides=longer)
    run_grid(local_specs[1:], jobs=1, data_dir=mnist_root, is_samples=5)
    straight = load_checkpoint(Path(local_specs[1].run_dir) / "last.h5").params
    continued = load_checkpoint(run_dir / "last.h5").params
    for name in straight:
        np.testing.assert_array_equal(continued[name], straight[name], err_msg=name)
    _wait_for_workers(cluster, 2)   # the nanny brought the killed worker back for the next tests


def _reproduce(mnist_root, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "npdvae.cli", "reproduce", "table1", "--row", "DVAE (K=1)/1",
                           "--column", "5", "--seeds", "1", "--epochs", "1", "--train-examples", "300",
                           "--eval-examples", "30", "--is-samples", "5", *map(str, args)],
                          cwd=REPO, env=_env(mnist_root), capture_output=True, text=True, timeout=timeout)


def test_an_unreachable_scheduler_fails_in_seconds_and_writes_nothing(mnist_root, tmp_path):
    started = time.monotonic()
    result = _reproduce(mnist_root, "--scheduler", "tcp://127.0.0.1:9", "--out", tmp_path / "out")
    assert result.returncode == 1, result.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert time.monotonic() - started < 30
    assert not (tmp_path / "out").exists()


def test_the_command_runs_a_grid_on_the_cluster_and_reports_each_run(cluster, mnist_root, tmp_path):
    result = _reproduce(mnist_root, "--scheduler", cluster, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert f"on the Dask cluster at {cluster}" in result.stdout
    assert "[1/1] DVAE (K=1), 1 layer, 5%, seed 0, lr 0.001: test -bound" in result.stdout
    assert (tmp_path / "out" / "table-row-DVAE_K=1_-1l-column-5.csv").exists()


def test_an_out_folder_a_worker_cannot_see_fails_the_grid_saying_why(mnist_root, tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed: cannot give a worker its own file system view")
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a mount namespace here ({probe.stderr.decode().strip()})")
    shared = tmp_path / "shared"
    shared.mkdir()
    env = _env(mnist_root)
    scheduler, address = _start_scheduler(tmp_path, env)
    # this worker sees an empty tmpfs where the driver's --out is: storage that is not shared
    blind = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                              f"mount -t tmpfs none {shared} && exec \"$@\"", "sh",
                              *_worker_command(address, "blind")],
                             cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_workers(address, 1)
        result = _reproduce(mnist_root, "--scheduler", address, "--out", shared / "out")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "--out must be on storage shared by all workers" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    finally:
        _stop([blind, scheduler])


def test_ctrl_c_on_the_driver_stops_the_tasks_keeping_their_checkpoints(cluster, mnist_root, tmp_path):
    out = tmp_path / "out"
    args = ["--scheduler", cluster, "--out", out]
    driver = subprocess.Popen([sys.executable, "-m", "npdvae.cli", "reproduce", "table1", "--row", "DVAE (K=1)/1",
                               "--column", "0", "--column", "5", "--seeds", "1", "--epochs", "200",
                               "--train-examples", "2000", "--eval-examples", "30", "--is-samples", "5", *args],
                              cwd=REPO, env=_env(mnist_root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and driver.poll() is None and runs_past_an_epoch(out) < 2:
        time.sleep(0.1)
    driver.send_signal(signal.SIGINT)   # both tasks are training, each past its first epoch
    _, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 130, stderr
    assert "Rerun the same command to continue" in stderr and "Traceback" not in stderr
    for run_dir in out.glob("runs/*"):
        stopped = load_checkpoint(run_dir / "last.h5")
        assert stopped.epoch < 200                      # stopped, with a checkpoint to resume from
    _wait_for_workers(cluster, 2)
    with Client(cluster, timeout=30) as client:         # no task of the stopped grid still running
        deadline = time.monotonic() + 60
        while any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(client.processing().values())


def test_a_listener_that_is_not_a_dask_scheduler_fails_within_the_timeout(mnist_root, tmp_path):
    import socket
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    accepted = []

    def accept():   # and hold each connection open, answering nothing
        try:
            while True:
                accepted.append(listener.accept())
        except OSError:   # the listener was closed
            pass

    threading.Thread(target=accept, daemon=True).start()
    try:
        address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        result = _reproduce(mnist_root, "--scheduler", address, "--out", tmp_path / "out", timeout=300)
        assert result.returncode == 1, result.stderr
        assert f"no Dask scheduler answered at {address} within 15 s" in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert time.monotonic() - started < 120
        assert not (tmp_path / "out").exists()
    finally:
        listener.close()


@pytest.mark.parametrize("address, message", [("garbage!!", "missing port number"),
                                              ("foo://127.0.0.1:1", "unknown scheme 'foo'"),
                                              ("tcp://:8786", "no host name")])
def test_a_garbage_scheduler_address_is_a_usage_error_at_once(mnist_root, tmp_path, address, message):
    started = time.monotonic()
    result = _reproduce(mnist_root, "--scheduler", address, "--out", tmp_path / "out")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert time.monotonic() - started < 60 and not (tmp_path / "out").exists()


def test_a_scheduler_that_dies_mid_grid_is_said_so_and_the_grid_resumes_on_a_new_one(mnist_root, tmp_path):
    env = _env(mnist_root)
    scheduler, address = _start_scheduler(tmp_path, env)
    worker = subprocess.Popen(_worker_command(address, "w"), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    out = tmp_path / "out"
    try:
        _wait_for_workers(address, 1)
        driver = subprocess.Popen([sys.executable, "-m", "npdvae.cli", "reproduce", "table1", "--row", "DVAE (K=1)/1",
                                   "--column", "5", "--seeds", "1", "--epochs", "100000", "--train-examples", "300",
                                   "--eval-examples", "30", "--is-samples", "5", "--scheduler", address,
                                   "--out", str(out)],
                                  cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not list(out.glob("runs/*/best.h5")) and driver.poll() is None:
            time.sleep(0.1)
        assert list(out.glob("runs/*/best.h5")), driver.communicate(timeout=60)
        scheduler.kill()
        _, stderr = driver.communicate(timeout=600)
        assert driver.returncode == 1, stderr
        assert stderr.strip().splitlines() == [
            f"Error: the Dask scheduler at {address} went away; every run keeps its last checkpoint: start the "
            "scheduler and workers again and rerun the same command to resume"], stderr
    finally:
        _stop([worker, scheduler])
    (tmp_path / "scheduler.json").unlink()
    scheduler, address = _start_scheduler(tmp_path, env)   # a new cluster, the same folder
    worker = subprocess.Popen(_worker_command(address, "w"), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        _wait_for_workers(address, 1)
        run_dir, = out.glob("runs/*")
        trained = load_checkpoint(run_dir / "last.h5").epoch
        result = _reproduce(mnist_root, "--scheduler", address, "--out", out, "--epochs", trained + 1)
        assert result.returncode == 0, result.stderr
        assert load_checkpoint(run_dir / "last.h5").epoch == trained + 1
    finally:
        _stop([worker, scheduler])
