"""The one-seed cells of one row of a committed grid's table CSV, for the comparison scripts
beside this file. A missing table or a table without those cells ends the script in one line
(exit 1), so no comparison is printed without its grid."""
import csv
import sys
from pathlib import Path


def one_seed_cells(path: Path, model: str, columns, publish_hint: str) -> dict:
    """{column: the CSV row} of ``model``'s 1-layer cells in ``columns``, one seed each."""
    if not path.is_file():
        sys.exit(f"no table at {path}: run and publish its grid first ({publish_hint})")
    with open(path, newline="") as file:
        rows = {r["column"]: r for r in csv.DictReader(file)
                if r["model"] == model and r["layers"] == "1" and r["seeds"] == "1"}
    if set(rows) != set(columns):
        sys.exit(f"{path}: not the one-seed {' and '.join(c + '%' for c in columns)} cells of {model}, 1 layer")
    return rows
