"""Which files each data set needs, where they are looked for, how they are verified.

Every file is pinned by the SHA-256 of its DECOMPRESSED content (for Frey
Face, of the ``ff`` array transposed to (1965, 560), C order), so a copy
from any mirror, or rebuilt from another format, is accepted if and only if
it holds exactly the canonical data.

No parser is given more than a pinned file's size. An IDX file is decompressed
through a cap of twice its known size (a gzip bomb is refused, never inflated),
then hashed and parsed from those bounded bytes (the parser names a malformed
file). A MATLAB file, whose variables a parser would have to inflate to find
``ff``, is pinned by the SHA-256 and size of the file itself as well, checked on a
capped read before ``loadmat`` sees it: a file holding ``ff`` and anything else is
not the canonical one, and is refused unread.

Where files are looked for, in order:

1. an explicit directory (``--data-dir``);
2. the environment variable ``NPDVAE_DATA_DIR``;
3. the default data directory: the checkout's ``datasets/`` folder when
   npdvae runs from a source checkout, else ``$XDG_CACHE_HOME/npdvae``
   (``~/.cache/npdvae``);
4. for Fashion-MNIST only, Debian's ``/usr/share/datasets/fashion-mnist``.

In each directory a data set lives in its own sub-folder (``mnist/``,
``frey_face/``, ``fashion-mnist/``); a directory that holds the files
directly is accepted too. Downloads go into the first folder the user named
(``--data-dir``, else ``NPDVAE_DATA_DIR``), else into the default data directory:
nothing is written outside a data folder that was named.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from npdvae.data.idx import IdxFormatError, parse_idx

ENV_VAR = "NPDVAE_DATA_DIR"


class DataError(Exception):
    """A data file is missing, unreadable or not the canonical data."""


class ChecksumError(DataError):
    def __init__(self, path, expected, actual, moved_to=None):
        self.path, self.expected, self.actual, self.moved_to = path, expected, actual, moved_to
        super().__init__(path, expected, actual, moved_to)   # args rebuild it after pickling

    def __str__(self):
        where = f"; moved aside to {self.moved_to}" if self.moved_to else ""
        return f"{self.path}: SHA-256 mismatch: expected {self.expected}, got {self.actual}{where}"


@dataclass(frozen=True)
class DataFile:
    """One file of a data set: its name, content pin, layout and mirrors."""

    filename: str
    sha256: str          # of the decompressed content (see module docstring)
    kind: str            # "idx-gz" or "frey-mat"
    shape: tuple
    mirrors: tuple = ()  # base URLs; the file's URL is base + filename
    # the file's own bytes, for formats a parser must inflate to reach the data (MATLAB)
    file_sha256: str | None = None
    file_size: int | None = None


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    subdir: str
    files: tuple
    system_dirs: tuple = ()


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)


def _idx_files(pins, mirrors):
    shapes = {"train-images": (60000, 28, 28), "train-labels": (60000,),
              "t10k-images": (10000, 28, 28), "t10k-labels": (10000,)}
    return tuple(
        DataFile(f"{stem}-idx{len(shape)}-ubyte.gz", pins[stem], "idx-gz", shape, mirrors)
        for stem, shape in shapes.items()
    )


# Sam Roweis's page, where the file was published, then the Internet Archive's copy of that
# page ("id_" asks for the archived bytes as they were served, without the archive's banner).
# Any copy will do: the file is held to its SHA-256 and size before it is read.
_FREY_MIRRORS = (
    "https://cs.nyu.edu/~roweis/data/",
    "https://web.archive.org/web/2019id_/https://cs.nyu.edu/~roweis/data/",
)

DATASETS = {
    "mnist": DatasetSpec("mnist", "mnist", _idx_files({
        "train-images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    }, _MNIST_MIRRORS)),
    "fashion-mnist": DatasetSpec("fashion-mnist", "fashion-mnist", _idx_files({
        "train-images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    }, _FASHION_MIRRORS), system_dirs=("/usr/share/datasets/fashion-mnist",)),
    "frey-face": DatasetSpec("frey-face", "frey_face", (
        DataFile("frey_rawface.mat", "2438ba4f0d2a6bd8bac43de756141eaa33c8d248dd613d464bdb1210d9b7af78",
                 "frey-mat", (560, 1965), _FREY_MIRRORS,
                 file_sha256="a2df38f262b4e5b30264bfea5d4d483b1741e0b489f7aa7d2c710bbf3400b6ee", file_size=1100584),
    )),
}


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


# --------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------


def default_data_dir() -> Path:
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "setup.cfg").is_file() and (checkout / "datasets").is_dir():
        return checkout / "datasets"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "npdvae"


class DataDirError(DataError):
    """A data folder named by the user (--data-dir, $NPDVAE_DATA_DIR) does not exist."""


def check_data_dirs(data_dir=None):
    """A folder the user named must exist: a typo must not send the tool to another folder."""
    if data_dir and not Path(data_dir).is_dir():
        raise DataDirError(f"--data-dir {data_dir}: no such folder")
    if os.environ.get(ENV_VAR) and not Path(os.environ[ENV_VAR]).is_dir():
        raise DataDirError(f"{ENV_VAR}={os.environ[ENV_VAR]}: no such folder")


def candidate_dirs(spec: DatasetSpec, data_dir=None) -> list[Path]:
    """Folders that may hold the data set's files, in the order they are tried."""
    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get(ENV_VAR):
        roots.append(Path(os.environ[ENV_VAR]))
    roots.append(default_data_dir())
    dirs = []
    for root in roots:
        dirs += [root / spec.subdir, root]
    dirs += [Path(d) for d in spec.system_dirs]
    unique = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def download_dir(spec: DatasetSpec, data_dir=None) -> Path:
    """Where missing files go: the data set's sub-folder of the folder the user named, else of
    the default data directory."""
    root = data_dir or os.environ.get(ENV_VAR) or default_data_dir()
    return Path(root) / spec.subdir


