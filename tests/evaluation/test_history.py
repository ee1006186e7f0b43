import pytest

from npdvae.evaluation.history import best_so_far, milestone_table


def records(bounds, selectable=lambda epoch: True):
    """Epoch records as the loop writes them: ``best`` marks a new highest bound on an epoch its
    selection rule may keep."""
    out, best = [], float("-inf")
    for i, b in enumerate(bounds):
        is_best = b > best and selectable(i + 1)
        best = b if is_best else best
        out.append({"epoch": i + 1, "valid_bound": b, "train_bound": b, "best": is_best})
    return out


def test_best_so_far_is_the_running_maximum_at_milestones_and_the_last_epoch():
    history = records([-110, -100, -105, -99, -101, -98, -120])
    assert best_so_far(history, 3) == {3: -100, 6: -98, 7: -98}
    assert best_so_far(history, 1)[5] == -99
    with pytest.raises(ValueError, match="every"):
        best_so_far(history, 0)


def test_best_so_far_follows_the_selection_rule_not_the_highest_bound():
    from npdvae.training.selection import best_record, is_selectable
    # the released script's rule on a budget of 7 epochs: every 3rd epoch (0-based 0, 3, 6) and
    # the last, and none before 0-based epoch 0.4 x 7 = 2.8
    history = records([-110, -100, -105, -99, -101, -98, -120], lambda e: is_selectable(e, 7, 3, 0.4))
    assert [r["epoch"] for r in history if r["best"]] == [4]   # e = 3; the last, epoch 7, is worse
    assert best_so_far(history, 1) == {4: -99, 5: -99, 6: -99, 7: -99}   # nothing kept before epoch 4
    assert best_record(history)["epoch"] == 4


def test_the_milestone_table_has_a_column_per_run_and_leaves_missing_epochs_empty():
    text = milestone_table([("clean", records([-100, -99])), ("noisy", records([-101, -98, -97, -96]))], 2)
    assert text.splitlines() == ["| epoch | clean | noisy |", "|---|---|---|",
                                 "| 2 | -99.00 | -98.00 |", "| 4 |  | -96.00 |"]
