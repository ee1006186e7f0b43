"""Small synthetic data sets, so that training tests need no downloaded data."""

import numpy as np

from npdvae.data import Dataset


def synthetic_dataset(n_train=300, n_eval=60, seed=0):
    """Binary 6 x 6 images: two noisy stripes patterns, uint8 intensities for training."""
    rng = np.random.default_rng(seed)
    patterns = np.zeros((2, 36), np.uint8)
    patterns[0, :18] = 230
    patterns[1, 18:] = 230
    def draw(n):
        return np.clip(patterns[rng.integers(0, 2, n)] + rng.integers(0, 25, (n, 36)), 0, 255).astype(np.uint8)
    images = {"train": draw(n_train), "valid": (draw(n_eval) > 127).astype(np.uint8),
              "test": (draw(n_eval) > 127).astype(np.uint8)}
    return Dataset("mnist", "bernoulli", (6, 6), images, binarization="dynamic")


def synthetic_real_dataset(n_train=300, n_eval=60, seed=0):
    """Real-valued 5 x 4 images in [0, 1] (as Frey Face's), for the Gaussian likelihood."""
    rng = np.random.default_rng(seed)
    base = rng.random((3, 20))
    def draw(n):
        return np.clip(base[rng.integers(0, 3, n)] + 0.1 * rng.standard_normal((n, 20)), 0, 1).astype(np.float32)
    images = {"train": draw(n_train), "valid": draw(n_eval), "test": draw(n_eval)}
    return Dataset("frey-face", "gaussian", (5, 4), images)
