"""The model's joint density log p(x, z) = log p(x | z) + log p(z) at given z, with its z-gradient.

What annealed importance sampling (:mod:`npdvae.evaluation.ais`) and the locally optimal
Gaussian (:mod:`npdvae.evaluation.local_optimum`) need from a trained model: the decoder
alone, scored at latent points they choose, and the direction in z that raises the score.
The gradient is the decoder's own backward (:meth:`npdvae.vae.model.DVAEModel.decode_backward`)
with dL/d(log p(x | z)) = 1 for every row; the prior's part is -z.

Shapes: x (B, D) clean images; z (B, C, Z), C latent points per image (chains or samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npdvae.vae import distributions as dist


@dataclass
class JointTerms:
    """log p(x | z) and log p(z), each (B, C); with the gradient, d log p(x | z) / dz (B, C, Z)."""

    log_likelihood: np.ndarray
    log_prior: np.ndarray
    d_log_likelihood: np.ndarray | None = None

    @property
    def log_joint(self) -> np.ndarray:
        return self.log_likelihood + self.log_prior


def log_joint(model, params, x, z, with_grad: bool = True) -> JointTerms:
    """log p(x | z) and log p(z) at z (B, C, Z) for x (B, D), and (``with_grad``)
    d log p(x | z) / dz; d log p(z) / dz = -z needs no call."""
    B, C, Z = z.shape
    if x.shape[0] != B:
        raise ValueError(f"x holds {x.shape[0]} images and z {B}")
    D = model.config.input_dim
    rows = np.ascontiguousarray(z, dtype=params["decoder.hidden0.W"].dtype).reshape(B * C, Z)
    outputs, dec_cache = model.decode(params, rows)
    outputs = {name: out.reshape(B, C, D) for name, out in outputs.items()}
    log_px, ll_cache = model.log_px_given_z(x, outputs, with_grad)                       # (B, C)
    log_pz = dist.standard_normal_log_prob(z)                                            # (B, C)
    if not with_grad:
        return JointTerms(log_px, log_pz)
    d_outputs = model.log_px_given_z_backward(np.ones((B, C), dtype=rows.dtype), ll_cache)
    d_outputs = {name: d.reshape(B * C, D) for name, d in d_outputs.items()}
    d_z = model.decode_backward(params, d_outputs, dec_cache, None).reshape(B, C, Z)   # z moves, not the weights
    return JointTerms(log_px, log_pz, d_z)
