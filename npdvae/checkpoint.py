"""Checkpoints in HDF5: everything needed to continue a run bit for bit.

Layout of a checkpoint file::

    /params/<name>        every parameter array (name as in the model)
    /adam/m/<name>        Adam's first moments
    /adam/v/<name>        Adam's second moments
    attrs: format, epoch, adam_step, config (JSON), history (JSON),
           rng_state (JSON of numpy's bit-generator state)

Writes are atomic: the file is written under a temporary name in the same
folder, flushed and fsync'ed, then renamed over the old one. A process
killed at any moment leaves either the previous checkpoint or the new one,
never a half-written file under the checkpoint's name.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

FORMAT = "npdvae-checkpoint-1"


class CheckpointError(Exception):
    """A checkpoint that cannot be read, or that belongs to another configuration."""


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


def save_checkpoint(path, checkpoint: Checkpoint):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp_name, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["epoch"] = checkpoint.epoch
            f.attrs["adam_step"] = checkpoint.adam_step
            f.attrs["config"] = json.dumps(checkpoint.config, sort_keys=True)
            f.attrs["history"] = json.dumps(checkpoint.history)
            f.attrs["rng_state"] = json.dumps(checkpoint.rng_state)
            for group, arrays in (("params", checkpoint.params), ("adam/m", checkpoint.adam_m),
                                  ("adam/v", checkpoint.adam_v)):
                g = f.require_group(group)
                for name, value in arrays.items():
                    g.create_dataset(name, data=value)
            f.flush()
        with open(tmp_name, "rb+") as raw:
            os.fsync(raw.fileno())
        os.replace(tmp_name, path)
        # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_checkpoint(path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise CheckpointError(f"{path}: not an npdvae checkpoint (format {f.attrs.get('format')!r})")

            def read_group(group):
                return {name: np.array(f[group][name]) for name in f[group]}

            return Checkpoint(
                params=read_group("params"), adam_m=read_group("adam/m"), adam_v=read_group("adam/v"),
                adam_step=int(f.attrs["adam_step"]), epoch=int(f.attrs["epoch"]),
                config=json.loads(f.attrs["config"]), history=json.loads(f.attrs["history"]),
                rng_state=json.loads(f.attrs["rng_state"]),
            )
    except (OSError, KeyError) as err:
        raise CheckpointError(f"{path}: unreadable checkpoint ({err})") from None
