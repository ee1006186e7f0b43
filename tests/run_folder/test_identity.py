"""A run's identity: a result file of another run is named and never used as this run's."""

import json
import shutil

import h5py
import pytest
from hypothesis import given, strategies as st

from npdvae.run_folder.checkpoint import CheckpointError, load_checkpoint
from npdvae.training.config import RESUMABLE_CHANGES
from npdvae.run_folder.identity import identity_problem, is_run_id, new_run_id, settings_digest
from npdvae.run_folder.runs import RunDirectoryError, load_trained, open_run, read_metrics, read_run_config
from tests.synthetic import synthetic_dataset
from tests.training.test_loop import small_config


def trained(folder, **overrides):
    trainer = open_run(small_config(epochs=2, **overrides), folder, synthetic_dataset())
    trainer.run()
    trainer.release()
    return trainer


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two finished runs of the same settings: only their identities tell them apart."""
    root = tmp_path_factory.mktemp("runs")
    return trained(root / "a"), trained(root / "b")


def copy_run(run, folder):
    shutil.copytree(run.run_dir, folder, ignore=shutil.ignore_patterns(".lock"))
    return folder


def test_a_run_gets_an_identity_that_every_result_file_carries(two_runs):
    a, b = two_runs
    assert is_run_id(a.run_id) and is_run_id(b.run_id) and a.run_id != b.run_id
    assert a.run_id.endswith(settings_digest(a.config.to_dict()))   # same settings, same hash part
    assert b.run_id.split("-")[1] == a.run_id.split("-")[1]
    assert json.loads((a.run_dir / "config.json").read_text())["run_id"] == a.run_id
    for name in ("best.h5", "last.h5"):
        assert load_checkpoint(a.run_dir / name).run_id == a.run_id
    assert json.loads((a.run_dir / "metrics.jsonl").read_text().splitlines()[0]) == {"run_id": a.run_id}


def test_resuming_keeps_the_identity_and_more_epochs_do_not_change_it(tmp_path):
    first = trained(tmp_path / "run")
    resumed = open_run(small_config(epochs=3), tmp_path / "run", synthetic_dataset(), resume=True)
    resumed.run()
    assert resumed.run_id == first.run_id
    assert load_checkpoint(tmp_path / "run" / "last.h5").run_id == first.run_id
    assert [h["epoch"] for h in read_metrics(tmp_path / "run")] == [1, 2, 3]


def test_another_runs_best_checkpoint_is_named_and_not_scored(two_runs, tmp_path):
    a, b = two_runs
    folder = copy_run(a, tmp_path / "run")
    shutil.copy(b.run_dir / "best.h5", folder / "best.h5")      # same settings, another run
    with pytest.raises(CheckpointError, match=rf"best.h5 is not this run's checkpoint: it belongs to another run "
                                              rf"\({b.run_id}; this run is {a.run_id}\)"):
        load_trained(folder, "best", fall_back=False)
    notes = []
    _, _, params = load_trained(folder, "best", notes)           # a reader is told, and given the run's own
    assert "belongs to another run" in notes[0] and "using" in notes[0] and "last.h5" in notes[0]
    for name, value in load_checkpoint(a.run_dir / "last.h5").params.items():
        assert (params[name] == value).all()


def test_resuming_from_another_runs_last_checkpoint_is_refused(two_runs, tmp_path):
    a, b = two_runs
    folder = copy_run(a, tmp_path / "run")
    shutil.copy(b.run_dir / "last.h5", folder / "last.h5")
    shutil.copy(b.run_dir / "best.h5", folder / "best.h5")
    with pytest.raises(CheckpointError, match="belongs to another run.*Neither checkpoint can be used"):
        open_run(small_config(epochs=3), folder, synthetic_dataset(), resume=True)


def test_another_runs_metrics_are_named(two_runs, tmp_path):
    a, b = two_runs
    folder = copy_run(a, tmp_path / "run")
    shutil.copy(b.run_dir / "metrics.jsonl", folder / "metrics.jsonl")
    with pytest.raises(RunDirectoryError, match=r"metrics.jsonl is not this run's: it belongs to another run"):
        read_metrics(folder)


def test_a_checkpoint_whose_identity_and_configuration_disagree_is_refused(two_runs, tmp_path):
    a, _ = two_runs
    folder = copy_run(a, tmp_path / "run")
    noisier = trained(tmp_path / "noisier", noise=0.3)
    shutil.copy(noisier.run_dir / "best.h5", folder / "best.h5")
    with h5py.File(folder / "best.h5", "r+") as f:   # another run's model, relabelled with this run's identity
        f.attrs["run_id"] = a.run_id
    with pytest.raises(CheckpointError, match=f"its configuration is not the one its run identity {a.run_id}"):
        load_trained(folder, "best", fall_back=False)


def test_a_config_json_stripped_of_its_identity_is_not_taken_for_an_old_runs(tmp_path):
    """Issue 35: its checkpoints and metrics.jsonl carry the identity, so config.json is not the
    run's record: the checkpoints' own configuration is used, and the reader is told."""
    run = trained(tmp_path / "old")
    config = json.loads((run.run_dir / "config.json").read_text())
    del config["run_id"]
    (run.run_dir / "config.json").write_text(json.dumps(config))
    _, _, params = load_trained(run.run_dir, "best", fall_back=False)
    assert all((params[name] == value).all() for name, value in load_checkpoint(run.run_dir / "best.h5").params.items())
    notes = []
    assert read_run_config(run.run_dir, notes).to_dict() == small_config(epochs=2).to_dict()
    assert "records no run identity" in notes[0] and "using the configuration stored in the checkpoint" in notes[0]


@pytest.mark.parametrize("edit", ["delete k", "noise 0.5", "another run's copy", "a symbolic link"])
def test_an_edited_or_foreign_config_json_is_named_and_the_checkpoints_configuration_used(two_runs, tmp_path, edit):
    """Issue 35: config.json is held to its identity and to the run's own checkpoints, which
    agree with each other and with metrics.jsonl: those are used, never refused for it."""
    a, b = two_runs
    folder = copy_run(a, tmp_path / "run")
    config = json.loads((folder / "config.json").read_text())
    if edit == "delete k":
        del config["k"]
    elif edit == "noise 0.5":
        config["noise"] = 0.5
    if edit == "another run's copy":
        shutil.copy(b.run_dir / "config.json", folder / "config.json")
    elif edit == "a symbolic link":
        (folder / "config.json").unlink()
        (folder / "config.json").symlink_to(b.run_dir / "config.json")
    else:
        (folder / "config.json").write_text(json.dumps(config))
    notes = []
    assert read_run_config(folder, notes).to_dict() == small_config(epochs=2).to_dict()
    assert "using the configuration stored in the checkpoint" in notes[0], notes
    _, _, params = load_trained(folder, "best", fall_back=False)   # the run's own checkpoints, not refused
    assert all((params[name] == value).all() for name, value in load_checkpoint(a.run_dir / "best.h5").params.items())


@given(st.sampled_from(RESUMABLE_CHANGES), st.sampled_from(["noise", "k", "hidden", "seed", "noise_type"]))
def test_the_identity_hash_holds_what_a_resume_must_keep(resumable, fixed):
    base = small_config().to_dict()
    changed = {"epochs": 9, "lr": 0.5, "patience": 3, "kernels": False,
               "noise_source": {"module": "moved", "description": "d", "level": "rate", "is_identity": False}}[resumable]
    other = {"noise": 0.2, "k": 4, "hidden": 9, "seed": 7, "noise_type": "salt-pepper"}[fixed]
    assert settings_digest({**base, resumable: changed}) == settings_digest(base)
    assert settings_digest({**base, fixed: other}) != settings_digest(base)
    assert new_run_id(base) != new_run_id(base)


def test_identity_problems_read_right():
    run_id = new_run_id(small_config().to_dict())
    config = small_config().to_dict()
    assert identity_problem(run_id, config, run_id) is None
    assert identity_problem(None, config, None) is None
    assert "carries no run identity" in identity_problem(None, config, run_id)
    assert "this run has no identity" in identity_problem(run_id, config, None)
    assert "malformed" in identity_problem("x-y", config, "x-y")
