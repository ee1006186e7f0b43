"""Checkpoints in HDF5: everything needed to continue a run bit for bit, verified on load.

Layout of a checkpoint file::

    /params/<name>        every parameter array (name as in the model)
    /adam/m/<name>        Adam's first moments
    /adam/v/<name>        Adam's second moments
    /epoch_order          only mid-epoch: the shuffled order of the epoch under way
    attrs: format, epoch, adam_step, config (JSON), history (JSON),
           rng_state (JSON of numpy's bit-generator state), checksums (JSON:
           SHA-256 of every array's dtype, shape and bytes), run_id (the run's
           identity, npdvae/run_folder/identity.py; absent in runs created before
           identities), provenance (JSON: the code and libraries that wrote it,
           npdvae/run_folder/provenance.py), and, mid-epoch, epoch_position (minibatches done),
           epoch_total, epoch_seconds

A checkpoint written at an epoch's end has no ``epoch_order``; one written
when training was interrupted (SIGINT, SIGTERM) holds the epoch under way, so
that resuming ends bit-identical to a run that never stopped.

Writing: the whole HDF5 image is built in memory (h5py on a BytesIO) and put
on disk by :func:`npdvae.run_folder.run_files.replace_file` in one write, fsync and
rename. h5py therefore never writes into a file on a full disk (where it was
seen to crash), and a process killed at any moment leaves the previous
checkpoint or the new one, never a half-written file.

Reading refuses, naming what failed: a file that is not a checkpoint, an
attribute of the wrong type, an array whose checksum does not match (flipped
bytes), a non-finite parameter, and any external dataset, external link or
soft link (which would read data from outside the file).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from pathlib import Path

import h5py
import numpy as np

from npdvae.data.datasets import split_sizes
from npdvae.run_folder.provenance import provenance
from npdvae.training.config import MAX_PARAMETER_BYTES, TrainConfig
from npdvae.training.state import Checkpoint, CheckpointError, EpochState  # noqa: F401  (what the files hold)
from npdvae.run_folder.run_files import replace_file

FORMAT = "npdvae-checkpoint-2"
# the most parameter values any configuration TrainConfig accepts (4 float32 arrays of each: values,
# gradients, and Adam's two moments)
GENERIC_ARRAY_LIMIT = MAX_PARAMETER_BYTES // (4 * 4)
READABLE_FORMATS = ("npdvae-checkpoint-1", FORMAT)   # format 1: no checksums, no mid-epoch state


def array_checksum(array: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes: a flipped byte or a reshaped array differs."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def _arrays(checkpoint: Checkpoint):
    """(path in the file, array) of every array the checkpoint stores."""
    for group, arrays in (("params", checkpoint.params), ("adam/m", checkpoint.adam_m),
                          ("adam/v", checkpoint.adam_v)):
        for name, value in arrays.items():
            yield f"{group}/{name}", np.asarray(value)
    if checkpoint.epoch_state is not None:
        yield "epoch_order", np.asarray(checkpoint.epoch_state.order, dtype=np.int64)


def write_checksummed(f, arrays):
    """Each (path, array) as a dataset of the open file ``f``, and the ``checksums``
    attribute that reading holds every one of them to."""
    checksums = {}
    for path, value in arrays:
        f.create_dataset(path, data=value)
        checksums[path] = array_checksum(value)
    f.attrs["checksums"] = json.dumps(checksums, sort_keys=True)


def checkpoint_bytes(checkpoint: Checkpoint) -> bytes:
    """The HDF5 image of a checkpoint, built in memory."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["epoch"] = int(checkpoint.epoch)
        f.attrs["adam_step"] = int(checkpoint.adam_step)
        f.attrs["config"] = json.dumps(checkpoint.config, sort_keys=True)
        f.attrs["history"] = json.dumps(checkpoint.history)
        f.attrs["rng_state"] = json.dumps(checkpoint.rng_state)
        if checkpoint.run_id is not None:
            f.attrs["run_id"] = checkpoint.run_id
        f.attrs["provenance"] = json.dumps(provenance(), sort_keys=True)
        write_checksummed(f, _arrays(checkpoint))
        if checkpoint.epoch_state is not None:
            state = checkpoint.epoch_state
            f.attrs["epoch_position"] = int(state.position)
            f.attrs["epoch_total"] = float(state.total)
            f.attrs["epoch_seconds"] = float(state.seconds)
    return buffer.getvalue()


def save_checkpoint(path, checkpoint: Checkpoint):
    """Write ``checkpoint`` to ``path`` atomically; a failure raises RunWriteError naming the file."""
    replace_file(path, checkpoint_bytes(checkpoint))


# --------------------------------------------------------------------------
# Reading, with every check
# --------------------------------------------------------------------------


def read_attr(f, path, name, kind):
    """Attribute ``name`` as ``kind`` ("int>=0", "float", "json-dict", "json-list"), or CheckpointError."""
    if name not in f.attrs:
        raise CheckpointError(f"{path}: attribute {name!r} is missing")
    value = f.attrs[name]
    if kind == "int>=0":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
            raise CheckpointError(f"{path}: attribute {name!r} must be an integer >= 0, got {value!r}")
        return int(value)
    if kind == "float":
        if not isinstance(value, (float, int, np.floating, np.integer)) or not math.isfinite(float(value)):
            raise CheckpointError(f"{path}: attribute {name!r} must be a finite number, got {value!r}")
        return float(value)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if not isinstance(value, str):
        raise CheckpointError(f"{path}: attribute {name!r} must be JSON text, got {type(value).__name__}")
    try:
        decoded = json.loads(value)
    except ValueError as err:
        raise CheckpointError(f"{path}: attribute {name!r} is not valid JSON ({err})") from None
    expected = dict if kind == "json-dict" else list
    if not isinstance(decoded, expected):
        raise CheckpointError(f"{path}: attribute {name!r} must be a JSON {expected.__name__}, "
                              f"got {type(decoded).__name__}")
    return decoded


