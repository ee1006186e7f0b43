"""A grid's tables: the figures of its runs gathered per cell, as Markdown and CSV with
their protocol, findings, budget and provenance."""

from __future__ import annotations

import collections
import csv
import io
import json
import math
import os
import statistics
from pathlib import Path

from npdvae.experiments import paper
from npdvae.run_folder.run_files import replace_file
from npdvae.run_folder.provenance import describe, provenance
from npdvae.run_folder.runs import read_metrics
from npdvae.experiments.grids import Experiment, column_label, usual_protocol
from npdvae.experiments.task import busy_seconds, run_intervals
from npdvae.training.config import ENCODER_GRADIENT_DESCRIPTIONS, LATER_SETTINGS, OPTIMIZER_DESCRIPTIONS
from npdvae.training.selection import describe_rule


def _mean_std(values):
    if not values:
        return None
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else float("nan")
    return mean, std


def collect(experiment: Experiment, specs, results) -> dict:
    """(row_key, column) -> {"bound": (mean, std), "log_likelihood": (mean, std), "seeds": n, "lr": ...}.

    With several learning rates, each cell reports the rate whose runs have the best mean
    validation bound (selection on validation only; the test figures are those of that
    rate's runs); ``valid_by_lr`` keeps every rate's mean validation bound."""
    sign = -1.0 if experiment.negate else 1.0
    grouped = {}
    for spec, result in zip(specs, results):
        if result is None:
            continue
        key = (spec.cell.row_key, spec.cell.column, spec.config["lr"])
        entry = grouped.setdefault(key, {"bound": [], "log_likelihood": [], "seconds_per_epoch": [], "valid": [],
                                         "epochs": [], "train_seconds": [], "paper": spec.cell.paper,
                                         "lr": spec.config["lr"]})
        entry["bound"].append(sign * result["test_bound"])
        entry["valid"].append(result["valid_bound"])
        entry["log_likelihood"].append(result["log_likelihood"])
        entry["seconds_per_epoch"].append(result["seconds_per_epoch"])
        entry["epochs"].append(result["epochs"])
        entry["train_seconds"].append(result["train_seconds"])
    table = {}
    for (row_key, column, lr), entry in grouped.items():
        entry = {**entry, "bound_stats": _mean_std(entry["bound"]), "ll_stats": _mean_std(entry["log_likelihood"]),
                 "seeds": len(entry["bound"]), "valid_mean": statistics.fmean(entry["valid"])}
        chosen = table.get((row_key, column))
        by_lr = dict(chosen["valid_by_lr"]) if chosen else {}
        by_lr[lr] = entry["valid_mean"]
        if chosen is None or entry["valid_mean"] > chosen["valid_mean"]:   # the bound: higher is better
            chosen = entry
        table[(row_key, column)] = {**chosen, "valid_by_lr": by_lr}
    return table


def _fmt(stats, digits=2):
    if stats is None:
        return "-"
    mean, std = stats
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def plural(count: int, word: str) -> str:
    """"1 run", "2 runs"."""
    return f"{count} {word}" + ("" if count == 1 else "s")


def protocol_lines(specs) -> list[str]:
    """The training protocol of a grid's runs, as the table's header states it: the corruption
    of each column and every setting the grid shares (or its values, where runs differ)."""
    from npdvae.vae.corruption_registry import registered_corruption
    corruption = {}
    for spec in specs:
        if spec.config["noise"] > 0:
            corruption.setdefault(spec.config["noise_type"], []).append(column_label(spec.cell.column))
    lines = []
    for noise_type, labels in corruption.items():
        columns = ", ".join(dict.fromkeys(labels))
        lines.append(f"- corruption ({columns}): `{noise_type}`, {registered_corruption(noise_type).description}")

    def values(name):
        return ", ".join(str(v) for v in dict.fromkeys(spec.config[name] for spec in specs))

    clip = values("clip_grad_norm")
    clipping = "no gradient clipping" if clip == "None" else f"gradient norm clipped at {clip}"
    optimizers = dict.fromkeys(spec.config.get("optimizer", "adam") for spec in specs)
    optimizer = ", ".join(OPTIMIZER_DESCRIPTIONS[name] for name in optimizers)
    lines.append(f"- training: {optimizer}, lr {values('lr')}, schedule {values('schedule')}, {clipping}, "
                 f"binarization {values('binarize')}, "
                 f"batch {values('batch_size')}, {values('epochs')} epochs")
    gradients = dict.fromkeys(spec.config.get("encoder_gradient", "standard") for spec in specs)
    if gradients != {"standard": None}:
        lines.append("- the encoder's gradient: " + ", ".join(ENCODER_GRADIENT_DESCRIPTIONS[g] for g in gradients)
                     + "; the decoder's as usual")
    rules = dict.fromkeys((spec.config.get("select_every", 1), spec.config.get("select_after", 0.0)) for spec in specs)
    if rules != {(1, 0.0): None}:
        lines.append("- model selection: " + "; ".join(describe_rule(every, after) for every, after in rules))
    subsets = [f"first {spec.config[name]} {what}" for name, what in (("train_examples", "training examples"),
                                                                    ("eval_examples", "validation/test examples"))
               for spec in specs[:1] if spec.config[name]]
    if subsets:
        lines.append("- data: " + ", ".join(subsets))
    return ["Protocol:", ""] + lines


