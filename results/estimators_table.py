"""Print issue 37's training comparison as Markdown (results/README.md, E8): IWAE (K=5) at 0%
and DIWAE (K=5) at 5%, each trained with the standard encoder gradient and with DReG, per seed,
from the committed tables of results/estimators-k5-300/ (one grid of the two cells per
estimator and seed, in ESTIMATOR-seedS/).

    python results/estimators_table.py
"""
import statistics
import sys
from pathlib import Path

from table_cells import one_seed_cells

FOLDER = Path(__file__).parent / "estimators-k5-300"
TABLES = {"standard": "table-row-DIWAE_K=5_-1l-column-0-column-5-seed-{seed}.csv",
          "dreg": "table-encoder-gradient-dreg-row-DIWAE_K=5_-1l-column-0-column-5-seed-{seed}.csv"}
SEEDS = (0, 1)
CELLS = {"0": "IWAE (K=5), 0%", "5": "DIWAE (K=5), 5%"}


def read(estimator: str, seed: int) -> dict:
    """{column: (-bound, log p(x), epochs)} of one grid's table."""
    path = FOLDER / f"{estimator}-seed{seed}" / TABLES[estimator].format(seed=seed)
    rows = one_seed_cells(path, "DIWAE (K=5)", CELLS, "results/README.md, E8")
    if any(r.get("encoder_gradient") != estimator for r in rows.values()):
        sys.exit(f"{path}: its runs were not trained with the {estimator} encoder gradient")
    return {column: (float(r["bound_mean"]), float(r["log_likelihood_mean"]), int(r["epochs"]))
            for column, r in rows.items()}


def signed(values) -> str:
    return ", ".join(f"{v:+.2f}" for v in values)


figures = {(e, s): read(e, s) for e in TABLES for s in SEEDS}
epochs = sorted({f[c][2] for f in figures.values() for c in CELLS})
print(f"Test -bound (all 10,000 test images, K=5; lower is better) and log p(x) (first 1000 test images, "
      f"K=5000; higher is better), each run at its best epoch by validation bound, of "
      f"{', '.join(map(str, epochs))} epochs. A gain is in nats, positive when it is better.\n")
print("| cell | seed | -bound, standard | -bound, DReG | DReG's gain | log p(x), standard | log p(x), DReG "
      "| DReG's gain |")
print("|---|---|---|---|---|---|---|---|")
gains = {}
for column, cell in CELLS.items():
    for seed in SEEDS:
        (bs, ls, _), (bd, ld, _) = figures[("standard", seed)][column], figures[("dreg", seed)][column]
        gains.setdefault(column, []).append((bs - bd, ld - ls))
        print(f"| {cell} | {seed} | {bs:.2f} | {bd:.2f} | {bs - bd:+.2f} | {ls:.2f} | {ld:.2f} | {ld - ls:+.2f} |")
print()


def line(what: str, pairs) -> str:
    bound, ll = zip(*pairs)
    return (f"- {what}: -bound {statistics.fmean(bound):+.2f} on average (seeds {signed(bound)}), "
            f"log p(x) {statistics.fmean(ll):+.2f} (seeds {signed(ll)})")


def gain(better: tuple, worse: tuple, seed: int) -> tuple:
    (eb, cb), (ew, cw) = better, worse
    (bb, lb, _), (bw, lw, _) = figures[(eb, seed)][cb], figures[(ew, seed)][cw]
    return bw - bb, lb - lw


for column, cell in CELLS.items():
    print(line(f"DReG's gain at {cell}", gains[column]))
for estimator, name in (("standard", "the standard gradient"), ("dreg", "DReG")):
    print(line(f"the corruption's gain with {name} (5% over 0%)",
               [gain((estimator, "5"), (estimator, "0"), s) for s in SEEDS]))
print(line("both together (DIWAE at 5% with DReG over IWAE at 0% with the standard gradient)",
           [gain(("dreg", "5"), ("standard", "0"), s) for s in SEEDS]))
