"""A gaps analysis kept in a folder, so that a long one can stop anywhere and continue.

    FOLDER/gaps.jsonl   a header line: the model's parameter digest, every setting, the images
                        it covers (data set, binarization and its seed, each subset's count and
                        SHA-256; absent in records made before), and the AIS step sizes the
                        warm-up settled; then one line per finished batch
                        of images: its subset, its first image, each figure per image
    FOLDER/gaps.json    the report, written once every batch is in
    FOLDER/.lock        the writer's lock

Every batch draws from a stream of its own (the seed, the subset, its first image), so a
continued analysis gives the very numbers an uninterrupted one would, and a batch that was
cut short is simply done again. A folder is only continued by the model and settings that
began it: anything else is refused, naming what differs, and never mixed in.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from npdvae.run_folder.checkpoint import array_checksum
from npdvae.run_folder.run_files import RunLock, RunWriteError, append_line, replace_file

RECORD_NAME = "gaps.jsonl"
REPORT_NAME = "gaps.json"
FORMAT = 1


class GapsRecordError(ValueError):
    """The folder holds another analysis, or a record that cannot be read."""


def finished_figures(folder) -> tuple[dict, dict]:
    """The header (model digest, settings) and the per-image figures of a finished analysis kept
    in ``folder``: ``{subset: {name: (N,) float64}}``, images in order, and each subset's
    ``q_star_last_change`` (one per batch), which is what
    :func:`npdvae.evaluation.gaps.summarize` takes, so the report can be recomputed from the
    record. Read only; a folder whose report (gaps.json) is not written yet is refused, so that
    a half-done analysis is never compared as if it were whole."""
    folder = Path(folder)
    path = folder / RECORD_NAME
    if not (folder / REPORT_NAME).is_file() or not path.is_file():
        raise GapsRecordError(f"{folder} holds no finished gaps analysis (no {REPORT_NAME}); run npdvae gaps "
                              "with --out to the end first")
    try:
        lines = path.read_text().splitlines()
        header = json.loads(lines[0])
        batches = [json.loads(line) for line in lines[1:]]
        if header.get("format") != FORMAT or not isinstance(header.get("settings"), dict) \
                or not isinstance(header.get("model"), str):
            raise ValueError("its header is not a gaps header of this npdvae")
        by_subset: dict[str, list] = {}
        unique = {(b["subset"], int(b["first"])): b for b in batches}   # a batch written twice counts once
        for key in sorted(unique):
            by_subset.setdefault(key[0], []).append(unique[key])
        figures = {}
        for subset, parts in by_subset.items():
            figures[subset] = {name: np.concatenate([np.asarray(b["figures"][name], dtype=np.float64) for b in parts])
                               for name in parts[0]["figures"]}
            figures[subset]["q_star_last_change"] = np.array([float(b["last_change"]) for b in parts])
    except (OSError, UnicodeDecodeError, IndexError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise GapsRecordError(f"{path} cannot be read as a finished gaps record ({err})") from None
    return {"model": header.get("model"), "settings": header.get("settings"), "images": header.get("images")}, figures


def _images_difference(a: dict, b: dict) -> str:
    """How two records' images differ, in words."""
    for key in ("dataset", "binarization", "binarization_seed"):
        if a.get(key) != b.get(key):
            return f"{key} {a.get(key)!r} against {b.get(key)!r}"
    for subset in sorted(set(a) | set(b)):
        if a.get(subset) != b.get(subset):
            return f"other {subset} images"
    return "other images"


def images_problem(first: dict, second: dict) -> str | None:
    """Why the analyses of headers ``first`` and ``second`` (as :func:`finished_figures` gives
    them) do not cover the same images; None when they do, or when a record made before records
    named their images cannot say."""
    a, b = first.get("images"), second.get("images")
    if a is None or b is None or a == b:
        return None
    return _images_difference(a, b)


def pairing_problem(first: dict, second: dict) -> str | None:
    """Why two finished analyses (headers as :func:`finished_figures` gives them) cannot be
    subtracted image by image, as a phrase that follows the two folders' names; None when they
    can. They must be of two models, with the same settings (the same estimators and seed, so
    the same draws) and of the same images."""
    settings_a, settings_b = first["settings"], second["settings"]
    differences = [f"{key} {settings_a.get(key)!r} against {settings_b.get(key)!r}"
                   for key in sorted(set(settings_a) | set(settings_b)) if settings_a.get(key) != settings_b.get(key)]
    if differences:
        return (f"were analysed with other settings ({'; '.join(differences)}); "
                "only analyses of the same images with the same settings are compared")
    problem = images_problem(first, second)
    if problem:
        return f"are analyses of other images ({problem}); only analyses of the same images are compared"
    if first["model"] == second["model"]:
        return "are analyses of the same model"
    return None


