"""Print Table 1's DVAE (K=1), 1-layer row over the seeds that finished at the authors' protocol, with
the paper beside it, from the committed tables (seed 0: experiment E1 of results/README.md; seed 1: E2), and seed 0
trained again (the rerun: the same seed and settings on another processor, at the ablation's commit)."""
import csv
import statistics
from pathlib import Path

HERE = Path(__file__).parent
TABLES = {"seed 0": HERE / "table1-released-3280" / "table.csv",
          "seed 1": HERE / "table1-released-3280-seed1" / "table-row-DVAE_K=1_-1l-column-0-column-5-seed-1.csv",
          "seed 0, rerun": HERE / "table1-released-3280-seed0-rerun" / "table-row-DVAE_K=1_-1l-column-0-column-5-seed-0.csv"}
SEEDS = ("seed 0", "seed 1")   # the mean and std are over distinct seeds
cells, paper = {}, {}
for run, path in TABLES.items():
    for row in csv.DictReader(open(path)):
        if row["model"] == "DVAE (K=1)" and row["layers"] == "1":
            cells.setdefault(row["column"], {})[run] = (float(row["bound_mean"]), float(row["log_likelihood_mean"]))
            paper[row["column"]] = f"{float(row['paper_mean']):.2f} ± {float(row['paper_std']):.2f}"


def spread(values):
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


print("| noise | -bound, seed 0 | seed 1 | mean ± std | paper (its '10-fold experiments') | seed 0, rerun "
      "| log p(x), seed 0 | seed 1 | mean ± std | seed 0, rerun |")
print("|---|---|---|---|---|---|---|---|---|---|")
for column, runs in cells.items():
    b, l = ({run: figures[i] for run, figures in runs.items()} for i in (0, 1))
    print(f"| {column}% | {b['seed 0']:.2f} | {b['seed 1']:.2f} | {spread([b[s] for s in SEEDS])} | {paper[column]} "
          f"| {b['seed 0, rerun']:.2f} | {l['seed 0']:.2f} | {l['seed 1']:.2f} | {spread([l[s] for s in SEEDS])} "
          f"| {l['seed 0, rerun']:.2f} |")
print("\n0% minus 5%, test -bound: " + ", ".join(f"{run} {cells['0'][run][0] - cells['5'][run][0]:.2f}" for run in TABLES))
print("Seed 0 rerun minus seed 0, test -bound: " + ", ".join(
    f"{column}% {runs['seed 0, rerun'][0] - runs['seed 0'][0]:+.2f}" for column, runs in cells.items()))
