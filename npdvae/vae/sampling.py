"""Standard normal draws: the eps of the reparameterization, and Gaussian noise.

A run draws many normals: B x M x K x Z eps per training step (25,000 for
DVAE at K=5) and 2.5 million per chunk of an importance-sampled evaluation,
where the draw is a visible share of the time. NumPy fills an array through a
function pointer per element; Numba compiles the same ziggurat (it accepts a
``numpy.random.Generator`` and calls its bit generator) into one loop.

Both paths give the same numbers from the same generator state, and leave the
generator in the same state, so a seed means one stream whichever path runs
and a checkpointed state resumes it exactly. That holds for the float64
ziggurat only: Numba's float32 ziggurat drifts from NumPy's (with seed 5 the
first difference is draw 1,321,334), so both paths draw float64 and round to
the working dtype on store.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def _standard_normal_ref(rng: np.random.Generator, shape, dtype):
    """N(0, 1) draws of ``shape``: NumPy's float64 ziggurat, rounded to ``dtype``."""
    return rng.standard_normal(shape).astype(dtype, copy=False)


@njit(cache=True)
def standard_normal_kernel(rng, out):
    """Fills the flat ``out`` with rng.standard_normal(), one float64 draw per
    element in order: the reference's stream, rounded on store."""
    for i in range(out.size):
        out[i] = rng.standard_normal()


def standard_normal(rng: np.random.Generator, shape, dtype=np.float32, use_kernels: bool = True):
    """N(0, 1) draws of ``shape`` and ``dtype`` from ``rng``; the kernel path
    returns exactly what :func:`_standard_normal_ref` would."""
    if not use_kernels:
        return _standard_normal_ref(rng, shape, dtype)
    out = np.empty(shape, dtype)
    standard_normal_kernel(rng, out.reshape(-1))
    return out
