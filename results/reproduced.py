"""Print what npdvae reproduces today, as README.md shows it: each cell of the paper trained here
at the authors' protocol, our test -bound (the mean ± std over its seeds) beside the paper's,
read from the committed tables (results/README.md has every experiment in full).

    python results/reproduced.py
"""
import csv
import statistics
from pathlib import Path

HERE = Path(__file__).parent
# (table, corruption named in the table's folder) for every grid run at the authors' protocol
TABLES = [HERE / "table1-released-3280" / "table.csv",
          HERE / "table1-released-3280-seed1" / "table-row-DVAE_K=1_-1l-column-0-column-5-seed-1.csv",
          HERE / "table1-released-3280-seed0" / "table-row-DVAE_K=1_-1l-column-10-seed-0.csv",
          HERE / "table1-textbook-3280-seed0" / "table-row-DVAE_K=1_-1l-column-5-seed-0.csv",
          HERE / "table1-diwae-3280-seed0" / "table-row-DIWAE_K=5_-1l-column-0-column-5-seed-0.csv"]


def corruption(path: Path, column: str) -> str:
    if column == "0":
        return "none"
    return "textbook salt-and-pepper" if "textbook" in path.parent.name else "salt-and-pepper as released"


cells, paper = {}, {}
for path in TABLES:
    for row in csv.DictReader(open(path)):
        if not row["bound_mean"]:
            continue
        key = (f"{row['model']}, {row['layers']} layer", f"{row['column']}%", corruption(path, row["column"]))
        cells.setdefault(key, []).append(float(row["bound_mean"]))
        paper[key] = f"{float(row['paper_mean']):.2f} ± {float(row['paper_std']):.2f}"

print("| Table 1 (MNIST) | noise | corruption | test -bound here | seeds | paper |")
print("|---|---|---|---|---|---|")
for (model, noise, kind), values in sorted(cells.items(), key=lambda item: (item[0][0], float(item[0][1][:-1]), item[0][2])):
    here = f"{statistics.mean(values):.2f}" + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else "")
    print(f"| {model} | {noise} | {kind} | {here} | {len(values)} | {paper[(model, noise, kind)]} |")
