"""The experiments of section 4 as grids: cells (a model row x a noise column), the protocol
they are trained under, each run's folder name, and the plan of a grid's runs.

Reading of the protocol (the paper leaves it open): MNIST is binarized once (static, from the
run's seed) for Tables 1 and 3, so that "augmentation" in the last experiment, which
resamples the binarization every iteration, is a different treatment. Frey Face noise levels
2.5, 5 and 7.5 (percent) are Gaussian standard deviations of 0.025, 0.05 and 0.075 on [0, 1]
pixels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from npdvae.experiments import paper
from npdvae.training.config import GRID_RESUMABLE_CHANGES, TrainConfig, defining_settings
from npdvae.run_folder.checkpoint import trained_epochs
from npdvae.run_folder.runs import RunDirectoryError


EXPERIMENTS = ("table1", "table2", "table3", "figure1", "augmentation", "mean-image")


def column_label(column) -> str:
    """A column as the tables name it: 5 -> "5%", a named treatment as it is."""
    return f"{column:g}%" if isinstance(column, (int, float)) else str(column)


@dataclass
class Cell:
    row: str               # e.g. "DIWAE (K=5)"
    layers: int            # encoder hidden layers (1 for the GRU)
    column: object         # noise level in percent, or a named treatment
    settings: dict         # TrainConfig fields
    paper: tuple | None    # (mean, std) reported by the paper, in the table's sign

    @property
    def row_key(self):
        return (self.row, self.layers)


@dataclass
class Experiment:
    name: str
    title: str
    columns: list
    cells: list = field(default_factory=list)
    higher_is_better: bool = False   # Table 2 reports the bound itself
    negate: bool = True              # MNIST tables report -bound


ROW_SETTINGS = {
    "DVAE (K=1)": dict(bound="elbo", k=1),
    "DVAE (K=5)": dict(bound="elbo", k=5),
    "DIWAE (K=5)": dict(bound="iwae", k=5),
    "DVAE (GRU)": dict(bound="elbo", k=1, encoder="gru"),
    "DIWAE (GRU)": dict(bound="iwae", k=5, encoder="gru"),
}


def _noise_table(name, title, dataset, columns, reference, rows=None, extra=None, **flags):
    experiment = Experiment(name, title, columns, **flags)
    for (row, layers), paper_row in reference.items():
        if rows is not None and (row, layers) not in rows:
            continue
        for level in columns:
            settings = dict(dataset=dataset, noise=level / 100, encoder_layers=layers, **ROW_SETTINGS[row],
                            **(extra or {}))
            experiment.cells.append(Cell(row, layers, level, settings, paper_row.get(level)))
    return experiment


# The corruption of the MNIST experiments when none is asked for: the one the authors' released
# code draws (npdvae/vae/corruption.py says how it differs from the textbook salt-and-pepper).
DEFAULT_BINARY_NOISE_TYPE = "salt-pepper-released"
BINARY_NOISE_TYPES = ("salt-pepper-released", "salt-pepper")


def build_experiment(name: str, rows=None, noise_type=None, columns=None) -> Experiment:
    """The grid of an experiment.

    ``rows`` (set of (row, layers)) and ``columns`` (set of column labels as
    the table prints them, e.g. "5%", "M=5") restrict it. ``noise_type`` is
    the salt-and-pepper form of the MNIST experiments (default: the authors'
    released code's); the mean-image columns keep their per-pixel rates and
    Table 2 is Gaussian."""
    experiment = _build_experiment(name, rows, noise_type)
    if columns is not None:
        experiment.columns = [c for c in experiment.columns if column_label(c) in columns]
        experiment.cells = [cell for cell in experiment.cells if column_label(cell.column) in columns]
    return experiment


def column_labels(name: str) -> list[str]:
    """The column labels an experiment's ``columns`` may name."""
    return [column_label(c) for c in _build_experiment(name, None, None).columns]


def _build_experiment(name, rows, noise_type) -> Experiment:
    if name == "table2":
        if noise_type not in (None, "gaussian"):
            raise ValueError(f"noise_type must be gaussian for table2 (Frey Face), got {noise_type!r}")
    elif noise_type is None:
        noise_type = DEFAULT_BINARY_NOISE_TYPE
    elif noise_type not in BINARY_NOISE_TYPES:
        raise ValueError(f"noise_type must be one of {BINARY_NOISE_TYPES} for {name} (MNIST), got {noise_type!r}")
    mnist = dict(binarize="static", noise_type=noise_type)
    if name == "table1":
        return _noise_table("table1", "Table 1: MNIST, salt-and-pepper noise, -bound (lower is better)",
                            "mnist", [0, 5, 10, 15], paper.TABLE1, rows, mnist)
    if name == "table2":
        return _noise_table("table2", "Table 2: Frey Face, Gaussian noise, bound (higher is better)",
                            "frey-face", [0, 2.5, 5, 7.5], paper.TABLE2, rows, dict(noise_type="gaussian"),
                            higher_is_better=True, negate=False)
    if name == "table3":
        return _noise_table("table3", "Table 3: MNIST, GRU inference network, -bound (lower is better)",
                            "mnist", [0, 5, 10, 15], paper.TABLE3, rows, mnist)
    if name == "augmentation":
        experiment = Experiment("augmentation", "Data augmentation vs the denoising criterion, MNIST, -bound",
                                ["augmentation", "denoising"])
        for (row, layers), reference in paper.AUGMENTATION.items():
            base = dict(bound="elbo", k=1) if row == "VAE" else dict(bound="iwae", k=5)
            if rows is not None and (row, layers) not in rows:
                continue
            experiment.cells.append(Cell(row, layers, "augmentation",
                                         dict(dataset="mnist", binarize="dynamic", noise=0.0,
                                              noise_type=noise_type, **base),
                                         reference["augmentation"]))
            experiment.cells.append(Cell(row, layers, "denoising",
                                         dict(dataset="mnist", binarize="static", noise=0.05,
                                              noise_type=noise_type, **base),
                                         reference["denoising"]))
        return experiment
    if name == "mean-image":
        experiment = Experiment("mean-image", "Global vs mean-image corruption rates, MNIST, -bound",
                                ["global 5%", "mean-image 5%", "global 10%", "mean-image 10%"])
        for row, base in (("DVAE (K=1)", dict(bound="elbo", k=1)), ("DIWAE (K=5)", dict(bound="iwae", k=5))):
            if rows is not None and (row, 1) not in rows:
                continue
            for column in experiment.columns:
                kind, level = column.split()
                cell_noise_type = noise_type if kind == "global" else "mean-image"
                experiment.cells.append(Cell(row, 1, column, dict(
                    dataset="mnist", binarize="static", noise=float(level[:-1]) / 100, noise_type=cell_noise_type,
                    **base), None))
        return experiment
    if name == "figure1":
        experiment = Experiment("figure1", "Figure 1: the bound against epochs for M = 1, 5, 10 (noise 5%)",
                                ["M=1", "M=5", "M=10"])
        for row, base in (("DVAE (K=1)", dict(bound="elbo", k=1)), ("DIWAE (K=5)", dict(bound="iwae", k=5))):
            if rows is not None and (row, 1) not in rows:
                continue
            for m in (1, 5, 10):
                experiment.cells.append(Cell(row, 1, f"M={m}", dict(
                    dataset="mnist", binarize="static", noise=0.05, m=m, noise_type=noise_type, **base), None))
        return experiment
    raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {name!r}")


DEFAULT_LR = 1e-3   # the paper's; a run at another rate names it in its folder

# The training protocol of the authors' released code (Timsud/DVAE), which the paper does not
# spell out: Burda et al.'s staged schedule over 3280 epochs and gradients clipped at a global
# norm of 5. The MNIST experiments run it unless asked otherwise; Frey Face (table2) keeps the
# short constant-rate protocol, for which neither the paper nor the released code gives a budget.
RELEASED_PROTOCOL = dict(epochs=paper.PAPER_EPOCHS, schedule="staged", clip_grad_norm=5.0)
SHORT_PROTOCOL = dict(epochs=100, schedule="constant", clip_grad_norm=None)


def default_protocol(name: str) -> dict:
    """The epochs, schedule and clipping an experiment runs with when none is asked for."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    return dict(SHORT_PROTOCOL if name == "table2" else RELEASED_PROTOCOL)


def usual_protocol(name: str) -> dict:
    """Every grid-wide setting of experiment ``name`` as it runs when no option changes it (the
    corruption, schedule, clipping, binarization, rate and the later settings): what its table's
    name leaves unsaid."""
    usual = {**default_protocol(name), "lr": DEFAULT_LR, "optimizer": "adam", "encoder_gradient": "standard",
             "select_every": 1, "select_after": 0.0}
    del usual["epochs"]
    usual["noise_type"] = "gaussian" if name == "table2" else DEFAULT_BINARY_NOISE_TYPE
    if name not in ("table2", "augmentation"):   # Frey Face is not binarized; augmentation sets its own
        usual["binarize"] = "static"
    return usual


def grid_protocol(name: str, **asked) -> tuple[int, dict]:
    """(epochs, overrides for plan()) of a grid: the experiment's default protocol with what was
    asked for (epochs, schedule, clip_grad_norm, ...) laid over it. ``clip_grad_norm=None`` asks
    for no clipping; a setting left out keeps its default."""
    settings = {**default_protocol(name), **asked}
    return settings.pop("epochs"), settings


def protocol_tag(config: dict) -> str:
    """The training protocol in a run folder's name, e.g. ``salt-pepper-released-staged-clip5-static``,
    so that runs of different protocols never share a folder (or a table)."""
    clip = config.get("clip_grad_norm")
    lr = config.get("lr", DEFAULT_LR)
    # a clean run (noise 0) is the same whatever corruption the grid names, so grids share it
    corruption = config.get("noise_type") or "default" if config.get("noise") else "clean"
    optimizer = config.get("optimizer", "adam")
    every, after = config.get("select_every", 1), config.get("select_after", 0.0)
    return "-".join([corruption, config.get("schedule", "constant")]
                    + ([f"clip{clip:g}"] if clip else []) + [config.get("binarize", "dynamic")]
                    + ([f"lr{lr:g}"] if lr != DEFAULT_LR else [])
                    + ([optimizer] if optimizer != "adam" else [])
                    + ([config["encoder_gradient"]] if config.get("encoder_gradient", "standard") != "standard" else [])
                    + ([f"sel{every}-after{after:g}"] if (every, after) != (1, 0.0) else []))


def run_name(cell: Cell, seed: int, config: dict | None = None) -> str:
    protocol = f"-{protocol_tag(config)}" if config is not None else ""
    text = f"{cell.row}-{cell.layers}l-{column_label(cell.column)}{protocol}-seed{seed}"
    return "".join(ch if ch.isalnum() or ch in "-=." else "_" for ch in text).replace("__", "_")


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------


@dataclass
class RunSpec:
    cell: Cell
    seed: int
    config: dict
    run_dir: str


# Settings that make a cell what it is (and the seed and epochs, which plan sets): a grid-wide
# override of these would turn one experiment into another.
CELL_SETTINGS = ("dataset", "bound", "noise", "noise_type", "k", "m", "encoder", "encoder_layers", "seed", "epochs")


def plan(experiment: Experiment, out, epochs: int, seeds, overrides=None, lrs=None) -> list[RunSpec]:
    """One RunSpec per cell, learning rate and seed; ``seeds`` is a count (seeds 0 to seeds - 1)
    or the seeds themselves, so a later seed can be trained alone and counted with the earlier
    ones by a later grid over the same folder; ``overrides`` (TrainConfig fields other than
    CELL_SETTINGS, e.g. schedule, clip_grad_norm, binarize) apply to every run, and ``lrs``
    (several learning rates) makes the rate an axis of the grid, as the paper's selection
    "from a discrete range chosen based on the validation set" (section 4).

    The augmentation experiment sets the binarization per column (its point), so it refuses one."""
    overrides = dict(overrides or {})
    if lrs:
        if "lr" in overrides:
            raise ValueError("lr: give one rate as an override or several as lrs, not both")
        if len(set(lrs)) != len(lrs):
            raise ValueError(f"lr: the rates must differ, got {list(lrs)}")
    else:
        lrs = [overrides.pop("lr", DEFAULT_LR)]
    fixed = sorted(set(overrides) & set(CELL_SETTINGS))
    if fixed:
        raise ValueError(f"cannot override {', '.join(fixed)} for a whole grid: the cells set them")
    if experiment.name == "augmentation" and "binarize" in overrides:
        raise ValueError("binarize cannot be set for augmentation: the experiment compares dynamic "
                         "binarization (augmentation) with static binarization and noise (denoising)")
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds: expected distinct seeds from 0 on, got {seeds}")
    specs = []
    for cell in experiment.cells:
        for lr in lrs:
            for seed in seeds:
                settings = dict(cell.settings, epochs=epochs, seed=seed, lr=lr)
                settings.update(overrides)
                settings = TrainConfig(**settings).to_dict()  # validated, defaults filled in, as recorded
                specs.append(RunSpec(cell, seed, settings,
                                     str(Path(out) / "runs" / run_name(cell, seed, settings))))
    return specs


def run_problems(run_dir, config_dict: dict) -> tuple[dict | None, list[str]]:
    """(the configuration ``run_dir`` records, or None when it holds no run yet; why the run
    cannot be counted or continued as the run ``config_dict`` asks for: another protocol, or
    trained for more epochs than asked)."""
    recorded_file = Path(run_dir) / "config.json"
    if not recorded_file.exists():
        return None, []
    try:
        recorded = json.loads(recorded_file.read_text())
        if not isinstance(recorded, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return None, [f"{recorded_file} cannot be read ({err}); move the run folder aside"]
    try:
        recorded = {**recorded, **TrainConfig.from_dict(recorded).to_dict()}   # every setting, checked
    except (TypeError, ValueError) as err:
        return None, [f"{recorded_file} is not a valid configuration ({err})"]
    requested = TrainConfig(**config_dict).to_dict()
    diffs = [f"{k}: run has {recorded.get(k)!r}, grid asks {v!r}"
             for k, v in defining_settings(requested).items()
             if k not in GRID_RESUMABLE_CHANGES and recorded.get(k) != v]
    if diffs:
        return recorded, [f"{run_dir} was trained with another protocol ({'; '.join(diffs)})"]
    trained = trained_epochs(Path(run_dir) / "last.h5")
    if trained is not None and trained > requested["epochs"]:
        return recorded, [f"{run_dir} was trained for {trained} epochs; ask for at least that many"]
    return recorded, []


def check_existing_runs(specs):
    """Hold every run a grid would count or continue to its request, before anything is
    trained or written: RunDirectoryError listing every run that does not match."""
    problems = [problem for spec in specs for problem in run_problems(spec.run_dir, spec.config)[1]]
    if problems:
        runs = f"{len(problems)} runs do" if len(problems) > 1 else "a run does"
        raise RunDirectoryError(f"{runs} not match this request: {'; '.join(problems)}; choose another --out, "
                                "or move those folders aside, or ask for the settings they were trained with")


