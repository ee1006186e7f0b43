"""Print issue 37's gaps as Markdown (results/README.md, E8): where DReG's and the corruption's
gains lie, from the committed analyses of results/estimators-k5-300/ESTIMATOR-seedS/gaps/.

Each comparison is a paired difference, image by image on the same images, as
``npdvae gaps-compare`` takes it (npdvae.evaluation.gaps.paired_difference): B minus A, so a
positive figure is a higher log p(x) or bound and a negative gap is a smaller one. Only
models of one seed are compared: a seed's static binarization is its own training images.

    python results/estimators_gaps.py
"""
import sys
from pathlib import Path

from npdvae.evaluation.gaps import FIGURES as FIGURE_NAMES, IW_FIGURE, SUBSETS, paired_difference, summarize
from npdvae.evaluation.gaps_record import GapsRecordError, finished_figures, pairing_problem

FOLDER = Path(__file__).parent / "estimators-k5-300"
SEEDS = (0, 1)
ESTIMATORS = {"standard": "", "dreg": "-dreg"}   # estimator: the model name's suffix
CELLS = {0: "IWAE 0%", 5: "DIWAE 5%"}
COMPARISONS = [  # (what, A, B) with A and B as (estimator, noise)
    ("DReG - standard, IWAE 0%", ("standard", 0), ("dreg", 0)),
    ("DReG - standard, DIWAE 5%", ("standard", 5), ("dreg", 5)),
    ("5% - 0%, standard", ("standard", 0), ("standard", 5)),
    ("5% - 0%, DReG", ("dreg", 0), ("dreg", 5)),
    ("both: DIWAE 5% DReG - IWAE 0% standard", ("standard", 0), ("dreg", 5)),
]
FIGURES = [  # (column, subset, figure)
    ("log p(x), AIS, test", "test", "log_px_ais"),
    ("encoder's ELBO, test", "test", "bound_encoder"),
    ("encoder's K=5 bound, test", "test", "bound_encoder_iw"),
    ("approximation gap, test", "test", "approximation_gap"),
    ("amortization gap, test", "test", "amortization_gap"),
    ("amortization gap, train", "train", "amortization_gap"),
]


def folder(estimator: str, noise: int, seed: int) -> Path:
    return FOLDER / f"{estimator}-seed{seed}" / "gaps" / f"diwae-k5-1l-noise{noise}-seed{seed}{ESTIMATORS[estimator]}"


def read(estimator: str, noise: int, seed: int) -> tuple[dict, dict]:
    try:
        return finished_figures(folder(estimator, noise, seed))
    except GapsRecordError as err:
        sys.exit(f"{err} (results/README.md, E8)")


def per_image_difference(a: dict, b: dict) -> dict:
    """B minus A for each image and figure: {subset: {name: (N,) array}}."""
    return {subset: {name: b[subset][name] - a[subset][name] for name in (*FIGURE_NAMES, IW_FIGURE)}
            for subset in SUBSETS}


def row(what: str, seed: int, report: dict, sign: str = "") -> str:
    """One table row: each FIGURES column of ``report`` as mean ± standard error."""
    cells = [f"{report[subset][name].mean:{sign}.2f} ± {report[subset][name].stderr:.2f}"
             for _, subset, name in FIGURES]
    return f"| {what} | {seed} | " + " | ".join(cells) + " |"


analyses = {(e, n, s): read(e, n, s) for e in ESTIMATORS for n in CELLS for s in SEEDS}
settings = next(iter(analyses.values()))[0]["settings"]
for key, (header, _) in analyses.items():
    if header["settings"] != settings:
        sys.exit(f"{folder(*key)} was analysed with other settings than {folder(*next(iter(analyses)))}")
counts = {subset: len(next(iter(analyses.values()))[1][subset]["log_px_ais"]) for subset in SUBSETS}
print(f"`npdvae gaps` on the first {counts['train']} training and {counts['test']} test images, AIS from the "
      f"encoder with {settings['ais']['steps']} steps, q* by {settings['local']['steps']} steps; nats, mean ± "
      "standard error over the images.\n")

print("| model | seed | " + " | ".join(column for column, _, _ in FIGURES) + " |")
print("|---|---|" + "---|" * len(FIGURES))
for estimator in ESTIMATORS:
    for noise, cell in CELLS.items():
        for seed in SEEDS:
            name = f"{cell}, {'DReG' if estimator == 'dreg' else 'standard'}"
            print(row(name, seed, summarize(analyses[(estimator, noise, seed)][1])))

print("\nPaired differences, B - A, image by image. The last two rows are the interaction, DReG's difference at "
      "5% minus its difference at 0%: zero where DReG's and the corruption's effects add up.\n")
print("| comparison | seed | " + " | ".join(column for column, _, _ in FIGURES) + " |")
print("|---|---|" + "---|" * len(FIGURES))
for what, (ea, na), (eb, nb) in COMPARISONS:
    for seed in SEEDS:
        (header_a, figures_a), (header_b, figures_b) = analyses[(ea, na, seed)], analyses[(eb, nb, seed)]
        problem = pairing_problem(header_a, header_b)
        if problem:
            sys.exit(f"{folder(ea, na, seed)} and {folder(eb, nb, seed)} {problem}")
        print(row(what, seed, paired_difference(figures_a, figures_b), sign="+"))
for seed in SEEDS:
    # every figure and gap is linear in the per-image figures, so the interaction is the paired
    # difference of the two per-image differences, with the standard error of its images
    dreg_at = {noise: per_image_difference(analyses[("standard", noise, seed)][1], analyses[("dreg", noise, seed)][1])
               for noise in CELLS}
    print(row("interaction: (DReG - standard at 5%) - (DReG - standard at 0%)", seed,
              paired_difference(dreg_at[0], dreg_at[5]), sign="+"))
