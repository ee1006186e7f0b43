"""One training step: the denoising variational lower bound of a minibatch, climbed once.

For a minibatch x (B, D) of clean images, in the order the step draws from the run's
random stream:

1. corrupt:  x~ ~ p(x~ | x), M copies of each image                    (B, M, D)
2. sample:   eps ~ N(0, I), K per copy                                 (B, M, K, Z)
3. bound:    z = mu(x~) + sigma(x~) eps, log w = log p(x, z) - log q(z | x~), and the
             bound of eq. 11 (``elbo``) or eq. 12 (``iwae``) with its gradient with
             respect to every parameter (:meth:`npdvae.vae.model.DVAEModel.bound_and_gradients`)
4. clip:     the gradient rescaled to a global norm of at most ``clip_grad_norm``
5. Adam:     one ascent step on the bound

Everything that makes a run resumable (stop requests, the epoch's order and position, the
metrics file, checkpoints) is around this function, in :mod:`npdvae.training.loop`.
"""

from __future__ import annotations

import math

import numpy as np

from npdvae.training.config import TrainConfig
from npdvae.training.optim import Adam
from npdvae.training.schedule import clip_by_global_norm
from npdvae.vae.corruption import Corruption
from npdvae.vae.model import DVAEModel
from npdvae.vae.sampling import standard_normal


class NonFiniteBound(ArithmeticError):
    """The minibatch's bound was NaN or infinite; nothing was updated."""

    def __init__(self, value: float):
        super().__init__(value)
        self.value = value


def train_step(model: DVAEModel, adam: Adam, x: np.ndarray, corruption: Corruption, rng: np.random.Generator,
               config: TrainConfig, lr: float) -> float:
    """Steps 1 to 5 above on the parameters ``adam`` holds; returns the sum over the
    minibatch of the per-example bound (nats). Raises NonFiniteBound, or Adam's
    NonFiniteGradientError, before any parameter changes."""
    x_tilde = corruption.sample(x, config.m, rng)                                          # 1
    eps = standard_normal(rng, (x.shape[0], config.m, config.k, config.latent), np.float32,
                          config.kernels)                                                  # 2
    result = model.bound_and_gradients(adam.params, x, x_tilde, eps, config.bound)         # 3
    total = float(result.per_example.sum())
    if not math.isfinite(total):
        raise NonFiniteBound(total)
    if config.clip_grad_norm is not None:
        clip_by_global_norm(result.grads, config.clip_grad_norm)                           # 4
    adam.step(result.grads, lr=lr)                                                         # 5
    return total
