"""The data sets as the model sees them: splits, binarization, minibatches.

MNIST and Fashion-MNIST (section 4): the first 50,000 training images train,
the last 10,000 validate, the 10,000 t10k images test. Pixels are binarized:

* ``dynamic``: every time a minibatch is drawn, each pixel is resampled from
  Bernoulli(intensity / 255), so the model never sees the same binary image
  twice (the usual protocol of Burda et al.);
* ``static``: one draw for the whole training set, from a recorded seed.

Validation and test images are binarized once, with the fixed seed
:data:`EVAL_BINARIZATION_SEED`, so numbers from different runs are
comparable. Training images stay uint8 until a minibatch is drawn.

Frey Face: 1965 faces of 28 x 20 pixels scaled to [0, 1], split by a seeded
permutation (:data:`FREY_SPLIT_SEED`) into 1572 train, 295 validation and
98 test faces. The paper's "1572 / 295 / 200" cannot be: 1572 + 295 + 200 =
2067 > 1965 faces. 1572 and 295 are 80% and 15% of 1965; the remaining 5%,
98 faces, is the test set.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pathlib import Path

import numpy as np

from npdvae.data.download import ProgressFn, fetch
from npdvae.data.files import DataError, check_data_dirs, get_spec, read_verified

EVAL_BINARIZATION_SEED = 20161125
FREY_SPLIT_SEED = 0
FREY_SPLIT = (1572, 295, 98)
MNIST_TRAIN_SIZE = 50_000
BINARIZATIONS = ("dynamic", "static")
SPLITS = ("train", "valid", "test")


def split_sizes(name: str) -> dict:
    """Images per split of a data set, known before any file is read: MNIST and Fashion-MNIST
    train on the first 50,000 training images, validate on the rest and test on t10k; Frey
    Face is split 1572 / 295 / 98."""
    spec = get_spec(name)
    if spec.files[0].kind != "idx-gz":
        return dict(zip(SPLITS, FREY_SPLIT))
    train, test = (next(f.shape[0] for f in spec.files if f.filename.startswith(stem))
                   for stem in ("train-images", "t10k-images"))
    return {"train": MNIST_TRAIN_SIZE, "valid": train - MNIST_TRAIN_SIZE, "test": test}


def binarize(intensities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """x_d ~ Bernoulli(intensity_d / 255) for uint8 intensities; float32 0/1 out.

    P(255 u < v) = v / 255 for u ~ U[0, 1), so one uniform per pixel suffices.
    """
    return (rng.random(intensities.shape, dtype=np.float32) * 255 < intensities).astype(np.float32)


@dataclass
class Dataset:
    """Images per split, flattened to (N, D), and how minibatches are made.

    ``images[split]`` is uint8: intensities 0..255 where binarization is
    dynamic (train only), 0/1 where binarized once; for Frey Face it is
    float32 in [0, 1]. :meth:`batch` returns float32 ready for the model.
    """

    name: str
    likelihood: str
    image_shape: tuple
    images: dict
    labels: dict = field(default_factory=dict)
    binarization: str | None = None
    binarization_seed: int | None = None
    folder: str | None = None      # where the files were read (set by load_dataset)

    @property
    def input_dim(self) -> int:
        return int(np.prod(self.image_shape))

    def num_examples(self, split: str) -> int:
        return self.images[split].shape[0]

    @property
    def dynamic(self) -> bool:
        return self.binarization == "dynamic"

    def batch(self, split: str, indices, rng: np.random.Generator | None = None) -> np.ndarray:
        """The float32 images at ``indices``; dynamic binarization draws from ``rng``."""
        images = self.images[split][indices]
        if split == "train" and self.dynamic:
            if rng is None:
                raise ValueError("dynamic binarization needs a random generator")
            return binarize(images, rng)
        return images.astype(np.float32)

    def pixel_mean(self, split: str = "train") -> np.ndarray:
        """Mean of each pixel in [0, 1] (for binarized data, its expected value)."""
        images = self.images[split]
        scale = 255.0 if (split == "train" and self.dynamic) else 1.0
        return images.mean(axis=0, dtype=np.float64) / scale

    def subset(self, train=None, valid=None, test=None) -> "Dataset":
        """The first ``n`` examples of each split (for quick runs and tests)."""
        sizes = {"train": train, "valid": valid, "test": test}
        images = {s: (a[:sizes[s]] if sizes[s] else a) for s, a in self.images.items()}
        labels = {s: (a[:sizes[s]] if sizes[s] else a) for s, a in self.labels.items()}
        return replace(self, images=images, labels=labels)


def _load_idx_dataset(name, arrays, binarization, binarization_seed) -> Dataset:
    if binarization not in BINARIZATIONS:
        raise ValueError(f"binarization must be one of {BINARIZATIONS}, got {binarization!r}")
    train_all = arrays["train-images-idx3-ubyte.gz"].reshape(60000, -1)
    train_labels = arrays["train-labels-idx1-ubyte.gz"]
    test_images = arrays["t10k-images-idx3-ubyte.gz"].reshape(10000, -1)
    eval_rng = np.random.default_rng(EVAL_BINARIZATION_SEED)
    images = {
        "valid": binarize(train_all[MNIST_TRAIN_SIZE:], eval_rng).astype(np.uint8),
        "test": binarize(test_images, eval_rng).astype(np.uint8),
    }
    train = np.ascontiguousarray(train_all[:MNIST_TRAIN_SIZE])
    if binarization == "static":
        train = binarize(train, np.random.default_rng(binarization_seed)).astype(np.uint8)
    images["train"] = train
    labels = {"train": train_labels[:MNIST_TRAIN_SIZE], "valid": train_labels[MNIST_TRAIN_SIZE:],
              "test": arrays["t10k-labels-idx1-ubyte.gz"]}
    return Dataset(name, "bernoulli", (28, 28), images, labels, binarization,
                   binarization_seed if binarization == "static" else None)


def _load_frey(arrays) -> Dataset:
    faces = arrays["frey_rawface.mat"].astype(np.float32) / 255.0   # (1965, 560)
    order = np.random.default_rng(FREY_SPLIT_SEED).permutation(faces.shape[0])
    n_train, n_valid, n_test = FREY_SPLIT
    cuts = np.split(order, [n_train, n_train + n_valid])
    images = {split: faces[np.sort(idx)] for split, idx in zip(SPLITS, cuts)}
    return Dataset("frey-face", "gaussian", (28, 20), images)


def _as_seen_from_here(folder: str) -> str:
    """A folder under the current directory as a relative path (datasets/mnist), others as they are."""
    try:
        return str(Path(folder).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return folder


def load_dataset(name: str, data_dir=None, binarization: str = "dynamic", binarization_seed: int = 0,
                 progress: ProgressFn | None = None, say=None, **fetch_options) -> Dataset:
    """Find (downloading if needed), verify and split a data set.

    ``binarization`` and ``binarization_seed`` apply to the binary data sets
    only. Raises :class:`~npdvae.data.files.DataError` naming the file when a
    file is missing, damaged or not the canonical data, or when ``data_dir``
    (or $NPDVAE_DATA_DIR) names a folder that does not exist. ``say(message)``
    hears where the data came from; the returned Dataset's ``folder`` is where
    its files were read.
    """
    check_data_dirs(data_dir)
    spec = get_spec(name)
    paths = fetch(spec, data_dir=data_dir, progress=progress, say=say, **fetch_options)
    arrays = {}
    for file in spec.files:
        try:
            arrays[file.filename] = read_verified(paths[file.filename], file)
        except DataError:
            if say and not paths[file.filename].exists():   # it was moved aside (a read-only folder keeps it)
                say(f"{spec.name}: {paths[file.filename]} failed its check and was moved aside; "
                    "the next run fetches a replacement")
            elif say:
                say(f"{spec.name}: {paths[file.filename]} failed its check and could not be moved aside "
                    "(a read-only folder?): replace or remove it by hand")
            raise
    folders = sorted({str(path.parent) for path in paths.values()})
    if say:
        say(f"{spec.name}: read and verified (SHA-256) from {', '.join(map(_as_seen_from_here, folders))}")
    if name == "frey-face":
        dataset = _load_frey(arrays)
    else:
        dataset = _load_idx_dataset(name, arrays, binarization, binarization_seed)
    return replace(dataset, folder=", ".join(folders))


__all__ = ["Dataset", "DataError", "load_dataset", "binarize", "EVAL_BINARIZATION_SEED", "FREY_SPLIT"]