# --------------------------------------------------------------------------
# Reading with verification
# --------------------------------------------------------------------------


def idx_size(shape) -> int:
    """Bytes of an IDX file of unsigned bytes with this shape: header and values."""
    return 4 + 4 * len(shape) + int(np.prod(shape, dtype=np.int64))


def _decompress(path: Path, size: int) -> bytes:
    """The file's decompressed bytes, reading at most twice its known ``size``: a file that
    inflates far past it (a damaged file or a gzip bomb) is refused, never read whole. Up to
    that cap the format check names what is wrong (a wrong length or shape)."""
    limit = 2 * size + 1024
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read(limit + 1)
        if len(raw) > limit:
            raise DataError(f"{path}: decompresses to more than {limit} bytes, while the file holds "
                            f"{size}; not the canonical file")
        return raw
    except EOFError:
        raise DataError(f"{path}: truncated gzip stream (the file ends before the data does)") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as err:
        raise DataError(f"{path}: not a valid gzip file ({err})") from None


def _read_capped(path: Path, size: int) -> bytes:
    """At most ``size + 1`` bytes of the file: enough to tell that a longer file is not the pinned one."""
    try:
        with open(path, "rb") as f:
            return f.read(size + 1)
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err})") from None


def _frey_array(path: Path, raw: bytes) -> np.ndarray:
    """``ff`` of the MATLAB file whose (verified) bytes are ``raw``, transposed to (1965, 560)."""
    from scipy.io import loadmat

    try:
        ff = loadmat(io.BytesIO(raw), variable_names=["ff"])["ff"]
    except KeyError:
        raise DataError(f"{path}: no variable 'ff' in the MATLAB file") from None
    except Exception as err:  # scipy raises several types for a damaged file
        raise DataError(f"{path}: not a readable MATLAB file ({err})") from None
    if ff.shape != (560, 1965) or ff.dtype != np.uint8:
        raise DataError(f"{path}: 'ff' must be a 560 x 1965 uint8 array, got {ff.shape} {ff.dtype}")
    return np.ascontiguousarray(ff.T)


