"""Hypothesis strategies shared by the tests."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = (np.float32, np.float64)


def float_arrays(shape, low=-6.0, high=6.0, dtype=np.float64):
    return hnp.arrays(
        dtype, shape,
        elements=st.floats(low, high, allow_nan=False, allow_infinity=False, width=32),
    )


small_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)
