"""One training step: the denoising variational lower bound of a minibatch, climbed once.

For a minibatch x (B, D) of clean images, in the order the step draws from the run's
random stream:

1. corrupt:  x~ ~ p(x~ | x), M copies of each image                    (B, M, D)
2. sample:   eps ~ N(0, I), K per copy                                 (B, M, K, Z)
3. bound:    z = mu(x~) + sigma(x~) eps, log w = log p(x, z) - log q(z | x~), and the
             bound of eq. 11 (``elbo``) or eq. 12 (``iwae``) with its gradient with
             respect to every parameter (:meth:`npdvae.vae.model.DVAEModel.bound_and_gradients`),
             the encoder's by the estimator ``encoder_gradient`` (standard, stl or dreg)
4. clip:     the gradient rescaled to a global norm of at most ``clip_grad_norm``
5. Adam:     one ascent step on the bound

Everything that makes a run resumable (stop requests, the epoch's order and position, the
metrics file, checkpoints) is around this function, in :mod:`npdvae.training.loop`.
"""

from __future__ import annotations

import math

import numpy as np

from npdvae.training.optim import Adam, clip_by_global_norm
from npdvae.vae.model import DVAEModel


class NonFiniteBoundError(ArithmeticError):
    """The bound became NaN or infinite; no parameter was updated."""


def train_step(model: DVAEModel, adam: Adam, corruption, x: np.ndarray, rng: np.random.Generator, *,
               bound: str, k: int, m: int, lr: float, clip_grad_norm: float | None = None,
               encoder_gradient: str = "standard") -> float:
    """Steps 1 to 5 above on the parameters ``adam`` holds, every draw from ``rng`` and every
    element-wise operation from ``model.ops``; returns the sum over the minibatch of the
    per-example bound (nats). Raises NonFiniteBoundError, or Adam's NonFiniteGradientError,
    before any parameter changes."""
    x_tilde = corruption.sample(x, m, rng)                                                 # 1
    eps = model.ops.standard_normal(rng, (x.shape[0], m, k, model.config.latent), x.dtype)  # 2
    result = model.bound_and_gradients(adam.params, x, x_tilde, eps, bound, encoder_gradient)  # 3
    total = float(result.per_example.sum())
    if not math.isfinite(total):
        raise NonFiniteBoundError(f"the training bound became {total}")
    if clip_grad_norm is not None:
        clip_by_global_norm(result.grads, clip_grad_norm)                                  # 4
    adam.step(result.grads, lr=lr)                                                         # 5
    return total
