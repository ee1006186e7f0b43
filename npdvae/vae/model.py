"""The (D)VAE / (D)IWAE model: encoder q(z | x~), prior p(z), decoder p(x | z).

Data flow for one minibatch (B examples, M corrupted copies, K samples of z):

    x (B, D) --corruption--> x~ (B, M, D)
    x~ --encoder (MLP or GRU)--> h --heads--> mu, log_sigma2 (B*M, Z)
    eps (B, M, K, Z) --reparameterize--> z = mu + sigma * eps
    z --decoder MLP--> logits (Bernoulli) or mean, log_var (Gaussian)
    log w = log p(x | z) + log p(z) - log q(z | x~)       (B, M, K)
    bound = eq. 11 (elbo) or eq. 12 (iwae) over (M, K)

:meth:`DVAEModel.forward` computes log w and keeps what the backward needs;
:meth:`DVAEModel.backward` takes dL/d(log w) and walks the same steps in
reverse, so each factor of the gradient appears once, in order.

Parameters are a plain dict, name -> ndarray, e.g. ``encoder.hidden0.W``,
``encoder.mu.b``, ``decoder.logits.W``. Every element-wise operation comes from one table,
``ops`` (:func:`npdvae.training.operations.operations`): the NumPy definitions of
:mod:`npdvae.vae.distributions`, :mod:`npdvae.vae.bounds` and :mod:`npdvae.nn`, or their Numba
twins, with the same signatures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from npdvae.nn.activations import HIDDEN_ACTIVATIONS, get_activation
from npdvae.nn.gru import GRU, init_gru
from npdvae.nn.layers import Dense, build_mlp, init_affine, init_mlp
from npdvae.vae import bounds
from npdvae.vae.bounds import BOUNDS
from npdvae.vae.distributions import standard_normal_log_prob, standard_normal_log_prob_backward
from npdvae.vae.likelihoods import make_head

LIKELIHOODS = ("bernoulli", "gaussian")
ENCODERS = ("mlp", "gru")
# The estimators of the encoder's gradient (see DVAEModel.backward); the decoder's is the same
# under all three
ENCODER_GRADIENTS = ("standard", "stl", "dreg")


def default_activation(bound: str) -> str:
    """Softplus for the VAE family, tanh for the IWAE family, as in the paper
    (following Kingma & Welling 2014 and Burda et al. 2015)."""
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {BOUNDS}, got {bound!r}")
    return "softplus" if bound == "elbo" else "tanh"


@dataclass(frozen=True)
class ModelConfig:
    """Architecture. The defaults are the paper's (section 4)."""

    input_dim: int
    latent: int = 50
    hidden: int = 200
    encoder: str = "mlp"          # "mlp", or "gru": a GRU run for encoder_steps steps (Table 3)
    encoder_layers: int = 1       # hidden layers of the MLP encoder
    encoder_steps: int = 5
    decoder_layers: int = 2
    activation: str = "softplus"
    likelihood: str = "bernoulli"
    # Gaussian decoder only: log-variance = min_log_var + softplus(a). Without a
    # floor the decoder can shrink the variance of pixels it fits exactly and
    # drive the training bound to +inf; e^-10 is sigma ~ 1.7 grey levels of 255.
    min_log_var: float = -10.0

    def __post_init__(self):
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        for name in ("input_dim", "latent", "hidden", "encoder_layers", "encoder_steps",
                     "decoder_layers"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value}")
        if self.activation not in HIDDEN_ACTIVATIONS + ("identity",):
            raise ValueError(f"activation must be one of {sorted(HIDDEN_ACTIVATIONS + ('identity',))}, "
                             f"got {self.activation!r}")
        if not (np.isfinite(self.min_log_var) and self.min_log_var < 0):
            raise ValueError(f"min_log_var must be a finite number < 0, got {self.min_log_var}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")

    def to_dict(self):
        return asdict(self)


@dataclass
class BoundResult:
    """per_example: (B,) bound in nats; grads: d(mean_b bound_b)/d(param);
    log_w: (B, M, K) log-weights."""

    per_example: np.ndarray
    grads: dict
    log_w: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.per_example.mean())


