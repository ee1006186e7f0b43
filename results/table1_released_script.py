"""Print issue 38's comparison as Markdown (results/README.md, E9): Table 1's DVAE (K=1), 1-layer
pair, seed 0, trained as the authors' released script trains it (5000 epochs, its schedule, its Adam,
its model selection; table1-released-script/), beside the same pair at the 3280-epoch protocol
(E1's and E2's tables, E4's model files) and the paper; then, from the model files' curves, how
much of the difference each of the script's settings makes on the validation bound, with the
released Adam alone at the 3280-epoch protocol for 400 epochs (table1-adam-released-400/) as the
ablation of that one setting.

    python results/table1_released_script.py
"""
import statistics
import sys
from pathlib import Path

from npdvae.run_folder.model_file import load_model_file
from npdvae.training.config import TrainConfig
from npdvae.training.selection import best_record

from table_cells import one_seed_cells

HERE = Path(__file__).parent
RELEASED = HERE / "table1-released-script"
RELEASED_TABLE = RELEASED / ("table-schedule-released-optimizer-adam-released-select-every-50-select-after-0.4"
                             "-row-DVAE_K=1_-1l-column-0-column-5-seed-0.csv")
PROTOCOL_TABLES = {0: HERE / "table1-released-3280" / "table.csv",
                   1: HERE / "table1-released-3280-seed1" / "table-row-DVAE_K=1_-1l-column-0-column-5-seed-1.csv"}
MODELS = {"released": RELEASED / "models" / "dvae-k1-1l-noise{noise}-seed0-released-script.h5",
          "3280": HERE / "table1-released-3280-seed0-rerun" / "models" / "dvae-k1-1l-noise{noise}-seed0.h5",
          "adam": HERE / "table1-adam-released-400" / "models" / "dvae-k1-1l-noise{noise}-seed0-adam-released.h5"}
# what each kind of model file must have been trained with: (optimizer, schedule, select_every, select_after, epochs)
SETTINGS = {"released": ("adam-released", "released", 50, 0.4, 5000), "3280": ("adam", "staged", 1, 0.0, 3280),
            "adam": ("adam-released", "staged", 1, 0.0, 400)}
COLUMNS = ("0", "5")
PROTOCOL_EPOCHS = 3280
MILESTONES = (10, 100, 200, 300, 400, 1000, 2000, 3280, 5000)


def read_table(path: Path) -> dict:
    """{column: the CSV row} of a grid's DVAE (K=1), 1-layer cells, one seed each."""
    return one_seed_cells(path, "DVAE (K=1)", COLUMNS, "results/README.md")


def read_curve(kind: str, noise: str) -> list[dict]:
    """A published model's epoch records, ``best`` marked by the rule it was trained under."""
    path = Path(str(MODELS[kind]).format(noise=noise))
    if not path.is_file():
        sys.exit(f"no model file at {path}: export it first (results/README.md)")
    model = load_model_file(path)
    config = TrainConfig.from_dict(model.config)
    if (config.optimizer, config.schedule, config.select_every, config.select_after, config.epochs) != SETTINGS[kind]:
        sys.exit(f"{path}: not trained with the settings of the {kind} protocol")
    return model.history()


def highest(records: list[dict], last_epoch: int) -> dict:
    """The record of the highest validation bound among the epochs up to ``last_epoch``, whichever
    epochs a selection rule would have looked at."""
    return max((r for r in records if r["epoch"] <= last_epoch), key=lambda r: r["valid_bound"])


def at(records: list[dict], epoch: int) -> dict | None:
    return next((r for r in records if r["epoch"] == epoch), None)


