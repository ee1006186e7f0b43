"""The folder a gaps analysis is kept in: continued only by its own model and settings, and never
left unreadable by a stop in the middle of a line."""

import numpy as np
import pytest

from npdvae.evaluation.gaps_record import (GapsRecord, GapsRecordError, finished_figures, images_problem,
                                            pairing_problem, params_digest)

SETTINGS = {"examples": 4, "seed": 0, "ais": {"steps": 3}}


def _record(folder, settings=SETTINGS, model="m" * 64):
    return GapsRecord(folder, settings, model)


def test_a_line_cut_short_is_cut_off_and_its_batch_done_again(tmp_path):
    record = _record(tmp_path)
    record.begin(np.array([0.1, 0.2, 0.3]))
    record.add("train", 0, {"log_px_ais": np.array([-1.0, -2.0])}, 0.01)
    record.add("train", 2, {"log_px_ais": np.array([-3.0, -4.0])}, 0.02)
    record.close()
    path = tmp_path / "gaps.jsonl"
    path.write_bytes(path.read_bytes()[:-25])          # a stop in the middle of the last line
    again = _record(tmp_path)
    assert set(again.batches) == {("train", 0)} and again.step_sizes.tolist() == [0.1, 0.2, 0.3]
    again.add("train", 2, {"log_px_ais": np.array([-3.0, -4.0])}, 0.02)
    again.add("test", 0, {"log_px_ais": np.array([-5.0, -6.0])}, 0.03)
    again.close()
    third = _record(tmp_path)                          # the redone batch is a line of its own
    assert set(third.batches) == {("train", 0), ("train", 2), ("test", 0)}
    np.testing.assert_array_equal(third.batches[("train", 2)]["figures"]["log_px_ais"], [-3.0, -4.0])
    third.close()


def test_another_model_or_other_settings_are_refused_by_name(tmp_path):
    record = _record(tmp_path)
    record.begin(np.ones(3))
    record.close()
    with pytest.raises(GapsRecordError, match="holds the gaps of another model"):
        _record(tmp_path, model="x" * 64)
    with pytest.raises(GapsRecordError, match=r"other settings \(examples 4 there, 5 here\)"):
        _record(tmp_path, settings={**SETTINGS, "examples": 5})


def test_a_damaged_middle_line_is_named(tmp_path):
    record = _record(tmp_path)
    record.begin(np.ones(3))
    record.add("train", 0, {"a": np.ones(2)}, 0.0)
    record.add("train", 2, {"a": np.ones(2)}, 0.0)
    record.close()
    lines = (tmp_path / "gaps.jsonl").read_text().splitlines()
    (tmp_path / "gaps.jsonl").write_text("\n".join([lines[0], "{oops", lines[2]]) + "\n")
    with pytest.raises(GapsRecordError, match="line 2: not a batch record"):
        _record(tmp_path)


def test_the_digest_tells_parameters_apart():
    a = {"w": np.zeros(3, np.float32)}
    assert params_digest(a) == params_digest({"w": np.zeros(3, np.float32)})
    assert params_digest(a) != params_digest({"w": np.array([0, 0, 1e-30], np.float32)})


