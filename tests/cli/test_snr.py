"""``npdvae snr`` on a published model, as a real process: the figures per estimator and K,
the decoder's the same under every estimator, and DReG's equal to STL's at K = 1."""

import json

import numpy as np

from npdvae.evaluation.snr import per_parameter_snr
from tests.data.conftest import REPO
from tests.test_faults import assert_one_line_error, npdvae

MODELS = REPO / "results" / "table1-released-3280-seed0-rerun" / "models"


def test_per_parameter_snr_is_mean_over_standard_deviation_and_skips_constants():
    draws = np.array([[1.0, 2.0, 5.0], [3.0, 2.0, 5.0], [2.0, 2.0, 5.0], [6.0, 2.0, 5.0]])
    snr = per_parameter_snr({"a": draws.sum(axis=0)}, {"a": (draws ** 2).sum(axis=0)}, len(draws))["a"]
    assert snr.shape == (1,)   # the two constant elements have no SNR
    assert np.isclose(snr[0], draws[:, 0].mean() / draws[:, 0].std(ddof=1))


def test_snr_reports_every_estimator_and_k_and_the_decoder_is_the_same_under_all(mnist_root):
    result = npdvae(mnist_root, "snr", MODELS / "dvae-k1-1l-noise5-seed0.h5", "--k", "1", "--k", "3",
                    "--draws", "4", "--examples", "8", "--corrupted", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["inputs"].startswith("corrupted") and report["examples"] == 8
    rows = {(r["estimator"], r["k"]): r for r in report["results"]}
    assert set(rows) == {(e, k) for e in ("standard", "stl", "dreg") for k in (1, 3)}
    for k in (1, 3):
        decoders = [rows[(e, k)]["groups"]["decoder"] for e in ("standard", "stl", "dreg")]
        assert decoders[0] == decoders[1] == decoders[2] and decoders[0]["parameters"] > 0
    assert rows[("stl", 1)]["groups"]["encoder"] == rows[("dreg", 1)]["groups"]["encoder"]
    assert rows[("standard", 3)]["groups"]["encoder"] != rows[("dreg", 3)]["groups"]["encoder"]
    assert "encoder.mu.W" in rows[("dreg", 3)]["arrays"]


def test_snr_of_a_clean_model_on_corrupted_inputs_is_one_line(mnist_root):
    result = npdvae(mnist_root, "snr", MODELS / "dvae-k1-1l-noise0-seed0.h5", "--corrupted", "--draws", "2")
    assert_one_line_error(result, 2, "was trained without corruption: give --clean")
    result = npdvae(mnist_root, "snr", MODELS / "dvae-k1-1l-noise0-seed0.h5", "--corrupted", "--noise", "0.05",
                    "--draws", "2", "--k", "1", "--estimator", "standard", "--examples", "4", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["inputs"] == "corrupted (salt-pepper-released 5%)"


def test_an_interrupted_snr_ends_in_one_line(mnist_root):
    import signal

    from tests.test_faults import start
    process = start(mnist_root, "snr", MODELS / "dvae-k1-1l-noise5-seed0.h5", "--draws", "100000", "--k", "50")
    while not (line := process.stderr.readline()).startswith("data: "):   # the handler is installed by then
        assert line, process.communicate(timeout=120)[1]
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().startswith("SIGINT: stopped after ")
    assert "nothing was written" in stderr and len(stderr.strip().splitlines()) == 1
