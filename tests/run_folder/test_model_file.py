import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from npdvae.cli.main import main
from npdvae.run_folder.checkpoint import CheckpointError, load_checkpoint
from npdvae.run_folder.model_card import model_card
from npdvae.run_folder.model_file import is_model_file, load_model_file, model_from_run, save_model_file
from npdvae.run_folder.provenance import PACKAGE_ROOT
from npdvae.experiments.grids import build_experiment, plan
from npdvae.experiments.reproduce import run_grid
from npdvae.run_folder.runs import load_trained, read_metrics

TINY = {"train_examples": 200, "eval_examples": 30, "latent": 4, "hidden": 16}


@pytest.fixture(scope="module")
def scored_runs(tmp_path_factory, mnist_root):
    """Two finished, scored runs of a tiny grid (noise 0 and 5%), shared by the tests below."""
    out = tmp_path_factory.mktemp("grid")
    grid = build_experiment("table1", {("DVAE (K=1)", 1)}, columns={"0%", "5%"})
    specs = plan(grid, out, 2, 1, TINY)
    run_grid(specs, jobs=1, data_dir=mnist_root, is_samples=5)
    return [spec.run_dir for spec in specs]


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_model_file_holds_the_best_checkpoint_curves_evaluation_and_provenance(scored_runs, tmp_path):
    run = scored_runs[1]
    save_model_file(tmp_path / "m.h5", model_from_run(run))
    model = load_model_file(tmp_path / "m.h5")
    best = load_checkpoint(f"{run}/best.h5")
    assert model.params.keys() == best.params.keys()
    for name, value in best.params.items():
        np.testing.assert_array_equal(model.params[name], value)
        assert model.params[name].dtype == value.dtype
    assert model.config == best.config and model.epoch == best.epoch
    assert model.run_id == best.run_id == json.loads(open(f"{run}/config.json").read())["run_id"]
    assert model.evaluation == json.loads(open(f"{run}/eval.json").read())
    history = read_metrics(run)
    np.testing.assert_array_equal(model.curves, [[h["epoch"], h["train_bound"], h["valid_bound"]] for h in history])
    with h5py.File(tmp_path / "m.h5") as f:
        assert set(f) == {"params", "curves"}          # no optimizer state, no random stream
    assert set(model.provenance["libraries"]) == {"numpy", "numba", "scipy", "h5py"}
    assert model.provenance["npdvae"] and model.provenance["date"].startswith("20")
    with h5py.File(f"{run}/best.h5") as f:   # the trainer's record, kept apart from the exporter's
        assert model.trained_by == json.loads(f.attrs["provenance"]) and model.trained_by["date"] <= model.provenance["date"]
    head = subprocess.run(["git", "-C", str(PACKAGE_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert model.provenance["git"]["commit"] == head.stdout.strip()
    assert is_model_file(tmp_path / "m.h5") and not is_model_file(f"{run}/best.h5")
    assert (tmp_path / "m.h5").stat().st_size < 0.6 * (Path(run) / "best.h5").stat().st_size


def test_the_curves_go_on_past_the_best_epoch_and_must_continue_its_history(tmp_path, mnist_root):
    """A run whose best epoch is not its last: the curves are those of every epoch trained."""
    run = tmp_path / "run"
    tiny = ["--train-examples", "200", "--eval-examples", "30", "--latent", "4", "--hidden", "16",
            "--data-dir", mnist_root]
    assert _cli("train", "--epochs", "1", *tiny, "--out", run).exit_code == 0
    shutil.copy(run / "best.h5", tmp_path / "best-at-1.h5")
    assert _cli("train", "--epochs", "3", "--resume", *tiny, "--out", run).exit_code == 0
    shutil.copy(tmp_path / "best-at-1.h5", run / "best.h5")   # as if epochs 2 and 3 had been worse
    model = model_from_run(run)
    assert model.epoch == 1
    np.testing.assert_array_equal(model.curves[:, 0], [1, 2, 3])
    np.testing.assert_array_equal(model.curves[:, 2], [h["valid_bound"] for h in read_metrics(run)])

    other = tmp_path / "other"
    assert _cli("train", "--epochs", "1", "--seed", "7", *tiny, "--out", other).exit_code == 0
    shutil.copy(other / "last.h5", run / "last.h5")
    with pytest.raises(CheckpointError, match="last.h5 does not continue .*best.h5"):
        model_from_run(run)
    (run / "last.h5").unlink()
    result = _cli("export", run, "--out", tmp_path / "m.h5")
    assert result.exit_code == 2 and "last.h5" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.h5").exists()


def test_evaluate_sample_and_reconstruct_take_a_model_file(scored_runs, tmp_path, mnist_root):
    run = scored_runs[1]
    result = _cli("export", run, "--out", tmp_path / "m.h5")
    assert result.exit_code == 0, result.output
    recorded = json.loads(open(f"{run}/eval.json").read())
    assert f"test bound {recorded['test_bound']:.2f}" in result.output
    card = (tmp_path / "m.md").read_text()   # the model card beside it, read from the model file
    assert f"| {recorded['test_bound']:.2f} | all {recorded['test_examples']} test images |" in card
    assert card == model_card(load_model_file(tmp_path / "m.h5"), "m.h5") and 'npdvae.load("m.h5")' in card
    config, _, params = load_trained(tmp_path / "m.h5")
    _, _, run_params = load_trained(run)
    assert all(np.array_equal(params[n], run_params[n]) for n in params)
    result = _cli("evaluate", tmp_path / "m.h5", "--is-samples", "5", "--json", "--data-dir", mnist_root)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{"):])
    assert round(payload["table_bound"], 2) == round(recorded["test_bound"], 2)   # the table's figure, back
    assert payload["published"]["test_bound"] == recorded["test_bound"]
    text = _cli("evaluate", tmp_path / "m.h5", "--is-samples", "5", "--data-dir", mnist_root).output
    assert re.search(rf"as tables score +{recorded['test_bound']:.2f}  nats", text), text
    assert "published with the model" in text and "trained by npdvae" in text
    pytest.importorskip("matplotlib")
    assert _cli("sample", tmp_path / "m.h5", "--n", "4", "--out", tmp_path / "s.png").exit_code == 0
    assert _cli("reconstruct", tmp_path / "m.h5", "--n", "2", "--out", tmp_path / "r.png",
                "--data-dir", mnist_root).exit_code == 0
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "r.png").stat().st_size > 0
    # the model file's curves are the run's: the same milestones as the run folder's
    from_model = _cli("plot", tmp_path / "m.h5", "--every", "1", "--out", tmp_path / "c1.png")
    from_run = _cli("plot", run, "--every", "1", "--out", tmp_path / "c2.png")
    assert from_model.exit_code == 0 and from_run.exit_code == 0, from_model.output
    assert from_model.output.splitlines()[:-1] == from_run.output.splitlines()[:-1]
    (tmp_path / "junk.h5").write_text("not HDF5")
    junk = _cli("plot", tmp_path / "junk.h5", "--out", tmp_path / "c3.png")
    assert junk.exit_code == 2 and "neither a run folder nor a model file" in junk.output


def test_a_foreign_evaluation_is_refused_not_published(scored_runs, tmp_path):
    clean, noisy = scored_runs
    shutil.copytree(clean, tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
    shutil.copy(f"{noisy}/eval.json", tmp_path / "run" / "eval.json")   # another cell's figures
    result = _cli("export", tmp_path / "run", "--out", tmp_path / "m.h5")
    assert result.exit_code == 2 and "is not the evaluation of" in result.output and "noise" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "m.h5").exists()


def test_an_evaluation_of_another_run_of_the_same_settings_is_refused(scored_runs, tmp_path):
    clean, _ = scored_runs
    shutil.copytree(clean, tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
    evaluation = json.loads((tmp_path / "run" / "eval.json").read_text())
    run_id = evaluation["run_id"]
    evaluation["run_id"] = "0" * 16 + run_id[16:]                   # same settings, another run
    (tmp_path / "run" / "eval.json").write_text(json.dumps(evaluation))
    result = _cli("export", tmp_path / "run", "--out", tmp_path / "m.h5")
    assert result.exit_code == 2 and f"it belongs to another run ({'0' * 16 + run_id[16:]}; this run is {run_id})" \
        in result.output
    assert not (tmp_path / "m.h5").exists()


def test_a_damaged_model_file_is_named_in_one_line(scored_runs, tmp_path):
    save_model_file(tmp_path / "m.h5", model_from_run(scored_runs[0]))
    with h5py.File(tmp_path / "m.h5", "r+") as f:
        data = f["params/decoder.logits.b"]
        data[0] = data[0] + 1                            # one flipped value, checksum unchanged
    with pytest.raises(CheckpointError, match="fails its checksum"):
        load_model_file(tmp_path / "m.h5")
    result = _cli("evaluate", tmp_path / "m.h5")
    assert result.exit_code == 2 and "fails its checksum" in result.output and "Traceback" not in result.output
    result = _cli("evaluate", tmp_path / "m.h5", "--checkpoint", "last")
    assert result.exit_code == 2 and "one checkpoint, the best" in result.output


@pytest.mark.parametrize("out, message", [("m.txt", "name it .h5"), ("missing/m.h5", "does not exist")])
def test_export_refuses_bad_output_paths_before_any_work(scored_runs, tmp_path, out, message):
    result = _cli("export", scored_runs[0], "--out", tmp_path / out)
    assert result.exit_code == 2 and message in result.output and not (tmp_path / out).exists()


def test_export_of_a_folder_that_is_not_a_run_says_so(tmp_path):
    result = _cli("export", tmp_path, "--out", tmp_path / "m.h5")
    assert result.exit_code == 2 and "holds no best.h5" in result.output


def test_evaluate_and_the_grid_share_one_protocol(scored_runs, mnist_root):
    """With its defaults, evaluate gives back the log p(x) the grid recorded, to the bit."""
    run = scored_runs[1]
    recorded = json.loads(open(f"{run}/eval.json").read())
    result = _cli("evaluate", run, "--split", "test", "--examples", recorded["log_likelihood_examples"],
                  "--is-samples", recorded["is_samples"], "--json", "--data-dir", mnist_root)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{"):])
    assert payload["log_likelihood"]["mean"] == recorded["log_likelihood"]
    assert payload["log_likelihood"]["stderr"] == recorded["log_likelihood_stderr"]


def test_runs_shows_a_scored_runs_test_figures_and_not_a_foreign_ones(scored_runs, tmp_path):
    from npdvae.run_folder.run_summary import summarize_run
    clean, noisy = scored_runs
    scored = json.loads(open(f"{clean}/eval.json").read())
    summary = summarize_run(clean)
    assert (summary.test_bound, summary.log_likelihood) == (scored["test_bound"], scored["log_likelihood"])
    shutil.copytree(clean, tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
    shutil.copy(f"{noisy}/eval.json", tmp_path / "run" / "eval.json")
    assert summarize_run(tmp_path / "run").test_bound is None    # another cell's figures are not shown


@pytest.mark.parametrize("key, value", [("test_bound", float("nan")), ("log_likelihood", float("-inf"))])
def test_a_non_finite_evaluation_is_no_result(scored_runs, tmp_path, key, value):
    """Issue 35: an eval.json whose figure is NaN or infinite is listed by nobody, published by nobody."""
    clean, _ = scored_runs
    shutil.copytree(clean, tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
    evaluation = json.loads((tmp_path / "run" / "eval.json").read_text())
    evaluation[key] = value
    (tmp_path / "run" / "eval.json").write_text(json.dumps(evaluation))
    listed = _cli("runs", tmp_path / "run", "--json")
    assert listed.exit_code == 0, listed.output
    summary = json.loads(listed.output.splitlines()[0])
    assert summary["test_bound"] is None and summary["log_likelihood"] is None, summary
    result = _cli("export", tmp_path / "run", "--out", tmp_path / "m.h5")
    assert result.exit_code == 2 and "not a finite number" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.h5").exists()


def test_a_non_finite_bound_in_metrics_is_named_not_read(scored_runs, tmp_path):
    clean, _ = scored_runs
    shutil.copytree(clean, tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    record = json.loads(lines[-1])
    record["valid_bound"] = float("nan")
    (tmp_path / "run" / "metrics.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(record)]) + "\n")
    with pytest.raises(Exception, match=f"line {len(lines)}: not an epoch record .*finite"):
        read_metrics(tmp_path / "run")


def test_export_never_writes_into_another_run_folder(scored_runs, tmp_path):
    """Issue 35: --out naming another run's checkpoint (or any file of a run folder) is refused,
    and that run is left as it was."""
    clean, noisy = scored_runs
    for name in ("best.h5", "last.h5", "model.h5"):
        before = (Path(noisy) / "best.h5").read_bytes()
        result = _cli("export", clean, "--out", Path(noisy) / name)
        assert result.exit_code == 2 and "run folder" in result.output and "Traceback" not in result.output, name
        assert (Path(noisy) / "best.h5").read_bytes() == before
    assert not (Path(noisy) / "model.h5").exists() and not (Path(noisy) / "model.md").exists()


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_a_model_file_of_another_precision_is_named_not_a_traceback(scored_runs, tmp_path, mnist_root, dtype):
    """Issue 35: parameters of another float type, with valid checksums, are refused in one line."""
    model = model_from_run(scored_runs[0])
    model.params = {name: value.astype(dtype) for name, value in model.params.items()}
    save_model_file(tmp_path / "m.h5", model)
    result = _cli("evaluate", tmp_path / "m.h5", "--is-samples", "2", "--data-dir", mnist_root)
    assert result.exit_code == 2 and f"is {np.dtype(dtype).name}, not the float32" in result.output, result.output
    assert "Traceback" not in result.output


def test_export_removes_what_a_killed_export_left_and_nothing_of_a_live_one(scored_runs, tmp_path):
    """Issue 35: a SIGKILL while writing leaves MODEL.h5.PID.tmp; the next export removes it,
    and leaves a live writer's temporary alone."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = tmp_path / f"m.h5.{dead.pid}.tmp"
    orphan_card = tmp_path / f"m.md.{dead.pid}.tmp"
    live = tmp_path / f"m.h5.{os.getppid()}.tmp"   # our parent is alive
    for path in (orphan, orphan_card, live):
        path.write_bytes(b"half a file")
    result = _cli("export", scored_runs[0], "--out", tmp_path / "m.h5")
    assert result.exit_code == 0, result.output
    assert not orphan.exists() and not orphan_card.exists() and live.exists()
