"""Print the gradient's signal-to-noise ratio at published models as Markdown tables, from the
reports `npdvae snr --json` wrote into results/snr/ (results/README.md, E7).

    python results/snr_table.py            the DVAE (K=1) pairs of both seeds
    python results/snr_table.py diwae      the DIWAE (K=5) pair of seed 0
"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent / "snr"
ESTIMATORS = ("standard", "stl", "dreg")
MODELS = {  # row: [(label, the reports' name prefix per seed)], the seeds as in the tables' heading
    "dvae": [("DVAE (K=1), 0%", ("noise0-seed0", "noise0-seed1")),
             ("DVAE (K=1), 5%", ("noise5-seed0", "noise5-seed1"))],
    "diwae": [("IWAE (K=5), 0%", ("diwae-k5-1l-noise0-seed0",)),
              ("DIWAE (K=5), 5%", ("diwae-k5-1l-noise5-seed0",))],
}
SEEDS = {"dvae": "seed 0 / seed 1", "diwae": "seed 0"}


def report(prefix: str, inputs: str) -> dict:
    path = HERE / f"{prefix}-{inputs}.json"
    if not path.is_file():
        sys.exit(f"no report at {path}: run npdvae snr on that model first (results/README.md, E7)")
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        sys.exit(f"{path} is not a whole report ({err}): run npdvae snr on that model again")


def print_group(row: str, group: str) -> None:
    first = report(MODELS[row][0][1][0], "clean")
    ks = sorted({r["k"] for r in first["results"]})
    print(f"{group.capitalize()}'s gradient: mean over its parameters of |mean| / std over {first['draws']} draws "
          f"of the minibatch gradient on the first {first['examples']} training images; {SEEDS[row]}.\n")
    print("| model | inputs | estimator | " + " | ".join(f"K={k}" for k in ks) + " |")
    print("|---|---|---|" + "---|" * len(ks))
    for model, prefixes in MODELS[row]:
        for inputs in ("clean", "corrupted"):
            reports = [report(prefix, inputs) for prefix in prefixes]
            label = reports[0]["inputs"].replace("salt-pepper-released", "released s&p")
            for estimator in ESTIMATORS if group == "encoder" else ESTIMATORS[:1]:
                cells = []
                for k in ks:
                    values = [next(r["groups"][group]["mean"] for r in rep["results"]
                                   if r["estimator"] == estimator and r["k"] == k) for rep in reports]
                    cells.append(" / ".join(f"{v:.3f}" for v in values))
                print(f"| {model} | {label} | {estimator if group == 'encoder' else 'any'} | "
                      + " | ".join(cells) + " |")


row = sys.argv[1] if len(sys.argv) > 1 else "dvae"
if row not in MODELS:
    sys.exit(f"unknown row {row!r}: one of {', '.join(MODELS)}")
print_group(row, "encoder")
print()
print_group(row, "decoder")
