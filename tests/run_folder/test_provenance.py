"""Provenance: the code and libraries behind a run, recorded where its results are."""

import json
import subprocess

import h5py

from npdvae.run_folder.provenance import PACKAGE_ROOT, describe, provenance
from npdvae.run_folder.runs import open_run
from tests.synthetic import synthetic_dataset
from tests.training.test_loop import small_config


def _head():
    head = subprocess.run(["git", "-C", str(PACKAGE_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    return head.stdout.strip() if head.returncode == 0 else None


def test_the_record_names_the_code_the_libraries_the_blas_the_host_and_the_date():
    record = provenance()
    assert set(record) == {"npdvae", "git", "libraries", "blas", "python", "platform", "host", "date"}
    assert set(record["libraries"]) == {"numpy", "numba", "scipy", "h5py"} and all(record["libraries"].values())
    assert record["host"] and record["date"].startswith("20") and record["date"].endswith("+00:00")
    if _head():
        assert record["git"]["commit"] == _head() and isinstance(record["git"]["dirty"], bool)
        assert describe(record).startswith(f"npdvae {record['npdvae']}, git {_head()[:12]}")
    assert describe(None) == "an npdvae that recorded no provenance"


def test_config_json_keeps_the_creators_provenance_and_each_checkpoint_its_writers(tmp_path):
    trainer = open_run(small_config(epochs=1), tmp_path / "run", synthetic_dataset())
    trainer.run()
    trainer.release()
    created = json.loads((tmp_path / "run" / "config.json").read_text())["provenance"]
    with h5py.File(tmp_path / "run" / "best.h5") as f:
        written = json.loads(f.attrs["provenance"])
    for record in (created, written):
        assert record["npdvae"] and record["libraries"]["numpy"]
        if _head():
            assert record["git"]["commit"] == _head()
    resumed = open_run(small_config(epochs=2), tmp_path / "run", synthetic_dataset(), resume=True)
    resumed.run()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["provenance"] == created
