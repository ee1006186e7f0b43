import csv
import json
import shutil
from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st

from npdvae.cli.main import main
from npdvae.experiments.grids import RunSpec, build_experiment, grid_protocol, plan
from npdvae.experiments.reproduce import run_grid
from npdvae.experiments.tables import table_name, write_outputs
from npdvae.experiments.task import busy_seconds
from npdvae.run_folder.checkpoint import CheckpointError
from npdvae.training.config import TrainConfig
from npdvae.run_folder.runs import RunDirectoryError, open_run, prepare_dataset, read_metrics

TINY = {"train_examples": 200, "eval_examples": 30, "latent": 4, "hidden": 16}


def tiny_table1(out, epochs=2, seeds=2):
    grid = build_experiment("table1", {("DVAE (K=1)", 1), ("DIWAE (K=5)", 1)})
    grid.cells = [c for c in grid.cells if c.column in (0, 5)]
    return grid, plan(grid, out, epochs, seeds, TINY)


def test_grid_runner_writes_well_formed_tables(tmp_path, mnist_root):
    grid, specs = tiny_table1(tmp_path)
    results = run_grid(specs, jobs=1, data_dir=mnist_root, is_samples=20)
    table = write_outputs(grid, specs, results, tmp_path)
    markdown = (tmp_path / "table.md").read_text()
    assert "| DVAE (K=1) | 1 |" in markdown and "| DIWAE (K=5) | 1 |" in markdown
    assert "(96.14 ± 0.09)" in markdown and "(93.67 ± 0.10)" in markdown   # the paper's numbers beside ours
    bound_rows = markdown.split("Importance-sampled")[0].splitlines()[-4:]
    assert [line.count("**") for line in bound_rows if line.startswith("| D")] == [2, 2]  # one best per row
    assert "Importance-sampled log-likelihood" in markdown and "hours for 3280 epochs" in markdown
    assert "h of wall time with at least one run going" in markdown
    assert "These cells at the paper's budget (3280 epochs, 10 seeds)" in markdown
    assert "scored at its best epoch by validation bound" in markdown
    for spec, r in zip(specs, results):
        start, end = r["intervals"][-1]
        assert start <= end
        history = read_metrics(spec.run_dir)
        assert r["checkpoint_epoch"] == max(history, key=lambda h: h["valid_bound"])["epoch"]
    rows = list(csv.DictReader(open(tmp_path / "table.csv")))
    assert len(rows) == 4 and all(row["seeds"] == "2" for row in rows)
    for (row_key, column), entry in table.items():   # -bound: positive, and above -log p(x)
        assert entry["bound_stats"][0] > 0
        assert entry["bound_stats"][0] >= -entry["ll_stats"][0] - 1.0


def test_finished_runs_are_skipped_and_interrupted_runs_resume(tmp_path, mnist_root):
    grid, specs = tiny_table1(tmp_path, epochs=2, seeds=1)
    interrupted = specs[0]
    config = TrainConfig(**dict(interrupted.config, epochs=1))
    trainer = open_run(config, interrupted.run_dir, prepare_dataset(config, mnist_root))
    trainer.run()                                                                    # stopped after epoch 1
    trainer.release()   # the grid's pool process takes it next
    first_epoch = read_metrics(interrupted.run_dir)[0]
    run_grid(specs, jobs=1, data_dir=mnist_root, is_samples=10)
    history = read_metrics(interrupted.run_dir)
    assert [h["epoch"] for h in history] == [1, 2] and history[0] == first_epoch
    stamps = {s.run_dir: (tmp_path / s.run_dir / "eval.json").stat().st_mtime_ns for s in specs}
    again = run_grid(specs, jobs=1, data_dir=mnist_root, is_samples=10)
    assert {s.run_dir: (tmp_path / s.run_dir / "eval.json").stat().st_mtime_ns for s in specs} == stamps
    assert all(r["epochs"] == 2 for r in again)


