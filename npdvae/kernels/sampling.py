"""Twin of :func:`npdvae.vae.sampling.standard_normal`: Numba compiles NumPy's float64
ziggurat (it accepts a ``numpy.random.Generator`` and calls its bit generator) into one loop,
where NumPy fills an array through a function pointer per element. The same numbers from the
same generator state, which is left in the same state."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _fill_standard_normal(rng, out):
    for i in range(out.size):
        out[i] = rng.standard_normal()


def standard_normal(rng: np.random.Generator, shape, dtype=np.float32):
    out = np.empty(shape, dtype)
    _fill_standard_normal(rng, out.reshape(-1))
    return out
