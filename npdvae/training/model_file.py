"""Model files: a trained model published on its own, small enough to commit and checked on load.

A model file holds what it takes to use and judge a trained model, and nothing to continue
training it (no optimizer state, no random stream)::

    /params/<name>     the best checkpoint's parameters (the model a table scores)
    /curves            float64 (epochs, 3): epoch, training bound, validation bound
    attrs: format, epoch (of the best checkpoint), config (JSON, the run's full
           configuration), evaluation (JSON: the run's eval.json, or null if the
           run was never evaluated by a grid), provenance (JSON: see
           npdvae/training/provenance.py), source (the run folder's name), checksums
           (JSON: SHA-256 of every array, as in checkpoints)

Reading applies the checkpoint's checks (npdvae/training/checkpoint.py): checksums, finite
parameters, no external data or links, attributes of the right types.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from npdvae.training.checkpoint import (CheckpointError, file_format, load_checkpoint, read_array,
                                        read_attr, read_group, refuse_links, refuse_missing_or_linked,
                                        refuse_non_finite, write_checksummed)
from npdvae.training.config import TrainConfig
from npdvae.training.provenance import provenance
from npdvae.training.run_files import replace_file

FORMAT = "npdvae-model-1"


@dataclass
class ModelFile:
    params: dict
    config: dict
    epoch: int
    curves: np.ndarray          # (epochs, 3): epoch, training bound, validation bound
    evaluation: dict | None     # the run's eval.json
    provenance: dict
    source: str


def is_model_file(path) -> bool:
    """True if ``path`` is an HDF5 file that says it is a model file (of any version)."""
    path = Path(path)
    if not path.is_file() or path.is_symlink():
        return False
    try:
        with h5py.File(path, "r") as f:
            fmt = file_format(f)
    except (OSError, ValueError):
        return False
    return isinstance(fmt, str) and fmt.startswith("npdvae-model-")


def model_from_run(run_dir) -> ModelFile:
    """The model file of a run folder: its best checkpoint, curves and evaluation.

    The evaluation is taken only if it is this run's: the same configuration and the
    same best epoch as the checkpoint; a missing one leaves ``evaluation`` None."""
    run_dir = Path(run_dir)
    best = run_dir / "best.h5"
    if not best.is_file():
        raise CheckpointError(f"{run_dir} holds no best.h5: not a run folder, or a run not trained for an epoch yet")
    checkpoint = load_checkpoint(best)
    try:
        TrainConfig.from_dict(checkpoint.config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{best}: its configuration is not valid ({err})") from None
    evaluation = None
    eval_file = run_dir / "eval.json"
    if eval_file.exists():
        try:
            evaluation = json.loads(eval_file.read_text())
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{eval_file} cannot be read ({err}); score the run again "
                                  "(rerun its grid) or move the file aside") from None
        mismatch = _evaluation_mismatch(evaluation, checkpoint.config, checkpoint.epoch)
        if mismatch:
            raise CheckpointError(f"{eval_file} is not the evaluation of {best} ({mismatch}); "
                                  "score the run again (rerun its grid) or move the file aside")
    curves = np.array([[h["epoch"], h.get("train_bound", np.nan), h["valid_bound"]] for h in checkpoint.history],
                      dtype=np.float64).reshape(-1, 3)
    return ModelFile(params=checkpoint.params, config=checkpoint.config, epoch=checkpoint.epoch, curves=curves,
                     evaluation=evaluation, provenance=provenance(), source=run_dir.resolve().name)


def _evaluation_mismatch(evaluation, config: dict, epoch: int) -> str | None:
    if not isinstance(evaluation, dict):
        return "not a JSON object"
    recorded = evaluation.get("config")
    if not isinstance(recorded, dict):
        return "it records no configuration"
    # a run's config may be asked for more epochs after it was scored; all else must agree
    differs = sorted(k for k in set(recorded) | set(config) if k != "epochs" and recorded.get(k) != config.get(k))
    if differs:
        return f"{differs[0]}: {recorded.get(differs[0])!r} against the checkpoint's {config.get(differs[0])!r}"
    if evaluation.get("checkpoint_epoch") != epoch:
        return f"it scored the checkpoint of epoch {evaluation.get('checkpoint_epoch')}, best.h5 is of epoch {epoch}"
    return None


def model_file_bytes(model: ModelFile) -> bytes:
    """The HDF5 image of a model file, built in memory."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["epoch"] = int(model.epoch)
        f.attrs["config"] = json.dumps(model.config, sort_keys=True)
        f.attrs["evaluation"] = json.dumps(model.evaluation, sort_keys=True)
        f.attrs["provenance"] = json.dumps(model.provenance, sort_keys=True)
        f.attrs["source"] = str(model.source)
        arrays = [(f"params/{name}", np.asarray(value)) for name, value in model.params.items()]
        write_checksummed(f, arrays + [("curves", np.asarray(model.curves, dtype=np.float64))])
    return buffer.getvalue()


def save_model_file(path, model: ModelFile):
    """Write ``model`` to ``path`` atomically; RunWriteError names the file on failure."""
    replace_file(path, model_file_bytes(model))


def load_model_file(path) -> ModelFile:
    """Read and check a model file; CheckpointError names what is wrong."""
    path = Path(path)
    refuse_missing_or_linked(path, "model file")
    try:
        with h5py.File(path, "r") as f:
            fmt = file_format(f)
            if fmt != FORMAT:
                raise CheckpointError(f"{path}: not a model file this version reads (format {fmt!r})")
            refuse_links(f, path)
            checksums = read_attr(f, path, "checksums", "json-dict")
            params = read_group(f, path, "params", checksums)
            refuse_non_finite(params, path)
            if "curves" not in f or not isinstance(f["curves"], h5py.Dataset):
                raise CheckpointError(f"{path}: the dataset 'curves' is missing")
            curves = read_array(f["curves"], path, "curves", checksums)
            if curves.ndim != 2 or curves.shape[1] != 3:
                raise CheckpointError(f"{path}: 'curves' must have 3 columns, has shape {curves.shape}")
            evaluation_text = f.attrs.get("evaluation")
            evaluation = None if evaluation_text in ("null", b"null") else read_attr(f, path, "evaluation",
                                                                                      "json-dict")
            source = f.attrs.get("source", "")
            model = ModelFile(params=params, config=read_attr(f, path, "config", "json-dict"),
                              epoch=read_attr(f, path, "epoch", "int>=0"), curves=curves, evaluation=evaluation,
                              provenance=read_attr(f, path, "provenance", "json-dict"),
                              source=source.decode(errors="replace") if isinstance(source, bytes) else str(source))
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: unreadable model file ({err})") from None
    try:
        TrainConfig.from_dict(model.config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its configuration is not valid ({err})") from None
    if model.evaluation is not None:
        mismatch = _evaluation_mismatch(model.evaluation, model.config, model.epoch)
        if mismatch:
            raise CheckpointError(f"{path}: its evaluation is not of its model ({mismatch})")
    return model
