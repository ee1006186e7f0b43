"""The state of a run that continues it bit for bit: parameters, Adam's moments and step, the
epochs done and their records, the random stream, and where an interrupted epoch stood.

The loop makes and restores these; the run folder (:mod:`npdvae.run_folder.checkpoint`)
writes them to HDF5 files and reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class CheckpointError(Exception):
    """A checkpoint that cannot be read, or that belongs to another configuration."""


@dataclass
class EpochState:
    """Where an interrupted epoch stood: its shuffled order, the minibatches done,
    the sum of their bounds and the seconds spent on them."""

    order: np.ndarray
    position: int
    total: float
    seconds: float


@dataclass
class Checkpoint:
    params: dict
    adam_m: dict
    adam_v: dict
    adam_step: int
    epoch: int
    config: dict
    history: list
    rng_state: dict
    epoch_state: EpochState | None = None
    run_id: str | None = None