def test_bytes_that_are_no_text_and_a_folder_that_cannot_be_made_are_named(tmp_path):
    from npdvae.run_folder.run_files import RunWriteError
    (tmp_path / "gaps.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(GapsRecordError, match="cannot be read as a gaps record"):
        _record(tmp_path)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(RunWriteError, match="Not a directory"):
        _record(tmp_path / "a-file" / "sub")


def test_a_finished_record_reads_back_its_images_in_order_and_an_unfinished_one_is_refused(tmp_path):
    record = _record(tmp_path)
    record.begin(np.ones(3))
    record.add("train", 0, {"log_px_ais": np.array([-1.0, -2.0])}, 0.25)
    record.add("test", 0, {"log_px_ais": np.array([-5.0])}, 0.5)
    record.add("train", 2, {"log_px_ais": np.array([-3.0])}, 0.125)
    with pytest.raises(GapsRecordError, match="no finished gaps analysis"):
        finished_figures(tmp_path)
    record.write_report({"done": True})
    record.close()
    header, figures = finished_figures(tmp_path)
    assert header == {"model": "m" * 64, "settings": SETTINGS, "images": None}   # a record without images
    np.testing.assert_array_equal(figures["train"]["log_px_ais"], [-1.0, -2.0, -3.0])
    np.testing.assert_array_equal(figures["test"]["log_px_ais"], [-5.0])
    np.testing.assert_array_equal(figures["train"]["q_star_last_change"], [0.25, 0.125])   # one per batch


def test_a_finished_folder_whose_header_is_not_a_gaps_header_is_named(tmp_path):
    (tmp_path / "gaps.jsonl").write_text('{"format": 1}\n')
    (tmp_path / "gaps.json").write_text("{}\n")
    with pytest.raises(GapsRecordError, match="not a gaps header"):
        finished_figures(tmp_path)


def test_a_batch_written_twice_counts_once(tmp_path):
    """Issue 35: a record whose batch line appears twice (copied, or written again) is read
    with each image once."""
    record = _record(tmp_path)
    record.begin(np.ones(3))
    record.add("train", 0, {"log_px_ais": np.array([-1.0, -2.0])}, 0.25)
    record.add("test", 0, {"log_px_ais": np.array([-5.0])}, 0.5)
    record.write_report({"done": True})
    record.close()
    lines = (tmp_path / "gaps.jsonl").read_text().splitlines()
    (tmp_path / "gaps.jsonl").write_text("\n".join(lines + [lines[1]]) + "\n")
    _, figures = finished_figures(tmp_path)
    np.testing.assert_array_equal(figures["train"]["log_px_ais"], [-1.0, -2.0])


def test_records_of_other_images_are_named_and_refused(tmp_path):
    images = {"dataset": "mnist", "binarization": "static", "binarization_seed": 0,
              "train": {"images": 2, "sha256": "a" * 64}, "test": {"images": 1, "sha256": "b" * 64}}
    record = GapsRecord(tmp_path, SETTINGS, "m" * 64, images)
    record.begin(np.ones(3))
    record.close()
    with pytest.raises(GapsRecordError, match="other images .*binarization_seed 0 against 1"):
        GapsRecord(tmp_path, SETTINGS, "m" * 64, {**images, "binarization_seed": 1})
    assert images_problem({"images": images}, {"images": {**images, "dataset": "frey-face"}}) == \
        "dataset 'mnist' against 'frey-face'"
    assert images_problem({"images": images}, {"images": {**images, "test": {"images": 1, "sha256": "c" * 64}}}) \
        == "other test images"
    assert images_problem({"images": images}, {"images": None}) is None and \
        images_problem({"images": images}, {"images": dict(images)}) is None


def test_two_analyses_pair_only_when_of_two_models_with_the_same_settings_and_images():
    images = {"dataset": "mnist", "binarization": "static", "binarization_seed": 0,
              "train": {"images": 2, "sha256": "a" * 64}, "test": {"images": 1, "sha256": "b" * 64}}
    first = {"model": "m" * 64, "settings": SETTINGS, "images": images}
    assert pairing_problem(first, {**first, "model": "n" * 64}) is None
    assert pairing_problem(first, first) == "are analyses of the same model"
    assert pairing_problem(first, {**first, "model": "n" * 64, "settings": {**SETTINGS, "seed": 3}}) == (
        "were analysed with other settings (seed 0 against 3); only analyses of the same images with the same "
        "settings are compared")
    other = {**first, "model": "n" * 64, "images": {**images, "binarization_seed": 1}}
    assert pairing_problem(first, other).startswith("are analyses of other images (binarization_seed 0 against 1)")
