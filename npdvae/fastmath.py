"""The floating-point freedoms the Numba kernels may take.

LLVM only vectorizes a loop that sums floats if it may reassociate the sum;
``reassoc`` (with ``contract``, ``arcp`` and ``nsz``) allows that and buys a
factor of about 4 on the row reductions here. We deliberately leave out
``nnan`` and ``ninf``: the training loop must see a NaN or an infinity when
one happens, not have it optimized away.

Why the kernels never call exp, log or tanh per element: Numba compiles
those to scalar libm calls, while NumPy's ufuncs use SIMD. Measured on the
CI machine for 392,000 float32 values: np.tanh 0.07 ms vs a Numba loop
5.7 ms; np.exp 0.13 ms vs 0.7 ms; np.log1p 0.10 ms vs about 4 ms. So the
transcendental part of an operation is computed by NumPy and passed in, and
the kernel fuses the arithmetic and the reductions around it.
"""

FASTMATH = {"reassoc", "contract", "arcp", "nsz"}
