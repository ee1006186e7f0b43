"""The Numba twins of the math: one module per module of definitions it speeds up, each
function with its definition's name and signature.

A student need not read this package: ``nn/``, ``vae/`` and ``training/optim.py`` hold the
math in plain NumPy, and :func:`npdvae.training.operations.operations` chooses between them and these
twins in one place. Every kernel is held by ``tests/kernels/`` to its definition, in float32
and float64. ``fastmath`` says which floating-point freedoms the kernels take, ``vecmath``
gives them an exp and a log1p that vectorize, and ``cache`` tells whether Numba's on-disk
cache of the compiled kernels is there.
"""
