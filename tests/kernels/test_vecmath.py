import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from npdvae.kernels.fastmath import ERROR_MODEL, FASTMATH
from npdvae.kernels.vecmath import EXP_P, LOG1P_Q, exp_nonpositive, log1p_unit


# The helpers run only inside kernels; these loops are the smallest such
# kernels, compiled with the flags the library's kernels use.
@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def exp_loop(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = exp_nonpositive(x[i])
    return out


@njit(cache=True, fastmath=FASTMATH, error_model=ERROR_MODEL)
def log1p_loop(t):
    out = np.empty_like(t)
    for i in range(t.size):
        out[i] = log1p_unit(t[i])
    return out


def float32_range(low, high, stride):
    """Every ``stride``-th float32 from low to high (both >= 0 or both <= 0),
    walking the bit patterns, so that every binade is visited evenly."""
    a, b = sorted(np.array([low, high], np.float32).view(np.uint32))
    return np.arange(a, b + 1, stride, dtype=np.uint32).view(np.float32)


def ulp_error(got, truth):
    """|got - truth| in units of the float32 spacing at the rounded truth."""
    truth32 = truth.astype(np.float32)
    return np.abs(got.astype(np.float64) - truth) / np.spacing(np.abs(truth32)).astype(np.float64)


SMALLEST_NORMAL = float(np.finfo(np.float32).tiny)


# Bounds: the largest errors found by walking every float32 of the domain
# (exp 1.04 at x = -5.856, log1p 1.98 at t = 0.130); a subset can only do
# as well, and a wrong coefficient or a lost split of ln 2 does far worse.
@pytest.mark.parametrize("chunk", range(4))
def test_float32_exp_is_within_1_04_ulp_over_its_domain(chunk):
    x = float32_range(-87.33654, -0.0, 101)
    x = np.array_split(x, 4)[chunk]
    truth = np.exp(x.astype(np.float64))
    normal = truth >= SMALLEST_NORMAL
    assert ulp_error(exp_loop(x)[normal], truth[normal]).max() <= 1.04


@pytest.mark.parametrize("chunk", range(4))
def test_float32_log1p_is_within_1_98_ulp_over_its_domain(chunk):
    t = float32_range(SMALLEST_NORMAL, 1.0, 101)
    t = np.array_split(t, 4)[chunk]
    truth = np.log1p(t.astype(np.float64))
    assert ulp_error(log1p_loop(t), truth).max() <= 1.98


@settings(max_examples=200)
@given(x=st.floats(-87.25, 0.0, width=32))
def test_float32_exp_matches_numpy_at_any_point(x):
    got = exp_loop(np.array([x], np.float32))[0]
    assert ulp_error(np.array([got]), np.exp(np.array([x], np.float64))).max() <= 1.04


@settings(max_examples=200)
@given(t=st.floats(0.0, 1.0, width=32))
def test_float32_log1p_matches_numpy_at_any_point(t):
    got = log1p_loop(np.array([t], np.float32))[0]
    truth = np.log1p(np.float64(t))
    assert got == truth == 0.0 or abs(got - truth) <= 1.98 * np.spacing(np.float32(truth))


def test_exp_edges():
    x = np.array([0.0, -0.0, -1e-30, -87.3, -87.4, -1e4, -np.inf, np.nan], np.float32)
    got = exp_loop(x)
    assert got[0] == got[1] == got[2] == 1.0
    assert 0 < got[3] and got[4] == got[5] == got[6] == 0.0  # below the smallest normal: flushed to 0
    assert np.isnan(got[7])


def test_log1p_keeps_the_relative_accuracy_of_tiny_arguments():
    t = np.array([0.0, 1e-45, 1e-38, 1e-20, 1e-8, 1.0, np.nan], np.float32)
    got = log1p_loop(t)
    np.testing.assert_allclose(got[:6], np.log1p(t[:6].astype(np.float64)), rtol=2e-7)
    assert got[0] == 0.0 and got[1] > 0  # 1 + t would have rounded these to log(1) = 0
    assert np.isnan(got[6])


def test_float64_takes_the_c_library():
    x = np.linspace(-80, 0, 1001)
    np.testing.assert_array_equal(exp_loop(x), [math.exp(v) for v in x])
    t = np.linspace(0, 1, 1001)
    np.testing.assert_array_equal(log1p_loop(t), [math.log1p(v) for v in t])


def chebyshev_nodes(low, high, count=2001):
    return low + (high - low) * (1 - np.cos(np.linspace(0, np.pi, count))) / 2


def test_polynomials_are_the_documented_least_squares_fits():
    r = chebyshev_nodes(-math.log(2) / 2, math.log(2) / 2)
    r = r[np.abs(r) > 1e-12]
    p = np.polyfit(r, (np.expm1(r) - r) / r**2, 4, w=r * r)
    w = chebyshev_nodes(0.0, 1 / 9)[1:]
    s = np.sqrt(w)
    q = np.polyfit(w, (np.arctanh(s) - s) / s**3, 3, w=w)
    # to float32 rounding (half a unit, 6e-8), whatever LAPACK did in the last bits
    np.testing.assert_allclose(EXP_P, p, rtol=1.2e-7)
    np.testing.assert_allclose(LOG1P_Q, q, rtol=1.2e-7)
    # and what the docstring says they reach (evaluated in float64): the fits
    # themselves, then the coefficients as shipped, rounded to float32
    r = np.linspace(-math.log(2) / 2, math.log(2) / 2, 100_001)
    s = np.linspace(1e-6, 1 / 3, 100_001)

    def exp_error(p):
        return np.abs((1 + r + r * r * np.polyval(p, r)) / np.exp(r) - 1).max()

    def atanh_error(q):
        return np.abs((s + s**3 * np.polyval(q, s * s)) / np.arctanh(s) - 1).max()

    assert exp_error(p) < 4.3e-9 and atanh_error(q) < 4.7e-9
    assert exp_error(np.array(EXP_P, np.float64)) < 5.5e-9
    assert atanh_error(np.array(LOG1P_Q, np.float64)) < 5.5e-9
