"""Print Table 1's DVAE (K=1), 1-layer row over the seeds that finished at the authors' protocol, with
the paper beside it, from the committed tables (seed 0: section 3's; seed 1: section 1's)."""
import csv
import statistics
from pathlib import Path

HERE = Path(__file__).parent
TABLES = (HERE / "table1-released-3280" / "table.csv",
          HERE / "table1-released-3280-seed1" / "table-row-DVAE_K=1_-1l-column-0-column-5-seed-1.csv")
rows, paper = {}, {}
for path in TABLES:
    for row in csv.DictReader(open(path)):
        rows.setdefault(row["column"], []).append((float(row["bound_mean"]), float(row["log_likelihood_mean"])))
        paper[row["column"]] = f"{float(row['paper_mean']):.2f} ± {float(row['paper_std']):.2f}"
print("| noise | -bound, seed 0 | seed 1 | mean ± std | paper (its '10-fold experiments') | log p(x), seed 0 | seed 1 | mean ± std |")
print("|---|---|---|---|---|---|---|---|")
for column, pairs in rows.items():
    b, l = [p[0] for p in pairs], [p[1] for p in pairs]
    print(f"| {column}% | {b[0]:.2f} | {b[1]:.2f} | {statistics.mean(b):.2f} ± {statistics.stdev(b):.2f} | {paper[column]} "
          f"| {l[0]:.2f} | {l[1]:.2f} | {statistics.mean(l):.2f} ± {statistics.stdev(l):.2f} |")
gap = [rows["0"][i][0] - rows["5"][i][0] for i in range(2)]
print(f"\n0% minus 5%, per seed: {gap[0]:.2f}, {gap[1]:.2f}")
