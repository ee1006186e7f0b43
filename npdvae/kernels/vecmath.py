"""exp and log1p that a Numba loop can vectorize, for the fused kernels
(and the stable sigmoid made from that exp).

Why these exist. Numba compiles ``math.exp`` and ``math.log1p`` to calls
into the C library, one element at a time, and LLVM cannot vectorize a loop
around a call (without Intel's SVML, which this Numba build does not have).
Taking them from NumPy's SIMD ufuncs instead costs one extra pass over memory
each. Written as arithmetic, the two functions below vectorize like any other
loop body, so a kernel can compute e^-|l|, log1p and a row sum in one pass.

Only the float32 versions are hand-written; float64 (the gradient checks)
uses the C library, so the checks see exact-to-rounding values and the
float32 forms are held to NumPy by their own accuracy tests over their
whole domains (tests/kernels/test_vecmath.py).

How. ``exp``: write x = n ln2 + r with n an integer and |r| <= ln2 / 2, so
e^x = 2^n e^r; e^r is a short polynomial and 2^n is built directly from
its bits (exponent field n + 127). ln2 is split into a part with few bits
(n ln2_hi is exact) and a small correction, so that r keeps its accuracy
(Cody and Waite's reduction). ``log1p``: with s = t / (2 + t),
log(1 + t) = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), and t in [0, 1]
keeps s <= 1/3, so a short polynomial in s^2 reaches float32 precision; s
is formed from t itself, never from 1 + t, so a tiny t keeps its relative
accuracy. Largest errors, found by walking every float32 of each domain:
1.04 units in the last place for exp (NumPy's float32 exp: 2.4 on a grid),
1.98 for log1p (NumPy's: 1.9).

The helpers are compiled with FMA contraction only. With ``reassoc`` LLVM
may fold (x - n ln2_hi) - n ln2_lo into x - n (ln2_hi + ln2_lo), which
undoes the split and multiplies the mean error several times over. The kernels that call them keep their own flags; LLVM
inlines the helpers with the helpers' flags.

Numba's on-disk cache keys a kernel on its own source file only: after an
edit here, delete the ``__pycache__`` directories (or the ``*.nbi`` and
``*.nbc`` files in them) so that the kernels that inline these recompile.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from npdvae.kernels.fastmath import ERROR_MODEL

_f32 = np.float32

# 1.5 * 2^23: adding it to a float32 of magnitude below 2^22 rounds that
# number to an integer and leaves the integer in the low mantissa bits.
_ROUNDING_MAGIC = _f32(12582912.0)
_ROUNDING_MAGIC_BITS = np.int32(0x4B400000)
_LOG2_E = _f32(1.4426950408889634)
_LN2_HI = _f32(0.693359375)        # 355/512: 9 significant bits, so n * _LN2_HI is exact
_LN2_LO = _f32(-2.12194440e-4)     # ln 2 - _LN2_HI
# Below this e^x is under the smallest normal float32 (about 1.18e-38); it is
# returned as 0 instead of a subnormal.
_EXP_LOWEST = _f32(-87.33654)

# The polynomials, highest power first: P(r) ~ (e^r - 1 - r) / r^2 on
# |r| <= ln2 / 2 and Q(w) ~ (atanh(s) - s) / s^3 with w = s^2 on [0, 1/9].
# Each is a weighted least-squares fit on 2,001 Chebyshev nodes (weights r^2
# and w, so that what is fitted is the error of e^r and of atanh(s)), which
# tests/kernels/test_vecmath.py repeats. Relative errors before float32 arithmetic:
# 4.2e-9 and 4.6e-9 for the fits, 5.4e-9 for both with the coefficients
# rounded to float32, under a tenth of float32's own rounding error (6e-8);
# Taylor series needed 6 and 8 coefficients for that where these have 5 and 4.
EXP_P = tuple(map(_f32, (0.0013946454273536801, 0.00836915709078312, 0.04166626185178757,
                         0.16666516661643982, 0.5)))
LOG1P_Q = tuple(map(_f32, (0.14013990759849548, 0.13999055325984955, 0.20010897517204285,
                           0.3333320617675781)))

_HELPER_OPTIONS = {"fastmath": {"contract"}, "error_model": ERROR_MODEL}


def exp_nonpositive(x):
    """e^x for x <= 0 (NaN in, NaN out; x below -87.34 gives 0).

    In Python this is NumPy's exp, the reference; in a Numba kernel a float32
    x gets the vectorizable form of the module docstring."""
    return np.exp(x)


def log1p_unit(t):
    """log(1 + t) for t in [0, 1] (NaN in, NaN out).

    In Python this is NumPy's log1p, the reference; in a Numba kernel a
    float32 t gets the vectorizable series of the module docstring."""
    return np.log1p(t)


def _exp_nonpositive_float32(x):
    # n = round(x / ln 2), read off the mantissa bits rather than converted
    # with a float-to-int instruction, which is undefined for NaN in LLVM.
    shifted = x * _LOG2_E + _ROUNDING_MAGIC
    n = np.int32(np.float32(shifted).view(np.int32) - _ROUNDING_MAGIC_BITS)
    n_float = shifted - _ROUNDING_MAGIC
    r = x - n_float * _LN2_HI
    r = r - n_float * _LN2_LO
    # e^r = 1 + r + r^2 P(r)
    p = EXP_P[0]
    p = p * r + EXP_P[1]
    p = p * r + EXP_P[2]
    p = p * r + EXP_P[3]
    p = p * r + EXP_P[4]
    e_r = p * (r * r) + r + _f32(1.0)
    # Numba widens int32 arithmetic to int64; np.int32 narrows it back for the view
    two_to_n = np.int32((n + 127) << 23).view(np.float32)
    return _f32(0.0) if x < _EXP_LOWEST else e_r * two_to_n


def _log1p_unit_float32(t):
    # 2s = t / (1 + t/2), not 2 * (t / (2 + t)): a subnormal t would lose
    # its last bit in t / 2 (and the smallest one would become 0)
    two_s = t / (_f32(1.0) + _f32(0.5) * t)
    s = _f32(0.5) * two_s
    s2 = s * s
    # log(1 + t) = 2 atanh(s) = 2 (s + s^3 Q(s^2))
    q = LOG1P_Q[0]
    q = q * s2 + LOG1P_Q[1]
    q = q * s2 + LOG1P_Q[2]
    q = q * s2 + LOG1P_Q[3]
    return two_s + two_s * (s2 * q)


def _exp_libm(x):
    return math.exp(x)


def _log1p_libm(t):
    return math.log1p(t)


@overload(exp_nonpositive, jit_options=_HELPER_OPTIONS)
def _exp_nonpositive_jit(x):
    return _exp_nonpositive_float32 if x == types.float32 else _exp_libm


@overload(log1p_unit, jit_options=_HELPER_OPTIONS)
def _log1p_unit_jit(t):
    return _log1p_unit_float32 if t == types.float32 else _log1p_libm


@njit(**_HELPER_OPTIONS)
def stable_sigmoid(v, one):
    """sigmoid(v) = (1 or e) / (1 + e) with e = exp(-|v|), inside a kernel:
    the exponential never overflows and a tiny sigmoid keeps its relative
    precision. ``one`` is 1 in the kernel's dtype (a float64 literal would
    promote float32 work)."""
    e = exp_nonpositive(-abs(v))
    return (one if v >= one - one else e) / (one + e)
