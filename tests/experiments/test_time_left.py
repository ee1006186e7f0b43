"""The time a grid has left counts the runs in progress with the time they have had."""

import pytest

from npdvae.experiments.time_left import TimeLeft


def test_two_runs_side_by_side_are_nearly_done_when_the_first_ends():
    left = TimeLeft(runs=2, lanes=2, now=0.0)
    left.finished(now=100.0)
    assert left.seconds_left(now=100.0) == pytest.approx(0.0)   # the other started at 0 too
    left.finished(now=103.0)
    assert left.seconds_left(now=103.0) == 0.0


def test_runs_in_waves_count_the_waves_still_to_come():
    left = TimeLeft(runs=5, lanes=2, now=0.0)
    left.finished(now=100.0)        # run 1 ends and run 3 starts; run 2, begun at 0 too, is about to end
    # the lanes free at 100 (run 2) and 200 (run 3); runs 4 and 5 take them and end at 200 and 300
    assert left.seconds_left(now=100.0) == pytest.approx(200.0)
    left.finished(now=100.0)
    left.finished(now=200.0)
    assert left.seconds_left(now=200.0) == pytest.approx(100.0)


def test_one_at_a_time_is_the_number_of_runs_left_times_a_run():
    left = TimeLeft(runs=4, lanes=1, now=0.0)
    left.finished(now=60.0)
    assert left.seconds_left(now=60.0) == pytest.approx(180.0)


def test_runs_done_before_take_no_time_and_no_estimate_comes_before_a_trained_one():
    left = TimeLeft(runs=3, lanes=1, now=0.0)
    left.finished(now=0.5, trained=False)
    assert left.seconds_left(now=0.5) is None
    left.finished(now=100.5)
    assert left.seconds_left(now=100.5) == pytest.approx(100.0)


def test_a_run_that_takes_longer_than_the_mean_is_not_given_negative_time():
    left = TimeLeft(runs=2, lanes=2, now=0.0)
    left.finished(now=10.0)
    assert left.seconds_left(now=50.0) == 0.0


def test_a_grid_needs_a_lane():
    with pytest.raises(ValueError, match="lanes >= 1"):
        TimeLeft(runs=2, lanes=0, now=0.0)
