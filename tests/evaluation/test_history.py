import pytest

from npdvae.evaluation.history import best_so_far, milestone_table


def records(bounds):
    return [{"epoch": i + 1, "valid_bound": b, "train_bound": b} for i, b in enumerate(bounds)]


def test_best_so_far_is_the_running_maximum_at_milestones_and_the_last_epoch():
    history = records([-110, -100, -105, -99, -101, -98, -120])
    assert best_so_far(history, 3) == {3: -100, 6: -98, 7: -98}
    assert best_so_far(history, 1)[5] == -99
    with pytest.raises(ValueError, match="every"):
        best_so_far(history, 0)


def test_the_milestone_table_has_a_column_per_run_and_leaves_missing_epochs_empty():
    text = milestone_table([("clean", records([-100, -99])), ("noisy", records([-101, -98, -97, -96]))], 2)
    assert text.splitlines() == ["| epoch | clean | noisy |", "|---|---|---|",
                                 "| 2 | -99.00 | -98.00 |", "| 4 |  | -96.00 |"]
