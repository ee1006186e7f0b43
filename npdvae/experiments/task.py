"""One run of a grid as a task: trained (or resumed) to its epochs, scored on the test set,
its ``eval.json`` written; and the wall-clock intervals such records keep."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from npdvae.evaluation.evaluate import evaluate_run
from npdvae.run_folder.run_files import replace_file
from npdvae.training.config import TrainConfig
from npdvae.training.selection import best_record
from npdvae.run_folder.evaluation_record import EVALUATION_NAME, evaluation_problem, read_evaluation
from npdvae.run_folder.identity import RUN_ID_KEY
from npdvae.run_folder.provenance import provenance
from npdvae.run_folder.runs import RunDirectoryError, load_trained, prepare_dataset, training
from npdvae.training.loop import split_bound
from npdvae.experiments.grids import run_problems


EVALUATED_CHECKPOINT = "best"


def run_one(config_dict: dict, run_dir: str, data_dir=None, is_samples=5000, is_examples=None,
            stop_requested=None) -> dict:
    """Train (or resume) one run to its epochs, evaluate it, write ``eval.json``.

    The test figures are those of the best checkpoint by validation bound, the
    model a user would keep and what ``npdvae evaluate`` scores by default. A
    finished run whose eval.json scored another checkpoint is evaluated again,
    without training; one asked for more epochs than it was trained for
    continues from its last checkpoint and is scored again. An ``eval.json``
    that is not this run's result (unreadable, another run's identity or
    configuration) is never counted: the run is scored again, and the returned
    ``notes`` say why."""
    run_dir = Path(run_dir)
    recorded, problems = run_problems(run_dir, config_dict)
    if problems:
        raise RunDirectoryError(f"{problems[0]}; choose another --out or move the folder aside")
    if recorded and config_dict["noise"] == 0:
        # a clean run shared by grids of different corruptions keeps the name it was trained under
        config_dict = dict(config_dict, noise_type=recorded["noise_type"])
    done_file = run_dir / EVALUATION_NAME
    earlier, notes = [], []
    done, problem = read_evaluation(done_file)
    if done is not None:
        run_id = recorded.get(RUN_ID_KEY) if recorded else done.get(RUN_ID_KEY)
        problem = evaluation_problem(done, recorded or config_dict, run_id)
    if problem:
        notes.append(f"{done_file} was not counted ({problem}); the run is scored again")
        done = None
    if done is not None:
        if done.get("checkpoint") == EVALUATED_CHECKPOINT and config_dict["epochs"] == done["config"]["epochs"]:
            return {**done, "done_before": True}   # nothing trained or scored by this call
        # more epochs asked for, or another checkpoint scored: continue and score again
        earlier = run_intervals(done, done_file)
    began_at = time.time()
    config = TrainConfig(**config_dict)
    dataset = prepare_dataset(config, data_dir)
    # the run's lock is the task's, not the worker process's: released when the task ends
    with training(config, run_dir, dataset, stop_requested=stop_requested) as trainer:
        # scoring last.h5 in place of a damaged or foreign best.h5 would mislabel the figures
        _, model, params = load_trained(run_dir, EVALUATED_CHECKPOINT, fall_back=False)
        history = trainer.history
        best = best_record(history)   # the epoch best.h5 holds, by the run's selection rule
        n_test = dataset.num_examples("test") if not is_examples else min(is_examples, dataset.num_examples("test"))
        start = time.perf_counter()
        test_bound = split_bound(model, params, dataset, config, split="test")
        ll = evaluate_run(model, params, dataset, config, "test", n_test, is_samples=is_samples)
        result = {
            "config": config.to_dict(), RUN_ID_KEY: trainer.run_id, "epochs": trainer.epoch,
            "checkpoint": EVALUATED_CHECKPOINT, "checkpoint_epoch": best["epoch"],
            "valid_bound": best["valid_bound"],
            "train_seconds": sum(h["seconds"] for h in history),
            "seconds_per_epoch": statistics.median(h["seconds"] for h in history) if history else None,
            "test_bound": test_bound, "test_examples": dataset.num_examples("test"),
            "log_likelihood": ll["log_likelihood"].mean, "log_likelihood_stderr": ll["log_likelihood"].stderr,
            "log_likelihood_examples": n_test, "is_samples": is_samples,
            "eval_seconds": time.perf_counter() - start,
            "provenance": provenance(),   # the code and libraries that scored it
            # wall-clock intervals of the calls that worked on this run
            "intervals": earlier + [[began_at, time.time()]],
        }
        replace_file(done_file, (json.dumps(result, indent=2) + "\n").encode())
        return {**result, "notes": notes} if notes else result


def run_intervals(result: dict, eval_file=None) -> list[list[float]]:
    """Wall-clock [start, end] of each call that worked on a finished run.

    Results written before ``eval.json`` carried them are placed by the file's
    modification time, reaching back by their training and evaluation seconds."""
    if "intervals" in result:
        return result["intervals"]
    end = Path(eval_file).stat().st_mtime
    return [[end - result["train_seconds"] - result["eval_seconds"], end]]


def busy_seconds(intervals) -> float:
    """Length of the union of (start, end) intervals: the wall time during which
    at least one run was going, so gaps between invocations do not count."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


