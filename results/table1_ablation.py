"""Print the corruption ablation of Table 1's DVAE (K=1) row, seed 0, as a Markdown table, from the
committed tables: which corruption, at which level, under the authors' protocol."""
import csv
import sys
from pathlib import Path

from npdvae.vae.corruption import NOISE_TYPE_DESCRIPTIONS

HERE = Path(__file__).parent
SOURCES = [   # (folder, column): the seed-0 cell of that column in the folder's one table*.csv
    ("table1-released-3280", "0"), ("table1-released-3280-seed0-rerun", "0"),
    ("table1-released-3280", "5"), ("table1-released-3280-seed0-rerun", "5"),
    ("table1-textbook-3280-seed0", "5"), ("table1-released-3280-seed0", "10")]

print("| noise | corruption | test -bound | paper | log p(x), first 1000 test images | table |")
print("|---|---|---|---|---|---|")
for folder, column in SOURCES:
    tables = sorted((HERE / folder).glob("table*.csv"))
    if len(tables) != 1:
        sys.exit(f"{HERE / folder} holds {len(tables)} table*.csv files, not one")
    rows = [r for r in csv.DictReader(open(tables[0])) if r["model"] == "DVAE (K=1)" and r["layers"] == "1"
            and r["column"] == column]
    if len(rows) != 1 or rows[0]["seeds"] != "1":
        sys.exit(f"{tables[0]}: no single one-seed cell of DVAE (K=1), 1 layer, at {column}%")
    row = rows[0]
    corruption = "none (the clean VAE)" if column == "0" else f"`{row['noise_type']}`: {NOISE_TYPE_DESCRIPTIONS[row['noise_type']]}"
    print(f"| {column}% | {corruption} | {float(row['bound_mean']):.2f} | {float(row['paper_mean']):.2f} "
          f"| {float(row['log_likelihood_mean']):.2f} | `{tables[0].relative_to(HERE)}` |")
