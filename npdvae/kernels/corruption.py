"""Twin of :func:`npdvae.vae.corruption.salt_and_pepper_from_uniforms`: one loop over the
pixels, where NumPy makes a temporary per comparison."""

from __future__ import annotations

import numpy as np
from numba import njit

from npdvae.kernels.fastmath import ERROR_MODEL


@njit(cache=True, error_model=ERROR_MODEL)
def _salt_and_pepper(x, uniforms, rates, salt_lo, salt_hi):
    B, M, D = uniforms.shape
    out = np.empty(uniforms.shape, dtype=x.dtype)
    for b in range(B):
        for m in range(M):
            for d in range(D):
                u = uniforms[b, m, d]
                if u < rates[d]:
                    out[b, m, d] = 1.0 if salt_lo[d] <= u < salt_hi[d] else 0.0
                else:
                    out[b, m, d] = x[b, d]
    return out


def salt_and_pepper_from_uniforms(x, uniforms, rates, salt_lo, salt_hi):
    return _salt_and_pepper(np.ascontiguousarray(x), uniforms, rates, salt_lo, salt_hi)
