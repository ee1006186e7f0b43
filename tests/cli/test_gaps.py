"""``npdvae gaps`` end to end on a tiny model trained on the real data: the report, its JSON,
bad input, and an interrupt."""

import json
import shutil
import os
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from npdvae.cli.main import main
from tests.cli.test_main import SMALL
from tests.data.conftest import REPO

QUICK = ["--examples", "4", "--ais-steps", "6", "--ais-chains", "2", "--leapfrog", "2", "--local-steps", "100",
         "--local-lr", "0.05", "--is-samples", "8", "--bound-samples", "64", "--warmup-examples", "2",
         "--batch-size", "2"]


@pytest.fixture(scope="module")
def trained(mnist_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("gaps") / "run"
    result = CliRunner().invoke(main, ["train", "--epochs", "1", *SMALL, "--out", str(out),
                                       "--data-dir", str(mnist_root)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out, mnist_root


def test_gaps_reports_every_figure_and_gap_with_errors(trained):
    run, data = trained
    result = CliRunner().invoke(main, ["gaps", str(run), *QUICK, "--json", "--data-dir", str(data)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["examples"] == {"train": 4, "test": 4} and report["settings"]["ais"]["steps"] == 6
    for subset in ("train", "test", "generalization"):
        entry = report[subset]
        for name in ("log_px_ais", "log_px_is", "bound_q_star", "bound_encoder", "approximation_gap",
                     "amortization_gap", "inference_gap"):
            assert set(entry[name]) == {"mean", "stderr", "n"} and entry[name]["stderr"] >= 0, (subset, name)
    test = report["test"]
    assert test["inference_gap"]["mean"] == pytest.approx(
        test["approximation_gap"]["mean"] + test["amortization_gap"]["mean"])
    # the search climbs from the encoder's Gaussian; after one epoch of training it has far to go
    assert test["amortization_gap"]["mean"] > 3 * test["amortization_gap"]["stderr"] > 0, test["amortization_gap"]

    table = CliRunner().invoke(main, ["gaps", str(run), *QUICK, "--data-dir", str(data)], catch_exceptions=False)
    assert table.exit_code == 0, table.output
    assert "approximation gap (AIS - q*)" in table.stdout and "train - test" in table.stdout
    assert "AIS: 6 steps from the encoder, 2 chains, 2 leapfrog steps" in table.stdout


@pytest.mark.parametrize("args, named", [
    (["gaps", "no-such-run"], "no-such-run"),
    (["gaps", "RUN", "--ais-chains", "0"], "--ais-chains"),
    (["gaps", "RUN", "--local-steps", "5"], "--local-steps"),
    (["gaps", "RUN", "--ais-start", "middle"], "--ais-start"),
    (["gaps", "RUN", "--local-lr", "nan"], "--local-lr"),
    (["gaps", "RUN", "--batch-size", "100000", "--ais-chains", "100000"], "--ais-chains"),
    (["gaps", "RUN", "--bound-samples", "10000000"], "--bound-samples"),
    (["gaps", "RUN", "--local-samples", "10000000"], "--local-samples"),
    (["gaps", "RUN", "--iw-k", "0"], "--iw-k"),
    (["gaps", "RUN", "--iw-k", "101"], "--iw-k"),   # more than the 100 bound samples it is scored on
])
def test_bad_gaps_input_is_a_usage_error_naming_it(trained, args, named):
    run, _ = trained
    result = CliRunner().invoke(main, [str(run) if a == "RUN" else a for a in args])
    assert result.exit_code == 2 and named in result.output and "Traceback" not in result.output


def test_an_interrupt_ends_gaps_in_one_line(trained):
    run, data = trained
    process = subprocess.Popen([sys.executable, "-m", "npdvae.cli", "gaps", str(run), "--examples", "200",
                                "--ais-steps", "400", "--ais-chains", "4", "--leapfrog", "4", "--local-steps", "20",
                                "--is-samples", "8", "--bound-samples", "4", "--warmup-examples", "2",
                                "--data-dir", str(data)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    lines = []
    for line in process.stderr:   # the warm-up's end is the signal that scoring has begun
        lines.append(line)
        if "warm-up: done" in line:
            process.send_signal(signal.SIGINT)
            break
    else:
        pytest.fail(f"gaps ended before its warm-up was over: {lines}")
    rest = process.stderr.read()
    assert process.wait(timeout=600) == 130, rest
    assert rest.strip().splitlines()[-1].startswith("SIGINT: gaps stopped in train"), rest
    assert "Traceback" not in rest and process.stdout.read() == ""


def _gaps(run, data, *extra):
    return [sys.executable, "-m", "npdvae.cli", "gaps", str(run), "--examples", "12", "--ais-steps", "60",
            "--ais-chains", "4", "--leapfrog", "3", "--local-steps", "20", "--is-samples", "8", "--bound-samples", "4",
            "--warmup-examples", "2", "--batch-size", "2", "--json", "--data-dir", str(data), *extra]


def test_a_stopped_analysis_in_a_folder_continues_to_the_uninterrupted_numbers(trained, tmp_path):
    import time
    run, data = trained
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    straight = subprocess.run(_gaps(run, data), cwd=REPO, capture_output=True, text=True, env=env, timeout=900)
    assert straight.returncode == 0, straight.stderr
    out = tmp_path / "gaps"
    process = subprocess.Popen(_gaps(run, data, "--out", str(out)), cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    record = out / "gaps.jsonl"
    deadline = time.monotonic() + 600
    while not (record.exists() and len(record.read_text().splitlines()) >= 3):   # the header and two batches
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=600)
    if process.returncode == 0:
        pytest.skip("the analysis finished before the interrupt arrived")
    assert process.returncode == 130 and "the same command continues" in stderr.splitlines()[-1], stderr
    resumed = subprocess.run(_gaps(run, data, "--out", str(out)), cwd=REPO, capture_output=True, text=True, env=env,
                             timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert "batches were done before" in resumed.stderr
    first, second = json.loads(straight.stdout), json.loads(resumed.stdout)
    for subset in ("train", "test", "generalization"):
        assert first[subset] == second[subset], subset
    assert json.loads((out / "gaps.json").read_text())["test"] == second["test"]

    other = subprocess.run(_gaps(run, data, "--out", str(out), "--ais-steps", "61"), cwd=REPO, capture_output=True,
                           text=True, env=env, timeout=900)
    assert other.returncode == 2 and "holds gaps of other settings" in other.stderr and "Traceback" not in other.stderr


def test_gaps_compare_subtracts_two_models_analyses_image_by_image(trained, tmp_path):
    run, data = trained
    other = tmp_path / "other-run"
    result = CliRunner().invoke(main, ["train", "--epochs", "1", *SMALL, "--seed", "1", "--out", str(other),
                                       "--data-dir", str(data)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    reports = {}
    for name, model in (("a", run), ("b", other)):
        result = CliRunner().invoke(main, ["gaps", str(model), *QUICK, "--json", "--out", str(tmp_path / name),
                                           "--data-dir", str(data)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        reports[name] = json.loads(result.stdout)
    compared = CliRunner().invoke(main, ["gaps-compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"],
                                  catch_exceptions=False)
    assert compared.exit_code == 0, compared.output
    difference = json.loads(compared.stdout)
    for subset in ("train", "test"):
        for name in ("log_px_ais", "bound_encoder", "amortization_gap"):
            expected = reports["b"][subset][name]["mean"] - reports["a"][subset][name]["mean"]
            assert difference[subset][name]["mean"] == pytest.approx(expected, abs=1e-9), (subset, name)
            assert difference[subset][name]["n"] == 4
    table = CliRunner().invoke(main, ["gaps-compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert table.exit_code == 0 and "minus" in table.stdout and "amortization gap (q* - encoder)" in table.stdout

    # another seed of the analysis scores other samples: refused, by name
    result = CliRunner().invoke(main, ["gaps", str(other), *QUICK, "--seed", "3", "--out", str(tmp_path / "c"),
                                       "--data-dir", str(data)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    refused = CliRunner().invoke(main, ["gaps-compare", str(tmp_path / "a"), str(tmp_path / "c")])
    assert refused.exit_code == 2 and "seed 0 against 3" in refused.output, refused.output
    same = CliRunner().invoke(main, ["gaps-compare", str(tmp_path / "a"), str(tmp_path / "a")])
    assert same.exit_code == 2 and "analyses of the same model" in same.output
    (tmp_path / "b" / "gaps.json").unlink()    # as if stopped before its end
    unfinished = CliRunner().invoke(main, ["gaps-compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert unfinished.exit_code == 2 and "no finished gaps analysis" in unfinished.output
    assert "Traceback" not in refused.output + unfinished.output


def test_a_diverging_search_for_q_star_is_one_line_naming_local_lr(trained):
    """Issue 35: --local-lr 100 makes Adam's search meet a non-finite gradient: one line and exit 1,
    not a traceback."""
    run, data = trained
    args = [a if a != "0.05" else "1e6" for a in QUICK]
    result = CliRunner().invoke(main, ["gaps", str(run), *args, "--data-dir", str(data)])
    assert result.exit_code == 1 and "give a smaller --local-lr" in result.output, result.output
    assert "Traceback" not in result.output


def test_gaps_compare_refuses_analyses_of_other_images(trained, tmp_path):
    """Issue 35: two static-binarization models of different seeds binarize the training images
    differently; their analyses are of other images and are not compared as if paired."""
    _, data = trained
    for seed in (1, 2):
        run = tmp_path / f"static-{seed}"
        result = CliRunner().invoke(main, ["train", "--epochs", "1", *SMALL, "--binarize", "static", "--seed",
                                           str(seed), "--out", str(run), "--data-dir", str(data)])
        assert result.exit_code == 0, result.output
        result = CliRunner().invoke(main, ["gaps", str(run), *QUICK, "--out", str(tmp_path / f"gaps-{seed}"),
                                           "--data-dir", str(data)])
        assert result.exit_code == 0, result.output
    header = json.loads((tmp_path / "gaps-1" / "gaps.jsonl").read_text().splitlines()[0])
    assert header["images"]["dataset"] == "mnist" and header["images"]["binarization_seed"] == 1
    refused = CliRunner().invoke(main, ["gaps-compare", str(tmp_path / "gaps-1"), str(tmp_path / "gaps-2")])
    assert refused.exit_code == 2 and "other images (binarization_seed 1 against 2)" in refused.output, refused.output
    assert "Traceback" not in refused.output


def test_gaps_says_when_it_analyses_last_h5_in_place_of_a_damaged_best(trained, tmp_path):
    run, data = trained
    shutil.copytree(run, tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
    (tmp_path / "run" / "best.h5").write_bytes(b"not HDF5")
    result = CliRunner().invoke(main, ["gaps", str(tmp_path / "run"), *QUICK, "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert "note:" in result.output and "last.h5" in result.output, result.output


def test_an_importance_weighted_models_gaps_add_its_k_bound_and_compare_it(trained, tmp_path):
    """The encoder's K-sample bound, with the K the model was trained with, beside its ELBO; and
    for an ELBO model only when --iw-k asks for it. The gaps themselves stay on the ELBO."""
    _, data = trained
    iwae = tmp_path / "iwae-run"
    result = CliRunner().invoke(main, ["train", "--epochs", "1", *SMALL, "--bound", "iwae", "--k", "4",
                                       "--out", str(iwae), "--data-dir", str(data)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["gaps", str(iwae), *QUICK, "--json", "--out", str(tmp_path / "a"),
                                       "--data-dir", str(data)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["settings"]["iw_k"] == 4
    for subset in ("train", "test"):
        entry = report[subset]
        # K samples tighten the encoder's bound; the amortization gap is still q*'s ELBO minus the encoder's
        assert entry["bound_encoder_iw"]["mean"] > entry["bound_encoder"]["mean"]
        assert entry["amortization_gap"]["mean"] == pytest.approx(
            entry["bound_q_star"]["mean"] - entry["bound_encoder"]["mean"], abs=1e-9)
    table = CliRunner().invoke(main, ["gaps", str(iwae), *QUICK, "--data-dir", str(data)], catch_exceptions=False)
    assert "K-sample bound of the encoder's q (K=4)" in table.stdout, table.stdout
    plain = CliRunner().invoke(main, ["gaps", str(iwae), *QUICK, "--iw-k", "1", "--json", "--data-dir", str(data)],
                               catch_exceptions=False)
    assert "bound_encoder_iw" not in json.loads(plain.stdout)["test"]
    # the same seed of the analysis scores the same draws: the ELBO is the one without the K bound
    assert json.loads(plain.stdout)["test"]["bound_encoder"] == report["test"]["bound_encoder"]

    second = tmp_path / "iwae-run-2"
    result = CliRunner().invoke(main, ["train", "--epochs", "1", *SMALL, "--bound", "iwae", "--k", "4", "--seed", "1",
                                       "--out", str(second), "--data-dir", str(data)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["gaps", str(second), *QUICK, "--json", "--out", str(tmp_path / "b"),
                                       "--data-dir", str(data)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    compared = CliRunner().invoke(main, ["gaps-compare", str(tmp_path / "a"), str(tmp_path / "b")],
                                  catch_exceptions=False)
    assert compared.exit_code == 0 and "K-sample bound of the encoder's q (K=4)" in compared.stdout, compared.output
    # an ELBO model's analysis asks for the K bound by --iw-k, and is then compared like for like
    run, _ = trained
    result = CliRunner().invoke(main, ["gaps", str(run), *QUICK, "--iw-k", "4", "--json", "--out",
                                       str(tmp_path / "c"), "--data-dir", str(data)], catch_exceptions=False)
    assert result.exit_code == 0 and json.loads(result.stdout)["settings"]["iw_k"] == 4
