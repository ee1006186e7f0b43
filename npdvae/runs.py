"""Run directories: creating, resuming and reading them.

A run directory holds::

    config.json        the full TrainConfig (every hyperparameter, recorded)
    metrics.jsonl      one JSON record per epoch
    best.h5, last.h5   checkpoints (best by validation bound, and latest)
    samples.png, reconstructions.png   pictures, written by the command line
"""

from __future__ import annotations

import json
from pathlib import Path

from npdvae.checkpoint import load_checkpoint
from npdvae.config import TrainConfig
from npdvae.data import Dataset, load_dataset
from npdvae.model import DVAEModel
from npdvae.train import Trainer


class RunDirectoryError(ValueError):
    pass


def prepare_dataset(config: TrainConfig, data_dir=None, progress=None) -> Dataset:
    dataset = load_dataset(config.dataset, data_dir=data_dir, binarization=config.binarize,
                           binarization_seed=config.seed, progress=progress)
    if config.train_examples or config.eval_examples:
        dataset = dataset.subset(config.train_examples, config.eval_examples, config.eval_examples)
    return dataset


def open_run(config: TrainConfig, run_dir, dataset: Dataset, resume: bool = False) -> Trainer:
    """A Trainer for a new run directory, or for continuing one (``resume``).

    A new run refuses an existing non-empty directory (nothing is ever
    overwritten); resuming needs ``last.h5`` and a matching configuration.
    """
    run_dir = Path(run_dir)
    if resume:
        checkpoint = load_checkpoint(run_dir / "last.h5")
        trainer = Trainer(config, dataset, run_dir)
        trainer.restore(checkpoint)
        _rewrite_metrics(run_dir, trainer.history)  # drop records of epochs after the checkpoint
    else:
        if run_dir.exists() and any(run_dir.iterdir()):
            raise RunDirectoryError(f"{run_dir} already exists and is not empty; "
                                    "use --resume to continue it or choose another --out")
        trainer = Trainer(config, dataset, run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    return trainer


def _rewrite_metrics(run_dir: Path, history):
    with open(run_dir / "metrics.jsonl", "w") as f:
        for record in history:
            f.write(json.dumps(record) + "\n")


def read_run_config(run_dir) -> TrainConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise RunDirectoryError(f"{run_dir}: no config.json, not a run directory")
    return TrainConfig.from_dict(json.loads(path.read_text()))


def read_metrics(run_dir) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def checkpoint_path(run_or_checkpoint, which: str = "best") -> Path:
    """A checkpoint file as given, or ``best.h5`` / ``last.h5`` inside a run directory."""
    path = Path(run_or_checkpoint)
    if path.is_dir():
        path = path / f"{which}.h5"
    if not path.is_file():
        raise RunDirectoryError(f"{path}: no such checkpoint (give a run directory or a .h5 file)")
    return path


def load_trained(run_or_checkpoint, which: str = "best"):
    """(config, model, params) of a trained run, for evaluation and pictures."""
    checkpoint = load_checkpoint(checkpoint_path(run_or_checkpoint, which))
    config = TrainConfig.from_dict(checkpoint.config)
    params = checkpoint.params
    likelihood = "bernoulli" if "decoder.logits.W" in params else "gaussian"
    model = DVAEModel(config.model_config(params["encoder.hidden0.W"].shape[0], likelihood))
    return config, model, params
