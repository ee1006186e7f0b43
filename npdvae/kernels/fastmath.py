"""The floating-point freedoms the Numba kernels may take.

LLVM only vectorizes a loop that sums floats if it may reassociate the sum;
``reassoc`` (with ``contract``, ``arcp`` and ``nsz``) allows that, which is
what lets the row reductions here use SIMD. We deliberately leave out
``nnan`` and ``ninf``: the training loop must see a NaN or an infinity when
one happens, not have it optimized away.

``error_model="numpy"``: a float division by zero gives inf or NaN, as it does
in NumPy, instead of raising ZeroDivisionError. Python's model puts a test and
a branch around every division, and that branch alone stops LLVM from
vectorizing the loop (the Bernoulli likelihood and the fused Adam step among
them). Every kernel uses it, so that all of them treat a zero divisor the same way; a NaN
or an infinity that results is caught where the bound is checked.

Why the kernels never call math.exp, math.log1p or math.tanh per element:
Numba compiles those to scalar libm calls, which stop a loop from
vectorizing, while NumPy's ufuncs use SIMD; such a loop is several times
slower than the ufunc it replaces. So a kernel either takes
its transcendental from NumPy, computed beforehand, or uses the arithmetic
exp and log1p of :mod:`npdvae.kernels.vecmath`, which vectorize inside the loop.
"""

FASTMATH = {"reassoc", "contract", "arcp", "nsz"}
ERROR_MODEL = "numpy"
