"""Model selection: which epochs a run may keep as its best (``best.h5``, the one it is scored by).

By default every epoch is a candidate, and the best is the epoch of the highest validation
bound. The authors' released script (Timsud/DVAE, main_mnist.py) looks at the validation
bound only at every 50th epoch (its 0-based epoch index e with e % 50 == 0) and at its last,
and keeps a new best only once e > 0.4 x the epoch budget: ``select_every=50,
select_after=0.4``. Every epoch's validation bound is still computed and recorded here, for
the curves; only the choice of the best follows the rule.
"""

from __future__ import annotations


def is_selectable(epoch: int, epochs: int, every: int = 1, after: float = 0.0) -> bool:
    """Whether ``epoch`` (counted from 1) of a budget of ``epochs`` may become the best."""
    e = epoch - 1   # the released script's 0-based index
    on_schedule = e % every == 0 or epoch == epochs
    late_enough = after == 0 or e > after * epochs
    return on_schedule and late_enough


def mark_best(records: list[dict], epochs: int, every: int = 1, after: float = 0.0) -> list[dict]:
    """The records with ``best`` marked as training marks it: a new highest validation bound on
    an epoch the rule may keep. For records that were kept without their marks (a model file's
    curves)."""
    marked, best = [], float("-inf")
    for record in records:
        is_best = record["valid_bound"] > best and is_selectable(record["epoch"], epochs, every, after)
        best = record["valid_bound"] if is_best else best
        marked.append({**record, "best": is_best})
    return marked


def best_record(history: list[dict]) -> dict | None:
    """The epoch record the run keeps as its best: the last one marked ``best`` when it was
    written (so whatever rule chose it), or, for records that carry no marks, the highest
    validation bound."""
    marked = [record for record in history if record.get("best")]
    if marked:
        return marked[-1]
    if any("best" in record for record in history):
        return None   # records of a rule that has chosen nothing yet
    return max(history, key=lambda record: record["valid_bound"], default=None)


def describe_rule(every: int = 1, after: float = 0.0) -> str:
    """The selection rule in words, for the pages that describe a training (tables, model cards)."""
    if every == 1 and after == 0:
        return "the best epoch by validation bound"
    late = f" (none before {100 * after:g}% of the epochs)" if after else ""
    return f"the best validation bound at every {every} epochs and at the last{late}"
