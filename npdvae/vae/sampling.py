"""Standard normal draws: the eps of the reparameterization, and Gaussian noise.

A seed means one stream: the Numba twin (:mod:`npdvae.kernels.sampling`) draws the same
float64 numbers from the same generator state and leaves it in the same state, so a
checkpointed state resumes the stream exactly whichever table runs. That holds for the
float64 ziggurat only (Numba's float32 ziggurat drifts from NumPy's: with seed 5 the first
difference is draw 1,321,334), so both draw float64 and round to the working dtype.
"""

from __future__ import annotations

import numpy as np


def standard_normal(rng: np.random.Generator, shape, dtype=np.float32):
    """N(0, 1) draws of ``shape``: NumPy's float64 ziggurat, rounded to ``dtype``."""
    return rng.standard_normal(shape).astype(dtype, copy=False)
