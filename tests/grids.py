"""What a test can read of a running grid's progress from its out folder."""
from pathlib import Path


def runs_past_an_epoch(out) -> int:
    """How many of the grid's runs have finished an epoch (and so hold a checkpoint):
    a Ctrl-C after that must leave each of them resumable from it."""
    return sum('"epoch"' in path.read_text() for path in Path(out).glob("runs/*/metrics.jsonl"))
