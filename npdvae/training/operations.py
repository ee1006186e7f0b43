"""The one place that chooses between the math and its Numba twins.

The model, the training step and Adam call every element-wise operation through a table:
``operations(kernels=False)`` holds the plain NumPy definitions that a student reads
(:mod:`npdvae.nn.activations`, :mod:`npdvae.nn.layers`, :mod:`npdvae.vae.sampling`,
:mod:`npdvae.vae.distributions`, :mod:`npdvae.vae.corruption`, :mod:`npdvae.vae.bounds`,
:mod:`npdvae.training.optim`); ``operations(kernels=True)`` holds their twins of the same
names and signatures from :mod:`npdvae.kernels`, compiled by Numba, which give the same
numbers to float32 rounding (the sampler and the corruption give the same bits). No other
module asks which table it has. Numba is imported only for the kernels' table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable


@dataclass(frozen=True)
class Operations:
    kernels: bool
    # activations (nn/activations.py)
    softplus: Callable
    softplus_backward: Callable
    sigmoid: Callable
    sigmoid_backward: Callable
    tanh: Callable
    tanh_backward: Callable
    # the bias of a dense layer (nn/layers.py)
    add_bias: Callable
    column_sums: Callable
    # eps ~ N(0, I) (vae/sampling.py) and the salt-and-pepper fill (vae/corruption.py)
    standard_normal: Callable
    salt_and_pepper_from_uniforms: Callable
    # the sampler, log q and log p(x | z) (vae/distributions.py)
    reparameterize: Callable
    reparameterize_backward: Callable
    gaussian_log_prob: Callable
    gaussian_log_prob_backward: Callable
    bernoulli_log_likelihood: Callable
    bernoulli_log_likelihood_backward: Callable
    gaussian_log_likelihood: Callable
    gaussian_log_likelihood_backward: Callable
    # the log-mean-exp of eq. 12 (vae/bounds.py) and Adam's update (training/optim.py)
    log_mean_exp: Callable
    adam_update: Callable


def _table(kernels: bool, activations, layers, sampling, corruption, distributions, bounds, optim) -> Operations:
    return Operations(kernels=kernels, **{name: getattr(module, name) for module, names in (
        (activations, ("softplus", "softplus_backward", "sigmoid", "sigmoid_backward", "tanh", "tanh_backward")),
        (layers, ("add_bias", "column_sums")),
        (sampling, ("standard_normal",)),
        (corruption, ("salt_and_pepper_from_uniforms",)),
        (distributions, ("reparameterize", "reparameterize_backward", "gaussian_log_prob",
                         "gaussian_log_prob_backward", "bernoulli_log_likelihood",
                         "bernoulli_log_likelihood_backward", "gaussian_log_likelihood",
                         "gaussian_log_likelihood_backward")),
        (bounds, ("log_mean_exp",)),
        (optim, ("adam_update",))) for name in names})


@lru_cache(maxsize=None)
def operations(kernels: bool = True) -> Operations:
    """The table of the Numba kernels (``kernels=True``) or of the NumPy definitions."""
    if kernels:
        from npdvae.kernels import activations, bounds, corruption, distributions, layers, optim, sampling
    else:
        from npdvae.nn import activations, layers
        from npdvae.training import optim
        from npdvae.vae import bounds, corruption, distributions, sampling
    return _table(kernels, activations, layers, sampling, corruption, distributions, bounds, optim)
