"""Model files: a trained model published on its own, small enough to commit and checked on load.

A model file holds what it takes to use and judge a trained model, and nothing to continue
training it (no optimizer state, no random stream)::

    /params/<name>     the best checkpoint's parameters (the model a table scores)
    /curves            float64 (epochs, 3): epoch, training bound, validation bound, for
                       every epoch the run trained (from its last checkpoint), the ones
                       after the best epoch included: that is where over-fitting shows
    attrs: format, epoch (of the best checkpoint), config (JSON, the run's full
           configuration), evaluation (JSON: the run's eval.json, or null if the
           run was never evaluated by a grid), provenance (JSON: the code and
           libraries that exported it, see npdvae/run_folder/provenance.py), trained_by
           (JSON: the same record of the code that trained it, as its best checkpoint
           says; null when that checkpoint records none), source (the run folder's name), run_id
           (the run's identity, npdvae/run_folder/identity.py; absent for a run from
           before identities), checksums (JSON: SHA-256 of every array, as in
           checkpoints)

Reading applies the checkpoint's checks (npdvae/run_folder/checkpoint.py): checksums, finite
parameters, no external data or links, attributes of the right types.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from npdvae.run_folder.checkpoint import (CheckpointError, array_limit, file_format, load_checkpoint, read_array,
                                        read_attr, read_group, read_run_id, refuse_links,
                                        refuse_missing_or_linked, refuse_non_finite, write_checksummed)
from npdvae.training.config import TrainConfig
from npdvae.training.selection import mark_best
from npdvae.run_folder.evaluation_record import EVALUATION_NAME, evaluation_problem, read_evaluation
from npdvae.run_folder.identity import UNKNOWN, identity_problem, recorded_run_id
from npdvae.run_folder.provenance import provenance
from npdvae.run_folder.run_files import replace_file

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
    run_id: str | None = None   # the identity of the run it was exported from
    trained_by: dict | None = None   # the provenance the best checkpoint records of its writer

    def history(self) -> list[dict]:
        """The curves as a run's epoch records (metrics.jsonl's keys), for plots and milestones;
        ``best`` marked by the run's selection rule, as its training marked it."""
        records = [{"epoch": int(epoch), "train_bound": float(train), "valid_bound": float(valid)}
                   for epoch, train, valid in self.curves]
        config = TrainConfig.from_dict(self.config)
        return mark_best(records, config.epochs, config.select_every, config.select_after)


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

    The checkpoint must be the run's (its identity, npdvae/run_folder/identity.py), and the
    evaluation is taken only if it is the result of that checkpoint (same identity, same
    configuration, same best epoch); a missing one leaves ``evaluation`` None."""
    run_dir = Path(run_dir)
    best = run_dir / "best.h5"
    if not best.is_file():
        raise CheckpointError(f"{run_dir} holds no best.h5: not a run folder, or a run not trained for an epoch yet")
    checkpoint = load_checkpoint(best)
    try:
        TrainConfig.from_dict(checkpoint.config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{best}: its configuration is not valid ({err})") from None
    run_id = recorded_run_id(run_dir)
    problem = identity_problem(checkpoint.run_id, checkpoint.config,
                               checkpoint.run_id if run_id is UNKNOWN else run_id)
    if problem:
        raise CheckpointError(f"{best} is not this run's checkpoint: {problem}")
    eval_file = run_dir / EVALUATION_NAME
    evaluation, problem = read_evaluation(eval_file)
    if evaluation is not None:
        problem = evaluation_problem(evaluation, checkpoint.config, checkpoint.run_id, checkpoint.epoch)
    if problem:
        raise CheckpointError(f"{eval_file} is not the evaluation of {best} ({problem}); "
                              "score the run again (rerun its grid) or move the file aside")
    curves = np.array([[h["epoch"], h.get("train_bound", np.nan), h["valid_bound"]]
                       for h in _whole_history(run_dir, checkpoint)], dtype=np.float64).reshape(-1, 3)
    return ModelFile(params=checkpoint.params, config=checkpoint.config, epoch=checkpoint.epoch, curves=curves,
                     evaluation=evaluation, provenance=provenance(), source=run_dir.resolve().name,
                     run_id=checkpoint.run_id, trained_by=_written_by(best))


def _written_by(checkpoint_path: Path) -> dict | None:
    """The provenance a checkpoint records of the code that wrote it (None if it records none)."""
    try:
        with h5py.File(checkpoint_path, "r") as f:
            return read_attr(f, checkpoint_path, "provenance", "json-dict") if "provenance" in f.attrs else None
    except OSError as err:
        raise CheckpointError(f"{checkpoint_path}: unreadable ({err})") from None


def _whole_history(run_dir: Path, best) -> list[dict]:
    """Every epoch the run trained: the history of its last checkpoint, which must be the same
    run's and continue the best checkpoint's history record for record."""
    path = run_dir / "last.h5"
    try:
        last = load_checkpoint(path)
    except CheckpointError as err:
        raise CheckpointError(f"{err}; a model file's curves come from the run's last checkpoint") from None
    shared = last.history[:len(best.history)]
    if last.run_id != best.run_id or len(shared) < len(best.history) or any(
            a["epoch"] != b["epoch"] or not np.isclose(a["valid_bound"], b["valid_bound"], rtol=0, atol=1e-9)
            for a, b in zip(shared, best.history)):
        raise CheckpointError(f"{path} does not continue {run_dir / 'best.h5'} (another run, or another history); "
                              "a model file's curves come from the run's last checkpoint. If the run stopped "
                              "between writing the two (a full disk), `npdvae train --resume --out "
                              f"{run_dir}` writes both again; then export")
    return last.history


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
        if model.run_id is not None:
            f.attrs["run_id"] = model.run_id
        f.attrs["trained_by"] = json.dumps(model.trained_by, sort_keys=True)
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
            config = read_attr(f, path, "config", "json-dict")
            params = read_group(f, path, "params", checksums, array_limit(config))
            refuse_non_finite(params, path)
            if "curves" not in f or not isinstance(f["curves"], h5py.Dataset):
                raise CheckpointError(f"{path}: the dataset 'curves' is missing")
            curves = read_array(f["curves"], path, "curves", checksums)
            if curves.ndim != 2 or curves.shape[1] != 3:
                raise CheckpointError(f"{path}: 'curves' must have 3 columns, has shape {curves.shape}")
            evaluation_text = f.attrs.get("evaluation")
            evaluation = None if evaluation_text in ("null", b"null") else read_attr(f, path, "evaluation",
                                                                                      "json-dict")
            trained_text = f.attrs.get("trained_by", "null")   # absent from the first model files
            trained_by = None if trained_text in ("null", b"null") else read_attr(f, path, "trained_by", "json-dict")
            source = f.attrs.get("source", "")
            model = ModelFile(params=params, config=config,
                              epoch=read_attr(f, path, "epoch", "int>=0"), curves=curves, evaluation=evaluation,
                              provenance=read_attr(f, path, "provenance", "json-dict"),
                              source=source.decode(errors="replace") if isinstance(source, bytes) else str(source),
                              run_id=read_run_id(f, path), trained_by=trained_by)
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: unreadable model file ({err})") from None
    try:
        TrainConfig.from_dict(model.config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: its configuration is not valid ({err})") from None
    problem = identity_problem(model.run_id, model.config, model.run_id)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    if model.evaluation is not None:
        problem = evaluation_problem(model.evaluation, model.config, model.run_id, model.epoch)
        if problem:
            raise CheckpointError(f"{path}: its evaluation is not of its model ({problem})")
    return model
