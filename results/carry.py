"""Carry unfinished runs from one machine to the next through git, and bring them back.

A long run outlives the machine it starts on. Its resumable state is four files of its run
folder: ``config.json``, ``metrics.jsonl``, ``last.h5`` and ``best.h5``; nothing else is
needed to continue it bit for bit (the lock, pictures and evaluation records are not). A run
whose selection rule has kept no epoch yet (the released rule keeps none before 40% of the
budget) has no ``best.h5``, and is carried with the other three.

    python results/carry.py save OUT CARRY --commit SHA -- npdvae reproduce ... --out OUT
        copies those files of every unfinished run under OUT/runs into CARRY/<run>/ and
        writes CARRY/README.md: the pinned commit, each run's epoch and best validation bound
        (read from its files), and the commands that restore and continue it;
    python results/carry.py restore CARRY OUT
        copies them back into OUT/runs/<run>/, fresh folders of the same names; the same
        command then continues every run from its carried epoch.

A run that is in use (a driver holds its lock) is refused: stop the driver first (Ctrl-C
writes a checkpoint), so that the four files agree with each other.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

CARRIED = ("config.json", "metrics.jsonl", "last.h5", "best.h5")
BEST = "best.h5"   # written at the first epoch the run's selection rule keeps


def _present(run: Path) -> list[str]:
    return [name for name in CARRIED if (run / name).is_file() and not (run / name).is_symlink()]


def _fail(message: str) -> None:
    sys.exit(f"carry: {message}")


def save(out: Path, carry: Path, commit: str, command: list[str]) -> list[str]:
    """Copy the unfinished runs of the grid folder ``out`` into ``carry``; their names."""
    import npdvae
    summaries = npdvae.runs(out / "runs")
    if not summaries:
        _fail(f"no run folders under {out / 'runs'}")
    rows = []
    for summary in summaries:
        run = Path(summary.path)
        if summary.state == "finished":
            continue
        if summary.state == "in use":
            _fail(f"{run} is in use ({summary.detail}): stop its driver first (Ctrl-C), then carry it")
        if summary.state != "interrupted":
            _fail(f"{run} is {summary.state}, and cannot be carried: {summary.detail}")
        needed = CARRIED if summary.best_epoch is not None else tuple(n for n in CARRIED if n != BEST)
        missing = [name for name in needed if name not in _present(run)]
        if missing:
            _fail(f"{run} lacks {', '.join(missing)}: it cannot be carried")
        rows.append((run, summary))
    if not rows:
        _fail(f"every run under {out / 'runs'} has finished: publish them instead of carrying them")
    if carry.exists():
        shutil.rmtree(carry)        # a carry is replaced whole: runs carried before may have finished since
    for run, _ in rows:
        (carry / run.name).mkdir(parents=True)
        for name in _present(run):
            shutil.copy2(run / name, carry / run.name / name)
    carry.joinpath("README.md").write_text(_readme(out, carry, commit, command, rows))
    return [run.name for run, _ in rows]


def _readme(out: Path, carry: Path, commit: str, command: list[str], rows) -> str:
    table = "\n".join(
        f"| `{run.name}` | {s.epochs_done} of {s.epochs_asked} | "
        + (f"{s.best_valid:.4f} (epoch {s.best_epoch}) |" if s.best_epoch is not None
           else "none kept yet (its selection rule starts later; no best.h5) |")
        for run, s in rows)
    worktree = f"/work/wt-{commit[:7]}"
    return f"""# Carried runs

Unfinished runs of one grid, carried by `results/carry.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC:
each folder holds the files that continue the run (`{"`, `".join(CARRIED[:3])}`, and `{BEST}` once its
selection rule has kept an epoch).
They were trained from a worktree pinned at commit `{commit}`, into `--out {out}`.

| run | epochs done (last.h5) | best validation bound |
|---|---|---|
{table}

To continue on a new machine, from a checkout of the project holding this folder:

```
git worktree add {worktree} {commit}
python -m venv {worktree}-venv && {worktree}-venv/bin/pip install -e '{worktree}[cluster]'
python results/carry.py restore {carry} {out}
cd {worktree} && OPENBLAS_NUM_THREADS=1 NPDVAE_DATA_DIR=<the data folder> {worktree}-venv/bin/{shlex.join(command)}
```

Each run continues from the epoch above. When the runs are published, delete this folder in
the same commit.
"""


def restore(carry: Path, out: Path) -> list[str]:
    """Copy the carried runs into fresh run folders of the same names under ``out``/runs."""
    runs = sorted(folder for folder in carry.iterdir() if folder.is_dir()) if carry.is_dir() else []
    if not runs:
        _fail(f"no carried runs in {carry}")
    for folder in runs:
        missing = [name for name in CARRIED if name != BEST and not (folder / name).is_file()]
        if missing:
            _fail(f"{folder} lacks {', '.join(missing)}")
        target = out / "runs" / folder.name
        if target.exists():
            _fail(f"{target} exists: this machine kept the run; continue it there instead of restoring")
    for folder in runs:
        target = out / "runs" / folder.name
        target.mkdir(parents=True)
        for name in _present(folder):
            shutil.copy2(folder / name, target / name)
    return [folder.name for folder in runs]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    save_verb = verbs.add_parser("save", help="carry the unfinished runs of OUT into CARRY")
    save_verb.add_argument("out", type=Path)
    save_verb.add_argument("carry", type=Path)
    save_verb.add_argument("--commit", required=True, help="the commit the runs' worktree is pinned at")
    save_verb.add_argument("command", nargs="+", help="the command that continues them (after --)")
    restore_verb = verbs.add_parser("restore", help="bring carried runs back under OUT/runs")
    restore_verb.add_argument("carry", type=Path)
    restore_verb.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.verb == "save":
        names = save(args.out, args.carry, args.commit, args.command)
        print(f"carried {len(names)} run(s) into {args.carry}: {', '.join(names)}")
    else:
        names = restore(args.carry, args.out)
        print(f"restored {len(names)} run(s) under {args.out / 'runs'}: {', '.join(names)}")


if __name__ == "__main__":
    main()