def params_digest(params: dict) -> str:
    """SHA-256 over every parameter array's name and checksum: which model a record is of."""
    digest = hashlib.sha256()
    for name in sorted(params):
        digest.update(f"{name}:{array_checksum(params[name])};".encode())
    return digest.hexdigest()


class GapsRecord:
    """The batches of one analysis that are done, and the means to add the next."""

    def __init__(self, folder, settings: dict, model_digest: str, images: dict | None = None):
        self.folder = Path(folder)
        self.images = images
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunWriteError(self.folder, err) from None
        self.lock = RunLock(self.folder, holder="another npdvae gaps").acquire()
        self.path = self.folder / RECORD_NAME
        self.settings, self.model_digest = settings, model_digest
        self.step_sizes: np.ndarray | None = None
        self.batches: dict[tuple[str, int], dict] = {}
        if self.path.exists():
            try:
                self._read()
            except GapsRecordError:
                self.lock.release()   # refused: the folder is left as it was, to others as well
                raise

    def _read(self):
        try:
            lines = self.path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise GapsRecordError(f"{self.path} cannot be read as a gaps record ({err}); move the folder aside "
                                  "or choose another --out") from None
        try:
            header = json.loads(lines[0])
        except (IndexError, json.JSONDecodeError):
            raise GapsRecordError(f"{self.path}: its first line is not a gaps header; move the folder aside "
                                  "or choose another --out") from None
        if header.get("format") != FORMAT or "settings" not in header or "model" not in header:
            raise GapsRecordError(f"{self.path} is not a gaps record of this npdvae; choose another --out")
        if header["model"] != self.model_digest:
            raise GapsRecordError(f"{self.folder} holds the gaps of another model (parameters {header['model'][:12]}, "
                                  f"not {self.model_digest[:12]}); choose another --out")
        differences = [f"{key} {header['settings'].get(key)!r} there, {value!r} here"
                       for key, value in self.settings.items() if header["settings"].get(key) != value]
        if differences:
            raise GapsRecordError(f"{self.folder} holds gaps of other settings ({'; '.join(differences)}); "
                                  "give the same options to continue it, or choose another --out")
        if self.images is not None and header.get("images") not in (None, self.images):
            raise GapsRecordError(f"{self.folder} holds gaps of other images ({_images_difference(header['images'], self.images)}); "
                                  "choose another --out")
        self.step_sizes = np.asarray(header["step_sizes"], dtype=np.float64)
        for number, line in enumerate(lines[1:], start=2):
            try:
                batch = json.loads(line)
                key = (batch["subset"], int(batch["first"]))
                figures = {name: np.asarray(values, dtype=np.float64) for name, values in batch["figures"].items()}
                self.batches[key] = {"figures": figures, "last_change": float(batch["last_change"])}
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                if number == len(lines):
                    # a line cut short by a stop: cut it off, so that the next batch starts a line
                    # of its own, and do that batch again
                    kept = "".join(line + "\n" for line in lines[:-1]).encode()
                    with open(self.path, "r+b") as f:
                        f.truncate(len(kept))
                    break
                raise GapsRecordError(f"{self.path}, line {number}: not a batch record; the file was edited "
                                      "or damaged; choose another --out") from None

    def begin(self, step_sizes: np.ndarray):
        """Write the header of a new record, with the warm-up's step sizes."""
        self.step_sizes = np.asarray(step_sizes, dtype=np.float64)
        header = {"format": FORMAT, "model": self.model_digest, "settings": self.settings,
                  "step_sizes": self.step_sizes.tolist()}
        if self.images is not None:
            header["images"] = self.images
        replace_file(self.path, (json.dumps(header) + "\n").encode())

    def add(self, subset: str, first: int, figures: dict, last_change: float):
        append_line(self.path, json.dumps({"subset": subset, "first": first, "last_change": last_change,
                                           "figures": {name: np.asarray(v).tolist() for name, v in figures.items()}}))
        self.batches[(subset, first)] = {"figures": figures, "last_change": last_change}

    def write_report(self, report: dict):
        replace_file(self.folder / REPORT_NAME, (json.dumps(report, indent=2) + "\n").encode())

    def close(self):
        self.lock.release()


__all__ = ["GapsRecord", "GapsRecordError", "finished_figures", "images_problem", "pairing_problem", "params_digest",
           "RECORD_NAME", "REPORT_NAME"]