class DVAEModel:
    """Stateless model code over a ``params`` dict, its operations from the table ``ops``;
    see the module docstring."""

    def __init__(self, config: ModelConfig, ops):
        self.config = config
        self.ops = ops
        act = get_activation(config.activation, ops)
        identity = get_activation("identity", ops)
        if config.encoder == "gru":
            self.encoder = GRU("encoder.gru", config.hidden, config.encoder_steps, ops)
        else:
            self.encoder = build_mlp("encoder", config.encoder_layers, act, ops)
        self.encoder_mu = Dense("encoder.mu", identity, ops)
        self.encoder_log_sigma2 = Dense("encoder.log_sigma2", identity, ops)
        self.decoder = build_mlp("decoder", config.decoder_layers, act, ops)
        # p(x | z) after the decoder MLP: Bernoulli logits, or a Gaussian's mean and log-variance
        self.head = make_head(config.likelihood, config.min_log_var, ops)

    # ------------------------------------------------------------------
    # Parameters
    # ------------------------------------------------------------------

    def init_params(self, rng: np.random.Generator, dtype=np.float32, data_mean=None):
        """Seeded Glorot initialization of every parameter array.

        ``data_mean`` (D,), the average training pixel, sets the decoder's
        output bias to its logit (see :mod:`npdvae.vae.likelihoods`).
        """
        c = self.config
        enc_sizes = [c.input_dim] + [c.hidden] * c.encoder_layers
        dec_sizes = [c.latent] + [c.hidden] * c.decoder_layers
        if c.encoder == "gru":
            params = init_gru(rng, "encoder.gru", c.input_dim, c.hidden, dtype)
        else:
            params = init_mlp(rng, "encoder", enc_sizes, dtype)
        for head in ("encoder.mu", "encoder.log_sigma2"):
            params[head + ".W"], params[head + ".b"] = init_affine(rng, c.hidden, c.latent, dtype)
        params.update(init_mlp(rng, "decoder", dec_sizes, dtype))
        params.update(self.head.init_params(rng, c.hidden, c.input_dim, dtype, data_mean))
        return params

    # ------------------------------------------------------------------
    # Forward: x, x~, eps -> log w
    # ------------------------------------------------------------------

    def encode(self, params, x_tilde_rows):
        """x~: (N, D) -> mu, log_sigma2: (N, Z), and the cache for :meth:`encode_backward`."""
        h, mlp_cache = self.encoder.forward(params, x_tilde_rows)
        mu, mu_cache = self.encoder_mu.forward(params, h)
        log_sigma2, ls_cache = self.encoder_log_sigma2.forward(params, h)
        return mu, log_sigma2, (mlp_cache, mu_cache, ls_cache)

    def encode_backward(self, params, d_mu, d_log_sigma2, cache, grads):
        mlp_cache, mu_cache, ls_cache = cache
        d_h = self.encoder_mu.backward(params, d_mu, mu_cache, grads)
        d_h = d_h + self.encoder_log_sigma2.backward(params, d_log_sigma2, ls_cache, grads)
        # The encoder's input is data (x~); nothing upstream needs its gradient.
        self.encoder.backward(params, d_h, mlp_cache, grads, need_input_grad=False)

    def decode(self, params, z_rows):
        """z: (R, Z) -> decoder outputs (R, D): ``{"logits"}`` or ``{"mean", "log_var"}``,
        and the cache for :meth:`decode_backward`."""
        h, mlp_cache = self.decoder.forward(params, z_rows)
        outputs, head_cache = self.head.forward(params, h)
        return outputs, (mlp_cache, head_cache)

    def decode_backward(self, params, d_outputs, cache, grads):
        """Returns dL/dz (R, Z); adds the decoder's parameter gradients into ``grads`` unless it is None."""
        mlp_cache, head_cache = cache
        d_h = self.head.backward(params, d_outputs, head_cache, grads)
        return self.decoder.backward(params, d_h, mlp_cache, grads)

    def log_px_given_z(self, x, outputs, with_grad=True):
        """log p(x | z) for the clean x: (B, D) and decoder outputs (B, S, D) -> (B, S),
        and the cache for :meth:`log_px_given_z_backward`."""
        return self.head.log_likelihood(x, outputs, with_grad)

    def log_px_given_z_backward(self, d_ll, cache):
        return self.head.log_likelihood_backward(d_ll, cache)

    def forward(self, params, x, x_tilde, eps, with_grad=True):
        """log w_bmk = log p(x_b | z_bmk) + log p(z_bmk) - log q(z_bmk | x~_bm).

        x: (B, D) clean data; x~: (B, M, D) its corrupted copies; eps: (B, M, K, Z).
        Returns log_w (B, M, K) and the cache for :meth:`backward`.
        """
        B, M, K = self._check_inputs(params, x, x_tilde, eps)
        D, Z = self.config.input_dim, self.config.latent
        N = B * M
        x = np.ascontiguousarray(x)
        eps_rows = np.ascontiguousarray(eps).reshape(N, K, Z)
        mu, log_sigma2, enc_cache = self.encode(params, np.ascontiguousarray(x_tilde).reshape(N, D))
        z = self.ops.reparameterize(mu, log_sigma2, eps_rows)                    # (N, K, Z)
        log_q = self.ops.gaussian_log_prob(z, mu, log_sigma2)                    # (N, K)
        log_prior = standard_normal_log_prob(z)                                  # (N, K)
        outputs, dec_cache = self.decode(params, z.reshape(N * K, Z))
        outputs = {name: out.reshape(B, M * K, D) for name, out in outputs.items()}
        log_px, ll_cache = self.log_px_given_z(x, outputs, with_grad)           # (B, M*K)
        log_w = log_px.reshape(B, M, K) + (log_prior - log_q).reshape(B, M, K)
        cache = (eps_rows, mu, log_sigma2, z, enc_cache, ll_cache, dec_cache)
        return log_w, cache

    # ------------------------------------------------------------------
    # Backward: dL/d(log w) -> dL/d(params)
    # ------------------------------------------------------------------

    def backward(self, params, d_log_w, cache, encoder_gradient="standard", path_weights=None):
        """Chain rule through :meth:`forward`, last step first.

        z feeds three terms of log w, so dL/dz collects three parts: through
        the decoder (log p(x|z)), through the prior (-z), and through log q
        with mu and sigma held fixed. The sampler then sends dL/dz on to mu
        (dz/dmu = 1) and log_sigma2 (dz/dlog_sigma2 = sigma eps / 2), where
        it joins log q's direct dependence on mu and log_sigma2 (the score term).

        ``encoder_gradient`` chooses the estimator of the encoder's gradient; the decoder's
        parameters get d_log_w's gradient under all three:

        - ``standard``: the gradient of the bound as written, path and score terms;
        - ``stl`` (sticking the landing, Roeder et al. 2017): the score term dropped. Its
          expectation is the same for the elbo (the score has mean zero), and it is zero
          draw by draw when q is the exact posterior (then log w does not depend on z);
        - ``dreg`` (doubly reparameterized, Tucker et al. 2019), for eq. 12: the score term
          dropped and the path term of sample k weighted by its normalized weight once more,
          ``path_weights`` (B, M, K): d_log_w is (dL/dM) w~_k, so the path carries w~_k^2, which
          is the unbiased estimator of the encoder's gradient of the IWAE bound.
        """
        eps_rows, mu, log_sigma2, z, enc_cache, ll_cache, dec_cache = cache
        B, M, K = d_log_w.shape
        N, Z, D = B * M, self.config.latent, self.config.input_dim
        grads = {}
        d_rows = np.ascontiguousarray(d_log_w).reshape(N, K)
        # log p(x | z) -> decoder -> z
        d_outputs = self.log_px_given_z_backward(np.ascontiguousarray(d_log_w).reshape(B, M * K), ll_cache)
        d_outputs = {name: d.reshape(N * K, D) for name, d in d_outputs.items()}
        d_z = self.decode_backward(params, d_outputs, dec_cache, grads).reshape(N, K, Z)
        # + log p(z) -> z
        d_z += standard_normal_log_prob_backward(d_rows, z)
        # - log q(z | x~) -> z, mu, log_sigma2
        d_z_q, d_mu, d_log_sigma2 = self.ops.gaussian_log_prob_backward(-d_rows, z, mu, log_sigma2)
        d_z += d_z_q
        if encoder_gradient == "dreg":   # each sample's path term, weighted once more by its weight
            d_z *= np.ascontiguousarray(path_weights).reshape(N, K, 1)
        # z = mu + sigma * eps -> mu, log_sigma2
        d_mu_path, d_log_sigma2_path = self.ops.reparameterize_backward(d_z, log_sigma2, eps_rows)
        if encoder_gradient == "standard":
            d_mu += d_mu_path
            d_log_sigma2 += d_log_sigma2_path
        else:   # stl, dreg: the path term alone, the score term of log q dropped
            d_mu, d_log_sigma2 = d_mu_path, d_log_sigma2_path
        self.encode_backward(params, d_mu, d_log_sigma2, enc_cache, grads)
        return grads

    # ------------------------------------------------------------------
    # The bound and all its gradients in one call
    # ------------------------------------------------------------------

    def bound_and_gradients(self, params, x, x_tilde, eps, kind: str,
                            encoder_gradient: str = "standard") -> BoundResult:
        """Per-example bound (eq. 11 for "elbo", eq. 12 for "iwae") and the
        gradient of its minibatch mean with respect to every parameter, the encoder's by
        the estimator ``encoder_gradient`` (see :meth:`backward`; ``dreg`` needs eq. 12)."""
        if encoder_gradient not in ENCODER_GRADIENTS:
            raise ValueError(f"encoder_gradient must be one of {ENCODER_GRADIENTS}, got {encoder_gradient!r}")
        if encoder_gradient == "dreg" and kind != "iwae":
            raise ValueError("the dreg estimator is for the importance-weighted bound (eq. 12, bound iwae)")
        log_w, cache = self.forward(params, x, x_tilde, eps)
        per_example, bound_cache = bounds.bound(kind, log_w, self.ops)
        B = x.shape[0]
        d_bound = np.full(B, 1.0 / B, dtype=log_w.dtype)
        d_log_w = bounds.bound_backward(kind, d_bound, bound_cache)
        weights = bound_cache if encoder_gradient == "dreg" else None   # eq. 12's normalized weights
        grads = self.backward(params, d_log_w, cache, encoder_gradient, weights)
        return BoundResult(per_example, grads, log_w)

    def bound(self, params, x, x_tilde, eps, kind: str):
        """Per-example bound only (no backward), for evaluation."""
        log_w, _ = self.forward(params, x, x_tilde, eps, with_grad=False)
        return bounds.bound(kind, log_w, self.ops)[0]

    # ------------------------------------------------------------------
    # Input checks: never a silent broadcast
    # ------------------------------------------------------------------

    def _check_inputs(self, params, x, x_tilde, eps):
        c = self.config
        dtype = params["encoder.mu.W"].dtype
        for name, arr, ndim in (("x", x, 2), ("x_tilde", x_tilde, 3), ("eps", eps, 4)):
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"{name} must be a numpy array, got {type(arr).__name__}")
            if arr.ndim != ndim:
                raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
            if arr.dtype != dtype:
                raise ValueError(f"{name} must have the parameters' dtype {dtype}, got {arr.dtype}")
        B, D = x.shape
        if D != c.input_dim:
            raise ValueError(f"x must have {c.input_dim} pixels per row, got shape {x.shape}")
        if B < 1:
            raise ValueError(f"x must hold at least one example, got shape {x.shape}")
        if x_tilde.shape[0] != B or x_tilde.shape[2] != D:
            raise ValueError(f"x_tilde must have shape ({B}, M, {D}), got {x_tilde.shape}")
        M = x_tilde.shape[1]
        if M < 1:
            raise ValueError(f"num_corruptions_m must be >= 1, got x_tilde shape {x_tilde.shape}")
        if eps.shape[:2] != (B, M) or eps.shape[3] != c.latent:
            raise ValueError(f"eps must have shape ({B}, {M}, K, {c.latent}), got {eps.shape}")
        K = eps.shape[2]
        if K < 1:
            raise ValueError(f"num_samples_k must be >= 1, got eps shape {eps.shape}")
        return B, M, K
