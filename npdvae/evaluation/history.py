"""A run's metric history, read for comparisons between runs.

``metrics.jsonl`` holds one record per epoch. To see where one run overtakes
another, the curves are read at milestones: the best validation bound reached
by each run up to every N-th epoch (model selection by validation bound, as
the tables do it, so the figure at epoch e is what a run stopped at e would
report).
"""

from __future__ import annotations


def best_so_far(history: list[dict], every: int) -> dict[int, float]:
    """{epoch: the validation bound of the run's best epoch up to it} at every ``every``-th
    epoch, and at the last one: the epoch its selection rule kept (the records' ``best``
    marks), which is the highest bound so far unless a rule such as the released script's
    looks only at some epochs. Epochs before the rule has kept any are left out."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    marks, best = {}, None
    for record in history:
        if record["best"]:   # marked when it became the run's best: a new, higher bound by its rule
            best = record["valid_bound"]
        if best is not None and (record["epoch"] % every == 0 or record is history[-1]):
            marks[record["epoch"]] = best
    return marks


def milestone_table(series: list[tuple[str, list[dict]]], every: int) -> str:
    """Markdown: one row per milestone epoch, one column per run (its best validation bound so far)."""
    marks = [best_so_far(history, every) for _, history in series]
    epochs = sorted({epoch for m in marks for epoch in m})
    lines = ["| epoch | " + " | ".join(label for label, _ in series) + " |",
             "|---|" + "---|" * len(series)]
    for epoch in epochs:
        cells = [f"{m[epoch]:.2f}" if epoch in m else "" for m in marks]
        lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
