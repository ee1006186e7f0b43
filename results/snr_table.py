"""Print the gradient's signal-to-noise ratio at the published DVAE (K=1) models as Markdown
tables, from the reports `npdvae snr --json` wrote into results/snr/ (results/README.md, E7)."""
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent / "snr"
SEEDS = ("seed0", "seed1")
ESTIMATORS = ("standard", "stl", "dreg")


def report(noise: int, seed: str, inputs: str) -> dict:
    path = HERE / f"noise{noise}-{seed}-{inputs}.json"
    if not path.is_file():
        sys.exit(f"no report at {path}: run npdvae snr on that model first (results/README.md, E7)")
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        sys.exit(f"{path} is not a whole report ({err}): run npdvae snr on that model again")


def print_group(group: str) -> None:
    first = report(0, SEEDS[0], "clean")
    ks = sorted({r["k"] for r in first["results"]})
    print(f"{group.capitalize()}'s gradient: mean over its parameters of |mean| / std over {first['draws']} draws "
          f"of the minibatch gradient on the first {first['examples']} training images; seed 0 / seed 1.\n")
    print("| model | inputs | estimator | " + " | ".join(f"K={k}" for k in ks) + " |")
    print("|---|---|---|" + "---|" * len(ks))
    for noise in (0, 5):
        for inputs in ("clean", "corrupted"):
            reports = [report(noise, seed, inputs) for seed in SEEDS]
            label = reports[0]["inputs"].replace("salt-pepper-released", "released s&p")
            for estimator in ESTIMATORS if group == "encoder" else ESTIMATORS[:1]:
                cells = []
                for k in ks:
                    values = [next(r["groups"][group]["mean"] for r in rep["results"]
                                   if r["estimator"] == estimator and r["k"] == k) for rep in reports]
                    cells.append(" / ".join(f"{v:.3f}" for v in values))
                print(f"| DVAE (K=1), {noise}% | {label} | {estimator if group == 'encoder' else 'any'} | "
                      + " | ".join(cells) + " |")


print_group("encoder")
print()
print_group("decoder")