def figure(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


released = read_table(RELEASED_TABLE)
if any((r["optimizer"], r["schedule"], r["select_every"], r["select_after"], r["epochs"])
       != tuple(map(str, SETTINGS["released"])) for r in released.values()):
    sys.exit(f"{RELEASED_TABLE}: its runs were not trained with the released script's settings")
protocol = {seed: read_table(path) for seed, path in PROTOCOL_TABLES.items()}
bound = {kind: {c: float(rows[c]["bound_mean"]) for c in COLUMNS}
         for kind, rows in [("released", released), *((s, t) for s, t in protocol.items())]}
log_px = {kind: {c: float(rows[c]["log_likelihood_mean"]) for c in COLUMNS}
          for kind, rows in [("released", released), (0, protocol[0])]}
paper = {c: (float(released[c]["paper_mean"]), float(released[c]["paper_std"])) for c in COLUMNS}
curves = {(kind, c): read_curve(kind, c) for kind in MODELS for c in COLUMNS}

print("Test -bound (all 10,000 test images; lower is better) and log p(x) (first 1000 test images, K=5000; "
      "higher is better), each run at the epoch its selection rule kept.\n")
print("| noise | -bound, released script's protocol, seed 0 | 3280-epoch protocol, seed 0 | 3280-epoch protocol, "
      "seeds 0 and 1 | paper | log p(x), released script's protocol | 3280-epoch protocol, seed 0 |")
print("|---|---|---|---|---|---|---|")
for c in COLUMNS:
    seeds = [bound[s][c] for s in protocol]
    print(f"| {c}% | {bound['released'][c]:.2f} | {bound[0][c]:.2f} | {statistics.mean(seeds):.2f} ± "
          f"{statistics.stdev(seeds):.2f} | {paper[c][0]:.2f} ± {paper[c][1]:.2f} | {log_px['released'][c]:.2f} "
          f"| {log_px[0][c]:.2f} |")
print()
print("- 0% minus 5%, test -bound: released script's protocol " + f"{bound['released']['0'] - bound['released']['5']:.2f}"
      + "; 3280-epoch protocol " + ", ".join(f"seed {s} {bound[s]['0'] - bound[s]['5']:.2f}" for s in protocol)
      + f"; paper {paper['0'][0] - paper['5'][0]:.2f}")
for c in COLUMNS:
    print(f"- {c}%, the released script's protocol minus the 3280-epoch protocol (seed 0): "
          f"{bound['released'][c] - bound[0][c]:+.2f}; the paper minus the released script's protocol: "
          f"{paper[c][0] - bound['released'][c]:+.2f}")

print("\nValidation bound (the 10,000 validation images, higher is better) from the model files' curves: "
      "the highest of the epochs named (at the epoch given), the one each run's rule kept, and the released script's "
      "run at its last epoch.\n")
print("| noise | 3280-epoch protocol: kept (every epoch may be) | released script's protocol: highest of "
      "epochs 1-3280 | highest of epochs 1-5000 | kept (every 50th, after 40%) | last epoch | the rule's cost | "
      "the Adam's and schedule's cost at 3280 epochs | the longer budget's gain |")
print("|---|---|---|---|---|---|---|---|---|")
for c in COLUMNS:
    ours, script = curves["3280", c], curves["released", c]
    kept_ours, kept_script = best_record(ours), best_record(script)
    early, late = highest(script, PROTOCOL_EPOCHS), highest(script, len(script))
    cells = [kept_ours, early, late, kept_script, script[-1]]
    print(f"| {c}% | " + " | ".join(f"{r['valid_bound']:.2f} ({r['epoch']})" for r in cells)
          + f" | {late['valid_bound'] - kept_script['valid_bound']:.2f} "
          f"| {kept_ours['valid_bound'] - early['valid_bound']:.2f} | {late['valid_bound'] - early['valid_bound']:.2f} |")

print("\nEpoch by epoch, from the same curves and those of the released Adam alone (the 3280-epoch protocol with "
      "--optimizer adam-released, 400 epochs): the training bound of the epoch (the mean over its minibatches) "
      "and the highest validation bound up to it.\n")
print("| noise | epoch | training bound: 3280-epoch protocol | released script's protocol | released Adam alone "
      "| validation: 3280-epoch protocol | released script's protocol | released Adam alone "
      "| validation minus the 3280-epoch protocol's: released script's protocol | released Adam alone |")
print("|---|---|---|---|---|---|---|---|---|---|")
for c in COLUMNS:
    runs = [curves[kind, c] for kind in ("3280", "released", "adam")]
    for epoch in MILESTONES:
        train = [at(curve, epoch) for curve in runs]
        train = [None if record is None else record["train_bound"] for record in train]
        valid = [highest(curve, epoch)["valid_bound"] if at(curve, epoch) else None for curve in runs]
        differences = [None if None in (valid[0], v) else v - valid[0] for v in valid[1:]]
        print(f"| {c}% | {epoch} | " + " | ".join(map(figure, train + valid)) + " | "
              + " | ".join("" if d is None else f"{d:+.2f}" for d in differences) + " |")
