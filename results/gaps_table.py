"""Print the gaps of each 0%/5% pair as Markdown tables, from the reports npdvae gaps wrote.

    python results/gaps_table.py            the DVAE (K=1) pairs of both seeds (E5)
    python results/gaps_table.py diwae      the DIWAE (K=5) pair of seed 0 (E6)
"""
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
PAIRS = {  # row: [(seed, the experiment's gaps/ folder, the models' name prefix)]
    "dvae": [(0, HERE / "table1-released-3280-seed0-rerun" / "gaps", "dvae-k1-1l"),
             (1, HERE / "table1-released-3280-seed1" / "gaps", "dvae-k1-1l")],
    "diwae": [(0, HERE / "table1-diwae-3280-seed0" / "gaps", "diwae-k5-1l")],
}
ROWS = [("log p(x), AIS", "log_px_ais"), ("log p(x), IS (K=5000)", "log_px_is"), ("bound of q*", "bound_q_star"),
        ("encoder's bound (ELBO)", "bound_encoder"), ("encoder's bound, K={k}", "bound_encoder_iw"),
        ("approximation gap (AIS - q*)", "approximation_gap"),
        ("amortization gap (q* - encoder)", "amortization_gap"), ("inference gap (AIS - encoder)", "inference_gap")]


def print_pair(seed: int, folder: Path, prefix: str) -> None:
    paths = {noise: folder / f"{prefix}-noise{noise}-seed{seed}" / "gaps.json" for noise in (0, 5)}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        sys.exit(f"no gaps report at {missing[0]}: run npdvae gaps on that model first (results/README.md)")
    reports = {noise: json.loads(path.read_text()) for noise, path in paths.items()}
    if any(r["examples"] != reports[0]["examples"] or r["settings"] != reports[0]["settings"]
           for r in reports.values()):
        sys.exit(f"seed {seed}: the two reports cover different images or settings")
    print(f"Seed {seed}, `{folder.relative_to(HERE)}/`: first {reports[0]['examples']['train']} training and "
          f"{reports[0]['examples']['test']} test images; nats, mean ± standard error over the images.\n")
    print("| figure | 0%, train | 0%, test | 0%, train - test | 5%, train | 5%, test | 5%, train - test |")
    print("|---|---|---|---|---|---|---|")
    for label, key in ROWS:
        if key not in reports[0]["train"]:
            continue   # the K bound: only for an importance-weighted model's analysis
        cells = [f"{reports[n][part][key]['mean']:.2f} ± {reports[n][part][key]['stderr']:.2f}"
                 for n in (0, 5) for part in ("train", "test", "generalization")]
        print(f"| {label.format(k=reports[0]['settings'].get('iw_k'))} | " + " | ".join(cells) + " |")
    print("\nq* search, largest change of a batch's bound over its last tenth of steps: " + "; ".join(
        f"{n}%: {reports[n]['train']['q_star_last_change']:.3f} (train), "
        f"{reports[n]['test']['q_star_last_change']:.3f} (test)" for n in (0, 5)))


row = sys.argv[1] if len(sys.argv) > 1 else "dvae"
if row not in PAIRS:
    sys.exit(f"usage: python results/gaps_table.py [{'|'.join(PAIRS)}]")
for number, (seed, folder, prefix) in enumerate(PAIRS[row]):
    if number:
        print()
    print_pair(seed, folder, prefix)