def test_a_seed_trained_alone_is_the_same_run_a_later_full_grid_counts(tmp_path, mnist_root):
    grid, alone = tiny_table1(tmp_path, epochs=1, seeds=[1])
    assert [s.seed for s in alone] == [1] * len(grid.cells)
    run_grid(alone, jobs=1, data_dir=mnist_root, is_samples=5)
    stamps = {s.run_dir: (tmp_path / s.run_dir / "eval.json").stat().st_mtime_ns for s in alone}
    _, full = tiny_table1(tmp_path, epochs=1, seeds=2)
    results = run_grid(full, jobs=1, data_dir=mnist_root, is_samples=5)
    assert {s.run_dir for s in alone} < {s.run_dir for s in full}
    assert {s.run_dir: (tmp_path / s.run_dir / "eval.json").stat().st_mtime_ns for s in alone} == stamps
    table = write_outputs(grid, full, results, tmp_path)
    assert {entry["seeds"] for entry in table.values()} == {2}
    with pytest.raises(ValueError, match="distinct seeds"):
        tiny_table1(tmp_path, seeds=[1, 1])


def test_reproduce_runs_the_authors_protocol_unless_told_otherwise():
    for name in ("table1", "table3", "figure1", "augmentation", "mean-image"):
        assert grid_protocol(name) == (3280, {"schedule": "staged", "clip_grad_norm": 5.0})
    assert grid_protocol("table2") == (100, {"schedule": "constant", "clip_grad_norm": None})
    assert grid_protocol("table1", epochs=7, clip_grad_norm=None) == (7, {"schedule": "staged", "clip_grad_norm": None})
    assert "authors' released protocol" in CliRunner().invoke(main, ["reproduce", "--help"]).output