def read_file(path: Path, file: DataFile) -> np.ndarray:
    """The file's array, parsed only from bytes that match its pins (see the module docstring):
    ChecksumError when they do not, DataError naming the fault when the file cannot be read."""
    if file.kind == "idx-gz":
        raw = _decompress(path, idx_size(file.shape))
        digest = hashlib.sha256(raw).hexdigest()
        try:   # a mismatch is diagnosed by the parser, on bytes the cap has already bounded
            array = parse_idx(raw, str(path), file.shape)
        except IdxFormatError as err:
            raise DataError(str(err)) from None
        if digest != file.sha256:   # well-formed, but not the canonical data
            raise ChecksumError(path, file.sha256, digest)
        return array
    raw = _read_capped(path, file.file_size)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != file.file_sha256:
        if len(raw) > file.file_size:
            raise DataError(f"{path}: larger than the canonical {file.filename} ({file.file_size} bytes); "
                            "not read further")
        raise ChecksumError(path, file.file_sha256, digest)
    array = _frey_array(path, raw)
    content = hashlib.sha256(array.tobytes()).hexdigest()
    if content != file.sha256:   # cannot happen for the pinned file; the content pin stays the data's
        raise ChecksumError(path, file.sha256, content)
    return array


def move_aside(path: Path) -> Path | None:
    """Rename a bad file so it is never read again and never overwrites a good one."""
    target = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        path.rename(target)
        return target
    except OSError:
        return None  # read-only location: the error still names the file


def read_verified(path: Path, file: DataFile) -> np.ndarray:
    """Read and verify one file; a file that fails is moved aside and an error raised."""
    try:
        return read_file(path, file)
    except ChecksumError as err:
        raise ChecksumError(path, err.expected, err.actual, move_aside(path)) from None
    except DataError as err:
        moved = move_aside(path)
        raise DataError(f"{err}" + (f"; moved aside to {moved}" if moved else "")) from None


def find_file(spec: DatasetSpec, file: DataFile, data_dir=None) -> Path | None:
    """The first of the candidate folders that holds the file; DataError naming a symbolic link
    in its place that leads nowhere (a loop, or a missing target), which is not a missing file
    to download over."""
    for folder in candidate_dirs(spec, data_dir):
        path = folder / file.filename
        if path.is_file():
            return path
        if path.is_symlink():
            raise DataError(f"{path} is a symbolic link that leads to no file (a loop, or a target that is "
                            "gone): remove it or point it at the file")
    return None


def describe(spec: DatasetSpec, data_dir=None, verify: bool = False) -> list[dict]:
    """Per file: where it was found (or None) and, with ``verify``, whether
    its content matches the pin (read-only: nothing is moved)."""
    rows = []
    for file in spec.files:
        try:
            path = find_file(spec, file, data_dir)
        except DataError as err:   # a link that leads nowhere: there, but no file
            rows.append({"dataset": spec.name, "file": file.filename, "path": None, "verified": False,
                         "problem": str(err)})
            continue
        row = {"dataset": spec.name, "file": file.filename, "path": str(path) if path else None,
               "verified": None, "problem": None}
        if path and verify:
            try:
                read_file(path, file)
                row["verified"] = True
            except ChecksumError as err:
                row["verified"], row["problem"] = False, f"SHA-256 {err.actual} != expected {err.expected}"
            except DataError as err:
                row["verified"], row["problem"] = False, str(err)
        rows.append(row)
    return rows


def gzip_bytes(raw: bytes, level: int = 1) -> bytes:
    """Deterministic gzip (no timestamp), for files we write ourselves. Level 1 by default:
    the pins hold the decompressed bytes, so a stronger level would only cost time (for
    MNIST's training images, several times that of reading them)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=level) as f:
        f.write(raw)
    return buffer.getvalue()
