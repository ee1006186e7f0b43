"""The floating-point freedoms the Numba kernels may take.

LLVM only vectorizes a loop that sums floats if it may reassociate the sum;
``reassoc`` (with ``contract``, ``arcp`` and ``nsz``) allows that and buys a
factor of about 4 on the row reductions here. We deliberately leave out
``nnan`` and ``ninf``: the training loop must see a NaN or an infinity when
one happens, not have it optimized away.

``error_model="numpy"``: a float division by zero gives inf or NaN, as it does
in NumPy, instead of raising ZeroDivisionError. Python's model puts a test and
a branch around every division, and that branch alone stops LLVM from
vectorizing the loop: measured on the CI machine, the Bernoulli likelihood
kernel over 66 x 5 x 784 logits took 0.25 ms with it and 0.056 ms without, and
a fused Adam loop over 385,084 parameters 0.89 ms against 0.13 ms. Every
kernel uses it, so that all of them treat a zero divisor the same way; a NaN
or an infinity that results is caught where the bound is checked.

Why the kernels never call math.exp, math.log1p or math.tanh per element:
Numba compiles those to scalar libm calls, which stop a loop from
vectorizing, while NumPy's ufuncs use SIMD. Measured on the CI machine for
392,000 float32 values: np.tanh 0.07 ms vs a Numba loop 5.7 ms; np.exp
0.13 ms vs 0.7 ms; np.log1p 0.10 ms vs about 4 ms. So a kernel either takes
its transcendental from NumPy, computed beforehand, or uses the arithmetic
exp and log1p of :mod:`npdvae.nn.vecmath`, which vectorize inside the loop.
"""

FASTMATH = {"reassoc", "contract", "arcp", "nsz"}
ERROR_MODEL = "numpy"
