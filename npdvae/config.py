"""A run's configuration: every hyperparameter, validated, recorded in config.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from npdvae.bounds import BOUNDS
from npdvae.checkpoint import CheckpointError
from npdvae.corruption import NOISE_TYPES, Corruption
from npdvae.data.files import DATASETS
from npdvae.model import ModelConfig, default_activation

SCHEDULES = ("constant", "staged")


@dataclass
class TrainConfig:
    """Everything a run depends on. Defaults follow the paper (section 4)."""

    dataset: str = "mnist"
    bound: str = "elbo"               # "elbo": VAE / DVAE (eq. 11); "iwae": IWAE / DIWAE (eq. 12)
    noise: float = 0.0                # corruption level; 0 is the plain VAE / IWAE
    noise_type: str | None = None     # default: salt-pepper-released for binary data, gaussian for Frey Face
    k: int = 1                        # samples of z per corrupted copy
    m: int = 1                        # corrupted copies per example
    encoder: str = "mlp"              # "mlp" or "gru" (Table 3)
    encoder_layers: int = 1
    latent: int = 50
    hidden: int = 200
    activation: str | None = None     # default by bound: softplus (elbo), tanh (iwae)
    epochs: int = 10
    batch_size: int = 100
    lr: float = 1e-3
    schedule: str = "constant"        # or "staged": Burda et al.'s 3^i epochs at lr 10^(-i/7) (see staged_lr)
    clip_grad_norm: float | None = None
    binarize: str = "dynamic"
    seed: int = 0
    patience: int | None = None       # stop after this many epochs without a better validation bound
    train_examples: int | None = None  # use only the first N training examples (quick runs)
    eval_examples: int | None = None   # likewise for validation and test
    kernels: bool = True              # False: the plain NumPy references throughout (slow; to read and check)

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {self.dataset!r}")
        if self.bound not in BOUNDS:
            raise ValueError(f"bound must be one of {BOUNDS}, got {self.bound!r}")
        if self.noise_type is None:
            # binary data: the corruption of the authors' released code, which produced the paper's
            # numbers (see npdvae/corruption.py); "salt-pepper" selects the textbook one
            self.noise_type = "gaussian" if self.dataset == "frey-face" else "salt-pepper-released"
        if self.activation is None:
            self.activation = default_activation(self.bound)
        if self.noise_type not in NOISE_TYPES:
            raise ValueError(f"noise_type must be one of {NOISE_TYPES}, got {self.noise_type!r}")
        Corruption(self.noise_type, self.noise, mean_image=np.zeros(1))  # validates the level
        for name in ("k", "m", "encoder_layers", "latent", "hidden", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be > 0, got {self.clip_grad_norm}")

    @property
    def model_name(self) -> str:
        """As in the paper's tables, e.g. "DIWAE (K=5), 1 hidden layer, noise 5%"."""
        family = "IWAE" if self.bound == "iwae" else "VAE"
        name = ("D" if self.noise > 0 else "") + family + (" (GRU)" if self.encoder == "gru" else "")
        layers = f"{self.encoder_layers} hidden layer" + ("s" if self.encoder_layers > 1 else "")
        text = f"{name} (K={self.k})" + (f", {layers}" if self.encoder == "mlp" else "")
        if self.noise > 0:
            level = f"{100 * self.noise:g}%" if self.noise_type != "gaussian" else f"sigma {self.noise:g}"
            text += f", noise {level}" + (" (mean image)" if self.noise_type == "mean-image" else "")
        if self.m > 1:
            text += f", M={self.m}"
        return text

    def model_config(self, input_dim: int, likelihood: str) -> ModelConfig:
        return ModelConfig(input_dim=input_dim, latent_dim=self.latent, hidden_units=self.hidden,
                           encoder=self.encoder, encoder_layers=self.encoder_layers,
                           activation=self.activation, likelihood=likelihood)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# Settings that may change when a run is resumed; everything else must match.
RESUMABLE_CHANGES = ("epochs", "lr", "patience", "kernels")


def check_resume_compatible(stored: TrainConfig, requested: TrainConfig):
    """Raise CheckpointError naming every setting that differs."""
    old, new = stored.to_dict(), requested.to_dict()
    diffs = [f"{k}: checkpoint has {old[k]!r}, requested {new[k]!r}"
             for k in old if k not in RESUMABLE_CHANGES and old[k] != new[k]]
    if diffs:
        raise CheckpointError("the checkpoint does not match the requested configuration: " + "; ".join(diffs))