def markdown_table(experiment: Experiment, table: dict, protocol=()) -> str:
    rows = []
    for cell in experiment.cells:
        if cell.row_key not in rows:
            rows.append(cell.row_key)
    columns = experiment.columns
    choose = max if experiment.higher_is_better else min
    several_rates = any(len(entry["valid_by_lr"]) > 1 for entry in table.values())
    lines = [f"### {experiment.title}", ""] + ([*protocol, ""] if protocol else []) + [
             "Each cell: our mean ± std over seeds (the paper's value in brackets); **bold** is the best "
             "of the row.", "",
             "| model | layers | " + " | ".join(column_label(c) for c in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for row_key in rows:
        present = {c: table[(row_key, c)] for c in columns if (row_key, c) in table}
        best = choose(present, key=lambda c: present[c]["bound_stats"][0]) if present else None
        cells = []
        for c in columns:
            entry = present.get(c)
            if entry is None:
                cells.append("-")
                continue
            text = _fmt(entry["bound_stats"])
            if c == best and len(present) > 1:
                text = f"**{text}**"
            if entry["paper"]:
                text += f" ({_fmt(entry['paper'])})"
            if several_rates:
                text += f" [lr {entry['lr']:g}]"
            cells.append(text)
        lines.append(f"| {row_key[0]} | {row_key[1]} | " + " | ".join(cells) + " |")
    if several_rates:
        rates = sorted({lr for entry in table.values() for lr in entry["valid_by_lr"]}, reverse=True)
        lines += ["", f"[lr X]: the learning rate of the cell, chosen among {', '.join(f'{r:g}' for r in rates)} "
                      "as the one whose runs have the best mean validation bound; the figures are those runs'."]
    lines += ["", "Importance-sampled log-likelihood log p(x) (nats, higher is better), same runs:", "",
              "| model | layers | " + " | ".join(column_label(c) for c in columns) + " |",
              "|---|---|" + "---|" * len(columns)]
    for row_key in rows:
        cells = [_fmt(table[(row_key, c)]["ll_stats"]) if (row_key, c) in table else "-" for c in columns]
        lines.append(f"| {row_key[0]} | {row_key[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def findings(experiment: Experiment, table: dict) -> list[str]:
    """Sentences computed from the table, for the paper's central claim:
    some noise level beats noise 0 in each row."""
    if not experiment.columns or experiment.columns[0] != 0:
        return []
    better = (lambda a, b: a > b) if experiment.higher_is_better else (lambda a, b: a < b)
    lines = []
    rows = []
    for cell in experiment.cells:
        if cell.row_key not in rows:
            rows.append(cell.row_key)
    for row_key in rows:
        clean = table.get((row_key, 0))
        if clean is None:
            continue
        noisy = {c: table[(row_key, c)] for c in experiment.columns[1:] if (row_key, c) in table}
        if not noisy:
            continue
        winners = [c for c, e in noisy.items() if better(e["bound_stats"][0], clean["bound_stats"][0])]
        ll_winners = [c for c, e in noisy.items() if e["ll_stats"][0] > clean["ll_stats"][0]]
        name = f"{row_key[0]}, {row_key[1]} layer{'s' if row_key[1] > 1 else ''}"
        lines.append(
            f"- {name}: the bound beats noise 0 at "
            f"{', '.join(column_label(c) for c in winners) or 'no noise level'}; "
            f"log p(x) beats noise 0 at {', '.join(column_label(c) for c in ll_winners) or 'no noise level'}.")
    return lines


def budget_lines(experiment: Experiment, table: dict) -> list[str]:
    """Measured seconds per epoch and what the paper's budget would take."""
    lines = []
    full_grid_hours = 0.0
    keys = list(dict.fromkeys((cell.row_key, cell.column) for cell in experiment.cells))
    timed = [table[key] for key in keys if key in table]
    if not timed or max(max(entry["epochs"]) for entry in timed) < 2:
        # the first epoch includes Numba's compilation; one epoch says nothing about the rest
        return ["Too few epochs timed to project the paper's budget (at least 2 are needed)."]
    for row_key, column in keys:
        entry = table.get((row_key, column))
        if entry is None:
            continue
        per_epoch = statistics.fmean(entry["seconds_per_epoch"])
        run_hours = per_epoch * paper.PAPER_EPOCHS / 3600
        full_grid_hours += run_hours * paper.PAPER_SEEDS
        layers = f"{row_key[1]} layer" + ("s" if row_key[1] > 1 else "")
        lines.append(f"| {row_key[0]}, {layers} | {column_label(column)} | {max(entry['epochs'])} | "
                     f"{per_epoch:.2f} | {run_hours:.1f} |")
    header = [f"| run | noise | epochs run | s/epoch (measured) | hours for {paper.PAPER_EPOCHS} epochs, one run |",
              "|---|---|---|---|---|"]
    cores = os.cpu_count() or 1
    total = [f"These cells at the paper's budget ({paper.PAPER_EPOCHS} epochs, {paper.PAPER_SEEDS} seeds): "
             f"{full_grid_hours:.0f} core-hours of training, about {full_grid_hours / cores:.0f} h on this "
             f"machine's {cores} cores running {cores} runs at a time (evaluation not counted)."]
    return header + lines + [""] + total


# The grid-wide settings a table's name carries where they are not the experiment's usual ones
# (npdvae.experiments.grids.usual_protocol), so that two grids over one --out that differ in
# them keep both tables; a table of the usual protocol keeps the name it always had
_NAMED_SETTINGS = ("noise_type", "schedule", "clip_grad_norm", "binarize", "lr", "optimizer", "encoder_gradient",
                   "select_every", "select_after")


def _setting_text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "-".join(_setting_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def table_name(rows=None, columns=None, seeds=None, protocol=None, usual=None) -> str:
    """The file name (without suffix) of a grid's table: ``table`` for the whole experiment,
    ``table-...`` naming the restriction otherwise, so that a part never replaces the whole,
    and every grid-wide setting of ``protocol`` that differs from ``usual`` (by default Table
    1's usual protocol), so that another protocol's table never replaces this one."""
    protocol, usual = protocol or {}, usual_protocol("table1") if usual is None else usual
    parts = [f"{name.replace('_', '-')}-{_setting_text(protocol[name])}" for name in _NAMED_SETTINGS
             if name in protocol and protocol[name] != usual.get(name)]
    parts += [f"row-{row}-{layers}l" for row, layers in sorted(rows or ())]
    parts += [f"column-{str(column).rstrip('%')}" for column in sorted(columns or ())]
    parts += [f"seed-{seed}" for seed in sorted(seeds or ())]
    text = "-".join(["table", *parts])
    return "".join(ch if ch.isalnum() or ch in "-=." else "_" for ch in text).replace("__", "_")


def provenance_lines(results, written_by: str | None = None) -> list[str]:
    """Which code scored the table's runs, and which (``written_by``, default this one) wrote the table."""
    scored = collections.Counter(describe(r.get("provenance")) for r in results)
    by = "; ".join(f"{who} ({plural(n, 'run')})" for who, n in sorted(scored.items()))
    return [f"Provenance: runs scored by {by or 'no run'}; table written by {written_by or _this_writer()}.", ""]


def _this_writer() -> str:
    """The code and libraries writing a table, and where and when."""
    record = provenance()
    libraries = ", ".join(f"{name} {version}" for name, version in record["libraries"].items())
    blas = ", ".join(f"{b['internal_api']} {b['version']}" for b in record["blas"]) or "unknown"
    return (f"{describe(record)} with {libraries}, BLAS {blas}, Python {record['python']}, "
            f"on {record['host']}, {record['date']}")


def _untimed_legs(specs, results) -> bool:
    """Whether some run trained longer than the calls that recorded their wall time: it was
    stopped and resumed, and the legs before the last were timed by no record."""
    for spec, r in zip(specs, results):
        if r is not None:
            timed = sum(end - start for start, end in run_intervals(r, Path(spec.run_dir) / "eval.json"))
            if r["train_seconds"] > timed + 1.0:
                return True
    return False


def write_outputs(experiment: Experiment, specs, results, out, name: str = "table") -> dict:
    """Write ``name``.md and ``name``.csv (and for figure1 its picture) under ``out``."""
    out = Path(out)
    table = collect(experiment, specs, results)
    markdown = [markdown_table(experiment, table, protocol_lines(specs)), ""]
    claims = findings(experiment, table)
    if claims:
        markdown += ["What the numbers say (computed from the table above):", ""] + claims + [""]
    done = [r for r in results if r is not None]
    intervals = [interval for spec, r in zip(specs, results) if r is not None
                 for interval in run_intervals(r, Path(spec.run_dir) / "eval.json")]
    if done:
        examples = sorted({r["log_likelihood_examples"] for r in done})
        samples = sorted({r["is_samples"] for r in done})
        markdown += [f"log p(x) used the first {', '.join(map(str, examples))} test images "
                     f"with {', '.join(map(str, samples))} importance samples each; the bound used all "
                     f"{', '.join(str(n) for n in sorted({r['test_examples'] for r in done}))}.", ""]
        chosen = sorted(r["checkpoint_epoch"] for r in done)
        markdown += [f"Each run is scored at its best epoch by validation bound: epochs {chosen[0]} to "
                     f"{chosen[-1]}, median {statistics.median(chosen):g}.", ""]
        epochs_run = sorted({r['epochs'] for r in done})
        markdown += [f"Compute: {plural(len(done), 'run')} of {', '.join(map(str, epochs_run))} "
                     f"epoch{'s' if epochs_run != [1] else ''}; {sum(r['train_seconds'] for r in done) / 3600:.2f} h of training and "
                     f"{sum(r['eval_seconds'] for r in done) / 3600:.2f} h of evaluation, summed over runs; "
                     f"{busy_seconds(intervals) / 3600:.2f} h of wall time with at least one run going"
                     + (" in the legs that finished them (earlier legs, stopped and resumed from checkpoints, "
                        "kept no wall time)." if _untimed_legs(specs, results) else "."), ""]
    markdown += ["Training cost, measured:", ""] + budget_lines(experiment, table) + [""]
    written_by = _this_writer()   # once, so that the .md and the .csv say the same
    markdown += provenance_lines(done, written_by)
    replace_file(out / f"{name}.md", "\n".join(markdown).encode())
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["experiment", "model", "layers", "column", "seeds", "epochs", "bound_mean", "bound_std",
                     "paper_mean", "paper_std", "log_likelihood_mean", "log_likelihood_std",
                     "seconds_per_epoch", "noise_type", "schedule", "clip_grad_norm", "binarize", "lr",
                     "optimizer", "encoder_gradient", "select_every", "select_after",
                     "valid_bound_by_lr", "scored_by", "table_written_by"])
    protocol = {(spec.cell.row_key, spec.cell.column, spec.config["lr"]): spec.config for spec in specs}
    scorers = collections.defaultdict(set)   # which code scored the runs a row's figures come from
    for spec, r in zip(specs, results):
        if r is not None:
            scorers[(spec.cell.row_key, spec.cell.column, spec.config["lr"])].add(describe(r.get("provenance")))
    for (row_key, column), entry in table.items():
        config = protocol[(row_key, column, entry["lr"])]
        paper_mean, paper_std = entry["paper"] or (None, None)
        writer.writerow([experiment.name, row_key[0], row_key[1], column, entry["seeds"], max(entry["epochs"]),
                         *entry["bound_stats"], paper_mean, paper_std, *entry["ll_stats"],
                         statistics.fmean(entry["seconds_per_epoch"]), config["noise_type"],
                         config["schedule"], config["clip_grad_norm"], config["binarize"], config["lr"],
                         *(config.get(name, LATER_SETTINGS[name])
                           for name in ("optimizer", "encoder_gradient", "select_every", "select_after")),
                         json.dumps({f"{lr:g}": round(v, 4) for lr, v in entry["valid_by_lr"].items()}),
                         "; ".join(sorted(scorers[(row_key, column, entry["lr"])])), written_by])
    replace_file(out / f"{name}.csv", rows.getvalue().encode())
    if experiment.name == "figure1":
        from npdvae.evaluation.pictures import plot_training_curves
        series = []
        for spec in specs:
            if spec.seed == 0:
                series.append((f"{spec.cell.row} {spec.cell.column}", read_metrics(spec.run_dir)))
        plot_training_curves(series, out / f"{name.replace('table', 'figure1', 1)}.png", log_epochs=True)
    return table