def test_reproduce_command_without_protocol_options_records_the_authors_protocol(tmp_path, mnist_root):
    result = CliRunner().invoke(main, [
        "reproduce", "table1", "--epochs", "1", "--seeds", "1", "--row", "DVAE (K=1)/1", "--column", "5",
        "--is-samples", "5", "--train-examples", "200", "--eval-examples", "20", "--out", str(tmp_path / "a"),
        "--data-dir", str(mnist_root)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    config, = [json.loads(p.read_text()) for p in (tmp_path / "a" / "runs").glob("*/config.json")]
    assert (config["schedule"], config["clip_grad_norm"], config["binarize"]) == ("staged", 5.0, "static")
    result = CliRunner().invoke(main, [
        "reproduce", "table1", "--epochs", "1", "--seeds", "1", "--row", "DVAE (K=1)/1", "--column", "5",
        "--schedule", "constant", "--clip-grad-norm", "none", "--is-samples", "5", "--train-examples", "200",
        "--eval-examples", "20", "--out", str(tmp_path / "b"), "--data-dir", str(mnist_root)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    config, = [json.loads(p.read_text()) for p in (tmp_path / "b" / "runs").glob("*/config.json")]
    assert (config["schedule"], config["clip_grad_norm"]) == ("constant", None)
    # a schedule and clipping other than the usual ones name the table, so that it keeps its own file
    table = tmp_path / "b" / "table-schedule-constant-clip-grad-norm-none-row-DVAE_K=1_-1l-column-5.md"
    assert "no gradient clipping" in table.read_text()


@pytest.mark.parametrize("options, message", [
    (["--seed", "1", "--seeds", "2"], "give --seeds N or --seed S (repeatable), not both"),
    (["--seed", "1", "--seed", "1"], "seed 1 is given twice"),
    (["--seed", "-1"], "-1 is not in the range"),
    (["--clip-grad-norm", "0"], "a clipping norm must be a finite number > 0 (or 'none')"),
    (["--clip-grad-norm", "lots"], "'lots' is neither a number nor 'none'"),
])
def test_reproduce_rejects_bad_seed_and_clipping_options(tmp_path, options, message):
    result = CliRunner().invoke(main, ["reproduce", "table1", *options, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)).map(sorted), max_size=6))
def test_busy_seconds_is_the_length_of_the_union_of_intervals(intervals):
    covered = {t for start, end in intervals for t in range(start, end)}   # unit cells [t, t+1)
    assert busy_seconds(intervals) == len(covered)


def test_a_run_scored_by_an_older_version_is_scored_again_without_training(tmp_path, mnist_root):
    grid, specs = tiny_table1(tmp_path, epochs=2, seeds=1)
    spec = specs[0]
    first = run_grid([spec], jobs=1, data_dir=mnist_root, is_samples=10)[0]
    eval_file = Path(spec.run_dir) / "eval.json"
    older = {k: v for k, v in first.items() if k not in ("checkpoint", "checkpoint_epoch", "intervals")}
    eval_file.write_text(json.dumps(older))          # as written before runs were scored at "best"
    metrics = (Path(spec.run_dir) / "metrics.jsonl").read_text()
    again = run_grid([spec], jobs=1, data_dir=mnist_root, is_samples=10)[0]
    assert (Path(spec.run_dir) / "metrics.jsonl").read_text() == metrics   # no epoch trained again
    assert again["checkpoint"] == "best" and again["test_bound"] == first["test_bound"]
    assert len(again["intervals"]) == 2 and again["intervals"][0][1] <= again["intervals"][1][0] + 1.0


def test_a_finished_run_asked_for_more_epochs_continues_and_fewer_is_refused(tmp_path, mnist_root):
    grid, specs = tiny_table1(tmp_path, epochs=1, seeds=1)
    first = run_grid(specs[:1], jobs=1, data_dir=mnist_root, is_samples=10)[0]
    _, longer = tiny_table1(tmp_path, epochs=2, seeds=1)
    again = run_grid(longer[:1], jobs=1, data_dir=mnist_root, is_samples=10)[0]
    assert [h["epoch"] for h in read_metrics(longer[0].run_dir)] == [1, 2]
    assert again["epochs"] == 2 and again["config"]["epochs"] == 2 and len(again["intervals"]) == 2
    assert first["epochs"] == 1
    with pytest.raises(RunDirectoryError, match="trained for 2 epochs"):
        run_grid(specs[:1], jobs=1, data_dir=mnist_root, is_samples=10)


def test_parallel_jobs_give_the_same_results_as_serial(tmp_path, mnist_root):
    grid, specs = tiny_table1(tmp_path / "parallel", epochs=1, seeds=1)
    parallel = run_grid(specs[:2], jobs=2, data_dir=mnist_root, is_samples=10)
    _, serial_specs = tiny_table1(tmp_path / "serial", epochs=1, seeds=1)
    serial = run_grid(serial_specs[:2], jobs=1, data_dir=mnist_root, is_samples=10)
    for a, b in zip(parallel, serial):
        # one BLAS thread against two may sum in another order: equal to float32 rounding
        assert a["test_bound"] == pytest.approx(b["test_bound"], rel=1e-4)


def test_experiments_have_the_papers_grids():
    table1 = build_experiment("table1")
    assert len(table1.cells) == 6 * 4 and {c.column for c in table1.cells} == {0, 5, 10, 15}
    assert all(c.settings["binarize"] == "static" for c in table1.cells)
    table2 = build_experiment("table2")
    assert {c.settings["noise"] for c in table2.cells} == {0.0, 0.025, 0.05, 0.075}
    assert table2.higher_is_better and all(c.settings["dataset"] == "frey-face" for c in table2.cells)
    table3 = build_experiment("table3")
    assert {c.settings["encoder"] for c in table3.cells} == {"gru"} and len(table3.cells) == 8
    augmentation = build_experiment("augmentation")
    treatments = {(c.row, c.column): (c.settings["binarize"], c.settings["noise"]) for c in augmentation.cells}
    assert treatments[("VAE", "augmentation")] == ("dynamic", 0.0)
    assert treatments[("IWAE (K=5)", "denoising")] == ("static", 0.05)
    assert {c.settings["noise_type"] for c in build_experiment("mean-image").cells} == {"salt-pepper-released",
                                                                                        "mean-image"}
    assert sorted(c.settings["m"] for c in build_experiment("figure1").cells) == [1, 1, 5, 5, 10, 10]


def test_reproduce_command_runs_a_tiny_figure1(tmp_path, mnist_root, monkeypatch):
    monkeypatch.setenv("NPDVAE_DATA_DIR", str(mnist_root))
    result = CliRunner().invoke(main, [
        "reproduce", "figure1", "--epochs", "2", "--seeds", "1", "--row", "DVAE (K=1)/1", "--is-samples", "5",
        "--train-examples", "200", "--eval-examples", "20", "--out", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "[3/3]" in result.output
    assert (tmp_path / "figure1-row-DVAE_K=1_-1l.png").read_bytes()[:4] == b"\x89PNG"   # one row of two
    assert len(list(csv.DictReader(open(tmp_path / "table-row-DVAE_K=1_-1l.csv")))) == 3


def test_reproduce_rejects_a_row_that_does_not_exist(tmp_path):
    result = CliRunner().invoke(main, ["reproduce", "table1", "--row", "VAE/3", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--row" in result.output


@pytest.mark.parametrize("name", ["table1", "table3", "figure1", "augmentation"])
def test_mnist_experiments_default_to_the_released_codes_corruption_and_take_the_textbook_one(name):
    assert {c.settings["noise_type"] for c in build_experiment(name).cells} == {"salt-pepper-released"}
    textbook = build_experiment(name, noise_type="salt-pepper")
    assert {c.settings["noise_type"] for c in textbook.cells} == {"salt-pepper"}
    with pytest.raises(ValueError, match="noise_type"):
        build_experiment(name, noise_type="gaussian")


def test_frey_face_stays_gaussian():
    assert {c.settings["noise_type"] for c in build_experiment("table2").cells} == {"gaussian"}
    with pytest.raises(ValueError, match="noise_type must be gaussian"):
        build_experiment("table2", noise_type="salt-pepper-released")


def test_the_protocol_reaches_every_run_and_its_folder_name(tmp_path):
    protocol = dict(schedule="staged", clip_grad_norm=5.0, binarize="dynamic", lr=3e-4)
    released = plan(build_experiment("table1", columns={"0%", "5%"}), tmp_path, 3280, 2, protocol)
    textbook = plan(build_experiment("table1", noise_type="salt-pepper", columns={"0%", "5%"}), tmp_path,
                    3280, 2, protocol)
    assert len(released) == 6 * 2 * 2
    for spec in released + textbook:
        assert {k: spec.config[k] for k in protocol} == protocol and spec.config["epochs"] == 3280
        assert "-staged-clip5-dynamic-lr0.0003-seed" in spec.run_dir
    noisy = {s.run_dir for s in released if s.config["noise"] > 0}
    assert noisy.isdisjoint(s.run_dir for s in textbook)          # two corruptions never share a folder
    assert {s.run_dir for s in released if s.config["noise"] == 0} == \
        {s.run_dir for s in textbook if s.config["noise"] == 0}      # the clean runs are the same runs
    with pytest.raises(ValueError, match="cannot override k"):
        plan(build_experiment("table1"), tmp_path, 1, 1, {"k": 3})
    with pytest.raises(ValueError, match="binarize cannot be set for augmentation"):
        plan(build_experiment("augmentation"), tmp_path, 1, 1, {"binarize": "static"})


def test_the_released_scripts_settings_name_their_runs_and_the_defaults_keep_the_old_names(tmp_path):
    grid = build_experiment("table1", rows={("DVAE (K=1)", 1)}, columns={"0%", "5%"})
    released = dict(schedule="released", clip_grad_norm=5.0, binarize="static", optimizer="adam-released",
                    select_every=50, select_after=0.4)
    names = sorted(Path(s.run_dir).name for s in plan(grid, tmp_path, 5000, 1, released))
    assert names == ["DVAE_K=1_-1l-0_-clean-released-clip5-static-adam-released-sel50-after0.4-seed0",
                     "DVAE_K=1_-1l-5_-salt-pepper-released-released-clip5-static-adam-released-sel50-after0.4-seed0"]
    default = dict(schedule="staged", clip_grad_norm=5.0, binarize="static")
    names = sorted(Path(s.run_dir).name for s in plan(grid, tmp_path, 3280, 1, default))
    assert names == ["DVAE_K=1_-1l-0_-clean-staged-clip5-static-seed0",   # the published runs' folders
                     "DVAE_K=1_-1l-5_-salt-pepper-released-staged-clip5-static-seed0"]


def test_a_run_of_another_protocol_is_refused_not_counted(tmp_path, mnist_root):
    grid, specs = tiny_table1(tmp_path, epochs=1, seeds=1)
    run_grid(specs[:1], jobs=1, data_dir=mnist_root, is_samples=5)
    _, other = tiny_table1(tmp_path, epochs=1, seeds=1)
    other[0].config["lr"] = 3e-4                                   # same folder name, another protocol
    with pytest.raises(RunDirectoryError, match="another protocol .*lr: run has 0.001, grid asks 0.0003"):
        run_grid(other[:1], jobs=1, data_dir=mnist_root, is_samples=5)


def test_reproduce_command_records_the_protocol_in_configs_and_the_table(tmp_path, mnist_root, monkeypatch):
    monkeypatch.setenv("NPDVAE_DATA_DIR", str(mnist_root))
    result = CliRunner().invoke(main, [
        "reproduce", "table1", "--epochs", "2", "--seeds", "1", "--row", "DVAE (K=1)/1", "--column", "0",
        "--column", "5%", "--schedule", "staged", "--clip-grad-norm", "5", "--binarize", "static",
        "--is-samples", "5", "--train-examples", "200", "--eval-examples", "20", "--out", str(tmp_path)],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "[2/2]" in result.output
    configs = [json.loads(p.read_text()) for p in sorted((tmp_path / "runs").glob("*/config.json"))]
    assert [c["noise"] for c in configs] == [0.0, 0.05]
    assert all((c["schedule"], c["clip_grad_norm"], c["binarize"]) == ("staged", 5.0, "static") for c in configs)
    assert configs[1]["noise_type"] == "salt-pepper-released"
    assert not (tmp_path / ".npdvae-grid-token").exists()     # the storage check leaves nothing behind
    markdown = (tmp_path / "table-row-DVAE_K=1_-1l-column-0-column-5.md").read_text()
    assert "- corruption (5%): `salt-pepper-released`" in markdown
    assert "schedule staged, gradient norm clipped at 5.0, binarization static" in markdown
    rows = list(csv.DictReader(open(tmp_path / "table-row-DVAE_K=1_-1l-column-0-column-5.csv")))
    assert {(r["column"], r["noise_type"], r["schedule"]) for r in rows} == {
        ("0", "salt-pepper-released", "staged"), ("5", "salt-pepper-released", "staged")}


@pytest.mark.parametrize("options, message", [
    (["--column", "7"], "'7' is not a column of table1; its columns: 0%, 5%, 10%, 15%"),
    (["--noise-type", "gaussian"], "noise_type must be one of"),
    (["--binarize", "static"], None),
])
def test_reproduce_rejects_bad_protocol_options(tmp_path, options, message):
    if message is None:   # binarize is refused for augmentation only
        result = CliRunner().invoke(main, ["reproduce", "augmentation", *options, "--out", str(tmp_path / "o")])
        message = "binarize cannot be set for augmentation"
    else:
        result = CliRunner().invoke(main, ["reproduce", "table1", *options, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_several_learning_rates_are_an_axis_and_the_table_picks_by_validation(tmp_path, mnist_root):
    grid = build_experiment("table1", {("DVAE (K=1)", 1)}, columns={"0%", "5%"})
    specs = plan(grid, tmp_path, 2, 1, TINY, lrs=[1e-6, 1e-3])
    assert len(specs) == 4 and {s.config["lr"] for s in specs} == {1e-6, 1e-3}
    assert len({s.run_dir for s in specs}) == 4 and any("-lr1e-06-" in s.run_dir for s in specs)
    results = run_grid(specs, jobs=1, data_dir=mnist_root, is_samples=5)
    table = write_outputs(grid, specs, results, tmp_path)
    for entry in table.values():                     # 1e-6 barely moves from the initialization
        assert entry["lr"] == 1e-3 and entry["valid_by_lr"][1e-3] > entry["valid_by_lr"][1e-6]
    markdown = (tmp_path / "table.md").read_text()
    assert "[lr 0.001]" in markdown and "chosen among 0.001, 1e-06" in markdown
    rows = list(csv.DictReader(open(tmp_path / "table.csv")))
    assert [r["lr"] for r in rows] == ["0.001", "0.001"]
    with pytest.raises(ValueError, match="rates must differ"):
        plan(grid, tmp_path, 2, 1, TINY, lrs=[1e-3, 1e-3])


def test_a_finished_task_releases_its_runs_lock(tmp_path, mnist_root):
    """The lock is the task's: a worker process that ran a grid's task (here, this process,
    as --jobs 1 and a Dask worker do) does not keep another process from resuming its run."""
    import subprocess
    import sys
    _, specs = tiny_table1(tmp_path, epochs=1, seeds=1)
    run_grid(specs[:1], jobs=1, data_dir=mnist_root, is_samples=5)
    resumed = subprocess.run([sys.executable, "-m", "npdvae.cli", "train", "--resume", "--out", specs[0].run_dir,
                              "--epochs", "2", "--data-dir", str(mnist_root)], capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert [h["epoch"] for h in read_metrics(specs[0].run_dir)] == [1, 2]


def test_a_restricted_grid_writes_its_own_table_and_leaves_the_whole_one(tmp_path, mnist_root):
    base = ["reproduce", "table1", "--row", "DVAE (K=1)/1", "--epochs", "1", "--is-samples", "5",
            "--train-examples", "200", "--eval-examples", "20", "--out", str(tmp_path), "--data-dir", str(mnist_root)]
    whole = CliRunner().invoke(main, [*base, "--seeds", "1"], catch_exceptions=False)
    assert whole.exit_code == 0, whole.output
    part = tmp_path / "table-row-DVAE_K=1_-1l.md"        # the row restricts Table 1; every column, seed 0
    before = part.read_bytes()
    restricted = CliRunner().invoke(main, [*base, "--column", "5", "--seed", "0"], catch_exceptions=False)
    assert restricted.exit_code == 0, restricted.output
    assert part.read_bytes() == before
    assert (tmp_path / "table-row-DVAE_K=1_-1l-column-5-seed-0.md").is_file()
    assert f"wrote {tmp_path / 'table-row-DVAE_K=1_-1l-column-5-seed-0.md'}" in restricted.output
    assert table_name() == "table"
    assert table_name(protocol={"schedule": "staged", "clip_grad_norm": 5.0}) == "table"   # the published names
    assert table_name(columns={"5%"}, protocol={"schedule": "released", "encoder_gradient": "dreg"}) == \
        "table-schedule-released-encoder-gradient-dreg-column-5"


@pytest.mark.parametrize("options, named", [
    ([], "table-row-DVAE_K=1_-1l-column-5-seed-0"),   # the usual protocol: the name published tables have
    (["--noise-type", "salt-pepper-released", "--lr", "1e-3", "--clip-grad-norm", "5", "--binarize", "static",
      "--schedule", "staged"], "table-row-DVAE_K=1_-1l-column-5-seed-0"),   # the same, asked for by name
    (["--noise-type", "salt-pepper"], "table-noise-type-salt-pepper-row-DVAE_K=1_-1l-column-5-seed-0"),
    (["--lr", "3e-4,1e-3"], "table-lr-0.0003-0.001-row-DVAE_K=1_-1l-column-5-seed-0"),
    (["--clip-grad-norm", "none", "--binarize", "dynamic"],
     "table-clip-grad-norm-none-binarize-dynamic-row-DVAE_K=1_-1l-column-5-seed-0"),
])
def test_a_grid_of_another_protocol_writes_a_table_of_its_own(mnist_root, tmp_path, options, named):
    """Grids over one --out that differ in a grid-wide setting keep both tables: the name says
    every setting that is not the experiment's usual one."""
    args = ["reproduce", "table1", "--row", "DVAE (K=1)/1", "--column", "5", "--seed", "0", "--epochs", "1",
            "--is-samples", "2", "--is-examples", "2", "--train-examples", "200", "--eval-examples", "20",
            *options, "--out", str(tmp_path), "--data-dir", str(mnist_root)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / (named + '.md')}" in result.output
    assert sorted(p.name for p in tmp_path.glob("table*.md")) == [named + ".md"]


@pytest.mark.parametrize("gradient", ["standard", "dreg"])
def test_a_table_says_which_encoder_gradient_trained_its_runs(mnist_root, tmp_path, gradient):
    """The table's header and every CSV row name the estimator (and the other later settings),
    so a table read without its file name still says what it is."""
    args = ["reproduce", "table1", "--row", "DIWAE (K=5)/1", "--column", "5", "--seed", "0", "--epochs", "1",
            "--is-samples", "2", "--is-examples", "2", "--train-examples", "200", "--eval-examples", "20",
            "--encoder-gradient", gradient, "--out", str(tmp_path), "--data-dir", str(mnist_root)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    markdown, = tmp_path.glob("table*.md")
    rows = list(csv.DictReader(open(markdown.with_suffix(".csv"))))
    assert [(r["encoder_gradient"], r["optimizer"], r["select_every"], r["select_after"]) for r in rows] == \
        [(gradient, "adam", "1", "0.0")]
    named = "- the encoder's gradient: DReG (doubly reparameterized); the decoder's as usual"
    assert (named in markdown.read_text()) == (gradient == "dreg")
    assert ("encoder's gradient" in markdown.read_text()) == (gradient == "dreg")


@pytest.fixture(scope="module")
def scored_pair(tmp_path_factory, mnist_root):
    """A tiny finished grid of two cells (noise 0 and 5%), copied by the tests that tamper with it."""
    out = tmp_path_factory.mktemp("pair")
    grid, specs = tiny_table1(out, epochs=1, seeds=1)
    specs = [s for s in specs if s.cell.row == "DVAE (K=1)"]
    return out, specs, run_grid(specs, jobs=1, data_dir=mnist_root, is_samples=5)


def _copy_grid(scored_pair, tmp_path):
    out, specs, results = scored_pair
    shutil.copytree(out, tmp_path / "grid", ignore=shutil.ignore_patterns(".lock"))
    moved = [RunSpec(s.cell, s.seed, dict(s.config), str(tmp_path / "grid" / Path(s.run_dir).relative_to(out)))
             for s in specs]
    return moved, results


def test_another_cells_eval_json_is_not_counted_but_scored_again(scored_pair, tmp_path, mnist_root):
    specs, results = _copy_grid(scored_pair, tmp_path)
    clean, noisy = specs
    shutil.copy(Path(noisy.run_dir) / "eval.json", Path(clean.run_dir) / "eval.json")   # the 5% cell's figures
    metrics = (Path(clean.run_dir) / "metrics.jsonl").read_text()
    again = run_grid([clean], jobs=1, data_dir=mnist_root, is_samples=5)[0]
    assert again["test_bound"] == results[0]["test_bound"] != results[1]["test_bound"]   # its own figures
    assert "eval.json was not counted (noise: 0.05 against the run's 0.0)" in again["notes"][0]
    assert (Path(clean.run_dir) / "metrics.jsonl").read_text() == metrics                # nothing trained again
    assert json.loads((Path(clean.run_dir) / "eval.json").read_text())["run_id"] == results[0]["run_id"]


def test_an_eval_json_written_before_the_later_settings_existed_is_counted(scored_pair, tmp_path, mnist_root):
    """An eval.json of older code records no optimizer, encoder gradient, selection rule or corruption
    parameters: they were at their defaults, so the run is done, not scored again."""
    from npdvae.training.config import LATER_SETTINGS
    specs, results = _copy_grid(scored_pair, tmp_path)
    clean = specs[0]
    eval_file = Path(clean.run_dir) / "eval.json"
    record = json.loads(eval_file.read_text())
    for name in LATER_SETTINGS:
        record["config"].pop(name, None)
    eval_file.write_text(json.dumps(record))
    again = run_grid([clean], jobs=1, data_dir=mnist_root, is_samples=5)[0]
    assert again.get("done_before") and not again.get("notes"), again.get("notes")
    assert again["test_bound"] == results[0]["test_bound"]


def test_a_garbage_eval_json_is_named_and_the_run_scored_again(tmp_path, mnist_root):
    command = ["reproduce", "table1", "--row", "DVAE (K=1)/1", "--column", "0", "--seeds", "1", "--epochs", "1",
               "--is-samples", "5", "--train-examples", "200", "--eval-examples", "30", "--out", str(tmp_path),
               "--data-dir", str(mnist_root)]
    first = CliRunner().invoke(main, command)
    assert first.exit_code == 0, first.output
    eval_file, = tmp_path.glob("runs/*/eval.json")
    scored = json.loads(eval_file.read_text())
    eval_file.write_text("{not json")
    again = CliRunner().invoke(main, command)
    assert again.exit_code == 0 and "Traceback" not in again.output, again.output
    assert f"note: {eval_file} was not counted (it cannot be read" in again.output
    assert f"test -bound {-scored['test_bound']:.2f}" in again.output   # as the table prints it
    rerun = CliRunner().invoke(main, command)
    assert rerun.exit_code == 0 and ": done before (test -bound" in rerun.output and " left" not in rerun.output
    assert json.loads(eval_file.read_text())["test_bound"] == scored["test_bound"]


def test_another_runs_best_checkpoint_stops_the_run_in_a_grid(scored_pair, tmp_path, mnist_root):
    specs, _ = _copy_grid(scored_pair, tmp_path)
    clean, noisy = specs
    (Path(clean.run_dir) / "eval.json").unlink()                       # to be scored again
    shutil.copy(Path(noisy.run_dir) / "best.h5", Path(clean.run_dir) / "best.h5")
    with pytest.raises(CheckpointError, match="best.h5 is not this run's checkpoint.*move .* aside and train"):
        run_grid([clean], jobs=1, data_dir=mnist_root, is_samples=5)


def test_every_mismatching_run_is_listed_before_anything_trains(scored_pair, tmp_path, mnist_root):
    specs, _ = _copy_grid(scored_pair, tmp_path)
    other = [RunSpec(s.cell, s.seed, dict(s.config, epochs=1, lr=3e-4 if i == 1 else s.config["lr"]), s.run_dir)
             for i, s in enumerate(specs)]
    other[0].config["epochs"] = 1
    for name in ("last.h5", "best.h5"):   # the clean run says it was trained for 3 epochs
        with h5py.File(Path(specs[0].run_dir) / name, "r+") as f:
            f.attrs["epoch"] = 3
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "grid").rglob("*") if p.is_file()}
    with pytest.raises(RunDirectoryError) as raised:
        run_grid(other, jobs=1, data_dir=mnist_root, is_samples=5)
    message = str(raised.value)
    assert message.startswith("2 runs do not match this request: ")
    assert "was trained for 3 epochs" in message and "lr: run has 0.001, grid asks 0.0003" in message
    assert "\n" not in message
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "grid").rglob("*") if p.is_file()} == stamps


def test_eval_json_and_the_table_say_which_code_scored_and_wrote_them(scored_pair, tmp_path):
    import subprocess
    out, specs, results = scored_pair
    head = subprocess.run(["git", "-C", str(Path(__file__).parents[2]), "rev-parse", "HEAD"], capture_output=True,
                          text=True)
    for spec in specs:
        recorded = json.loads((Path(spec.run_dir) / "eval.json").read_text())["provenance"]
        if head.returncode == 0:
            assert recorded["git"]["commit"] == head.stdout.strip()
    grid = build_experiment("table1", {("DVAE (K=1)", 1)}, columns={"0%", "5%"})
    write_outputs(grid, specs, results, tmp_path)
    footer = [line for line in (tmp_path / "table.md").read_text().splitlines() if line.startswith("Provenance:")]
    assert len(footer) == 1 and "runs scored by npdvae " in footer[0] and "(2 runs)" in footer[0]
    assert "; table written by npdvae " in footer[0] and "BLAS " in footer[0] and " on " in footer[0]
    rows = list(csv.DictReader(open(tmp_path / "table.csv")))
    assert len(rows) == 2
    for row in rows:   # each row names the code that scored its own runs, and the table's writer
        assert row["scored_by"].startswith("npdvae ") and ";" not in row["scored_by"]
        assert row["table_written_by"] == footer[0].split("; table written by ", 1)[1].rstrip(".")
        if head.returncode == 0:
            assert head.stdout.strip()[:12] in row["scored_by"]


def test_the_wall_time_says_when_earlier_legs_of_a_run_were_not_timed(tmp_path):
    """A run stopped and resumed kept no wall time for the legs before the last: the table must
    not pass the last leg's hours off as the whole."""
    from types import SimpleNamespace

    from npdvae.experiments.tables import _untimed_legs
    spec = SimpleNamespace(run_dir=str(tmp_path))
    whole = {"train_seconds": 50.0, "intervals": [[0.0, 60.0]]}            # one leg: trained within its time
    resumed = {"train_seconds": 500.0, "intervals": [[1000.0, 1100.0]]}    # 400 s trained before this leg
    assert not _untimed_legs([spec], [whole])
    assert _untimed_legs([spec, spec], [whole, resumed])
    assert not _untimed_legs([spec, spec], [whole, None])                   # a run not finished is not counted
