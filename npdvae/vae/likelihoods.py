"""The decoder's output heads: p(x | z) as Bernoulli (binary MNIST) or Gaussian (Frey Face).

Both heads have one interface, so the model never asks which one it has:

* ``param_prefixes``: the Dense layers the head adds after the decoder MLP;
* ``init_params(rng, hidden, input_dim, dtype, data_mean)``;
* ``forward(params, h) -> outputs, cache`` and ``backward(params, d_outputs, cache, grads) -> d_h``:
  the head's layers, (R, H) -> a dict of (R, D) arrays and back;
* ``log_likelihood(x, outputs, with_grad) -> (B, S), cache`` and
  ``log_likelihood_backward(d_ll, cache) -> d_outputs``: log p(x | z) of the clean x
  (:mod:`npdvae.vae.distributions`);
* ``mean(outputs)``: E[x | z], the image a decoder shows.
"""

from __future__ import annotations

import numpy as np

from npdvae.nn.activations import get_activation
from npdvae.nn.layers import Dense, init_affine


def _pixel_logits(data_mean, input_dim, dtype):
    """The logit of each average training pixel: an untrained decoder then predicts the
    average image, and the first gradients go to structure rather than to brightness
    (as in Burda et al.'s code)."""
    data_mean = np.asarray(data_mean, dtype=np.float64)
    if data_mean.shape != (input_dim,):
        raise ValueError(f"data_mean must have shape ({input_dim},), got {data_mean.shape}")
    p = np.clip(data_mean, 1e-3, 1 - 1e-3)
    return np.log(p / (1 - p)).astype(dtype)


class BernoulliHead:
    """p(x | z) = prod_d Bernoulli(x_d; sigmoid(l_d)), l = the ``decoder.logits`` layer;
    log p = sum_d x_d l_d - softplus(l_d), from the logits (never log(sigmoid))."""

    param_prefixes = ("decoder.logits",)
    output_bias = "decoder.logits.b"

    def __init__(self, ops):
        self.ops = ops
        self.logits = Dense("decoder.logits", get_activation("identity", ops), ops)

    def init_params(self, rng, hidden: int, input_dim: int, dtype, data_mean=None) -> dict:
        W, b = init_affine(rng, hidden, input_dim, dtype)
        if data_mean is not None:
            b = _pixel_logits(data_mean, input_dim, dtype)
        return {"decoder.logits.W": W, "decoder.logits.b": b}

    def forward(self, params, h):
        """h (R, H) -> {"logits": l = h W + b} (R, D)."""
        logits, cache = self.logits.forward(params, h)
        return {"logits": logits}, cache

    def backward(self, params, d_outputs, cache, grads):
        """dL/dl (R, D) -> dL/dh (R, H); dL/dW and dL/db into ``grads``."""
        return self.logits.backward(params, d_outputs["logits"], cache, grads)

    def log_likelihood(self, x, outputs, with_grad=True):
        """x (B, D), logits (B, S, D) -> sum_d x_d l_d - softplus(l_d) (B, S)."""
        return self.ops.bernoulli_log_likelihood(x, outputs["logits"], with_grad)

    def log_likelihood_backward(self, d_ll, cache):
        """d/dl_d = x_d - sigmoid(l_d), scaled by dL/d(log p) (B, S)."""
        return {"logits": self.ops.bernoulli_log_likelihood_backward(d_ll, cache)}

    def mean(self, outputs):
        """sigmoid(logits): each pixel's probability of being on."""
        return self.ops.sigmoid(outputs["logits"])


class GaussianHead:
    """p(x | z) = prod_d N(x_d; m_d, e^{v_d}), m = sigmoid(``decoder.mean``) in [0, 1] and
    v = min_log_var + softplus(``decoder.log_var``): the floor keeps the decoder from
    shrinking the variance of a pixel it fits exactly until the bound is +inf."""

    param_prefixes = ("decoder.mean", "decoder.log_var")
    output_bias = "decoder.mean.b"

    def __init__(self, min_log_var: float, ops):
        self.min_log_var, self.ops = min_log_var, ops
        self.mean_layer = Dense("decoder.mean", get_activation("sigmoid", ops), ops)
        self.log_var_layer = Dense("decoder.log_var", get_activation("softplus", ops), ops)

    def init_params(self, rng, hidden: int, input_dim: int, dtype, data_mean=None) -> dict:
        params = {}
        for prefix in self.param_prefixes:
            params[prefix + ".W"], params[prefix + ".b"] = init_affine(rng, hidden, input_dim, dtype)
        if data_mean is not None:
            params["decoder.mean.b"] = _pixel_logits(data_mean, input_dim, dtype)
        # Start at unit variance, log_var = 0: softplus(b) = -min_log_var. A too wide variance
        # gives small, well-scaled first gradients; a too narrow one (the floor) gives
        # gradients of order 1 / e^min_log_var.
        params["decoder.log_var.b"][:] = np.log(np.expm1(-self.min_log_var))
        return params

    def forward(self, params, h):
        """h (R, H) -> {"mean": sigmoid(h W_m + b_m), "log_var": min_log_var + softplus(h W_v + b_v)} (R, D)."""
        mean, mean_cache = self.mean_layer.forward(params, h)
        softplus_a, lv_cache = self.log_var_layer.forward(params, h)
        log_var = softplus_a + softplus_a.dtype.type(self.min_log_var)
        return {"mean": mean, "log_var": log_var}, (mean_cache, lv_cache)

    def backward(self, params, d_outputs, cache, grads):
        """dL/dmean, dL/dlog_var (R, D) -> dL/dh (R, H), the sum of both layers' paths."""
        mean_cache, lv_cache = cache
        d_h = self.mean_layer.backward(params, d_outputs["mean"], mean_cache, grads)
        # the floor is a constant shift: d log_var / d softplus(a) = 1
        return d_h + self.log_var_layer.backward(params, d_outputs["log_var"], lv_cache, grads)

    def log_likelihood(self, x, outputs, with_grad=True):
        """sum_d -1/2 [log 2 pi + v_d + (x_d - m_d)^2 e^-v_d] (B, S)."""
        return self.ops.gaussian_log_likelihood(x, outputs["mean"], outputs["log_var"], with_grad)

    def log_likelihood_backward(self, d_ll, cache):
        """d/dm = (x - m) e^-v,  d/dv = -1/2 + (x - m)^2 e^-v / 2, scaled by dL/d(log p)."""
        d_mean, d_log_var = self.ops.gaussian_log_likelihood_backward(d_ll, cache)
        return {"mean": d_mean, "log_var": d_log_var}

    def mean(self, outputs):
        return outputs["mean"]


def make_head(likelihood: str, min_log_var: float, ops):
    """The head of a ``likelihood`` ("bernoulli" or "gaussian"), its math from the table ``ops``."""
    if likelihood == "bernoulli":
        return BernoulliHead(ops)
    if likelihood == "gaussian":
        return GaussianHead(min_log_var, ops)
    raise ValueError(f"likelihood must be bernoulli or gaussian, got {likelihood!r}")