def read_run_id(f, path) -> str | None:
    """The optional ``run_id`` attribute (None when absent), or CheckpointError if it is not text."""
    if "run_id" not in f.attrs:
        return None
    value = f.attrs["run_id"]
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if not isinstance(value, str):
        raise CheckpointError(f"{path}: attribute 'run_id' must be text, got {type(value).__name__}")
    return value


def refuse_links(f, path):
    """Every object must be a group or a dataset stored inside this file."""
    bad = []

    def visit(group, prefix):
        for name in group:
            link = group.get(name, getlink=True)
            where = f"{prefix}{name}"
            if not isinstance(link, h5py.HardLink):
                bad.append(f"{where} is a {type(link).__name__}")
                continue
            item = group[name]
            if isinstance(item, h5py.Group):
                visit(item, where + "/")
            elif isinstance(item, h5py.Dataset):
                if item.external or item.is_virtual:
                    bad.append(f"{where} keeps its data outside the file")
    visit(f, "")
    if bad:
        raise CheckpointError(f"{path}: refused, {bad[0]} (data must live inside the checkpoint)")


def array_limit(config: dict) -> int:
    """The most values one array of a file of this configuration can hold (its model's parameter
    count, or the training set's size for an epoch's order): checked before an array is read,
    so that a file holding a huge array is refused by name instead of filling the memory."""
    try:
        parsed = TrainConfig.from_dict(config)
    except (TypeError, ValueError):
        return GENERIC_ARRAY_LIMIT
    return max(parsed.parameter_count(), split_sizes(parsed.dataset)["train"])


def read_group(f, path, group, checksums, limit: int = None):
    """Every floating-point array of ``group``, each checked against ``checksums`` (None: unchecked)
    and, before it is read, against ``limit`` values (:func:`array_limit`)."""
    if group not in f or not isinstance(f[group], h5py.Group):
        raise CheckpointError(f"{path}: group {group!r} is missing")
    arrays = {}
    for name in f[group]:
        item = f[group][name]
        if not isinstance(item, h5py.Dataset) or item.dtype.kind != "f":
            raise CheckpointError(f"{path}: {group}/{name} is not a floating-point array")
        arrays[name] = read_array(item, path, f"{group}/{name}", checksums, limit)
    return arrays


def read_array(dataset, path, where, checksums, limit: int = None):
    limit = GENERIC_ARRAY_LIMIT if limit is None else limit
    if dataset.size > limit:
        raise CheckpointError(f"{path}: {where} holds {dataset.size} values, more than a model of its "
                              f"configuration has ({limit}); the file was damaged or made by hand")
    value = np.array(dataset)
    if checksums is not None:
        if where not in checksums:
            raise CheckpointError(f"{path}: {where} has no checksum")
        if array_checksum(value) != checksums[where]:
            raise CheckpointError(f"{path}: {where} fails its checksum (the file was damaged)")
    return value


def refuse_non_finite(params: dict, path):
    for name, value in params.items():
        if not np.all(np.isfinite(value)):
            raise CheckpointError(f"{path}: parameter {name} holds NaN or infinite values")


def refuse_missing_or_linked(path: Path, what: str):
    """A file to read must be a regular file of its own, never a symbolic link to another."""
    if path.is_symlink() or not path.is_file():
        raise CheckpointError(f"{path}: no such {what}" + (" (a symbolic link)" if path.is_symlink() else ""))


def file_format(f) -> str | None:
    """The ``format`` attribute of an open HDF5 file, as text."""
    fmt = f.attrs.get("format")
    return fmt.decode(errors="replace") if isinstance(fmt, bytes) else fmt


def trained_epochs(path) -> int | None:
    """The epochs a checkpoint has done, read from its attributes alone; None when there is
    no such file or it cannot say (loading it in full then names the fault)."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as f:
            return read_attr(f, path, "epoch", "int>=0")
    except (OSError, ValueError, CheckpointError):
        return None


def load_checkpoint(path) -> Checkpoint:
    path = Path(path)
    refuse_missing_or_linked(path, "checkpoint")
    try:
        with h5py.File(path, "r") as f:
            fmt = file_format(f)
            if fmt not in READABLE_FORMATS:
                raise CheckpointError(f"{path}: not an npdvae checkpoint (format {fmt!r})")
            refuse_links(f, path)
            checksums = read_attr(f, path, "checksums", "json-dict") if fmt == FORMAT else None
            config = read_attr(f, path, "config", "json-dict")
            limit = array_limit(config)
            params = read_group(f, path, "params", checksums, limit)
            refuse_non_finite(params, path)
            epoch_state = None
            if "epoch_order" in f:
                epoch_state = EpochState(
                    order=read_array(f["epoch_order"], path, "epoch_order", checksums, limit).astype(np.int64),
                    position=read_attr(f, path, "epoch_position", "int>=0"),
                    total=read_attr(f, path, "epoch_total", "float"),
                    seconds=read_attr(f, path, "epoch_seconds", "float"))
            return Checkpoint(
                params=params, adam_m=read_group(f, path, "adam/m", checksums, limit),
                adam_v=read_group(f, path, "adam/v", checksums, limit),
                adam_step=read_attr(f, path, "adam_step", "int>=0"), epoch=read_attr(f, path, "epoch", "int>=0"),
                config=config, history=read_attr(f, path, "history", "json-list"),
                rng_state=read_attr(f, path, "rng_state", "json-dict"), epoch_state=epoch_state,
                run_id=read_run_id(f, path),
            )
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: unreadable checkpoint ({err})") from None
