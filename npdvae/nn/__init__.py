"""Neural-network pieces, each forward beside its backward: activations, dense layers, the
GRU, and the vectorizable exp/log the Numba kernels use."""
