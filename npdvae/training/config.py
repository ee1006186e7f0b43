"""A run's configuration: every hyperparameter, validated, recorded in config.json."""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import asdict, dataclass, fields

import numpy as np

from npdvae.vae.bounds import BOUNDS
from npdvae.vae.corruption_registry import (LEVELS, describe_level, is_identity, is_registered, make_corruption,
                                            registered_corruption)
from npdvae.data.datasets import split_sizes
from npdvae.data.files import DATASETS
from npdvae.vae.model import ENCODER_GRADIENTS, ENCODERS, ModelConfig, default_activation
from npdvae.training.selection import is_selectable

SCHEDULES = ("constant", "staged", "released")
OPTIMIZERS = ("adam", "adam-released")
# the optimizers and the encoder's gradient estimators in words, for the pages that describe a
# training (model cards, tables)
OPTIMIZER_DESCRIPTIONS = {"adam": "Adam", "adam-released": "Adam as the authors' released code writes it (no momentum)"}
ENCODER_GRADIENT_DESCRIPTIONS = {"standard": "the standard reparameterized gradient",
                                 "stl": "STL (sticking the landing: no score term of log q)",
                                 "dreg": "DReG (doubly reparameterized)"}


class ConfigError(ValueError):
    """A setting that cannot be used: ``field`` names it (as TrainConfig spells it), the
    message says why, so that a caller can point at the option without reading the text."""

    def __init__(self, field: str, message: str):
        super().__init__(field, message)   # args rebuild it when it crosses a process boundary
        self.field, self.message = field, message

    def __str__(self):
        return self.message


class UnregisteredCorruptionError(ConfigError):
    """A run's corruption is not registered in this process: the message says what to import."""

    def __init__(self, message: str):
        super().__init__("noise_type", message)
        self.args = (message,)   # rebuilt from the message alone when it crosses a process boundary


# The type of every setting, checked before anything else: a config.json edited by hand
# (or damaged) must fail with the setting's name, not deep inside NumPy.
_INTS = ("k", "m", "encoder_layers", "latent", "hidden", "epochs", "batch_size", "seed", "select_every")
_OPTIONAL_INTS = ("patience", "train_examples", "eval_examples")
_FLOATS = ("noise", "lr", "select_after")
_OPTIONAL_FLOATS = ("clip_grad_norm",)
_STRINGS = ("dataset", "bound", "encoder", "schedule", "binarize", "optimizer", "encoder_gradient")
_OPTIONAL_STRINGS = ("noise_type", "activation")

# Sizes past which a configuration is refused before anything is allocated: the parameters
# with their gradients and Adam's two moments, and one training step's activations.
MAX_PARAMETER_BYTES = 2 * 1024 ** 3
MAX_STEP_BYTES = 8 * 1024 ** 3


def _check_type(name, value, kind, optional):
    if optional and value is None:
        return
    if kind is int:
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    elif kind is float:
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    else:
        ok = isinstance(value, kind)
    if not ok:
        what = {int: "an integer", float: "a number", bool: "true or false"}.get(kind, "text")
        raise ConfigError(name, f"{name} must be {what}{' or null' if optional else ''}, got {value!r}")


def input_dim_of(dataset: str) -> int:
    """Pixels per image of a data set (784 for the MNISTs, 560 for Frey Face)."""
    spec = DATASETS[dataset]
    shape = spec.files[0].shape
    return int(np.prod(shape[1:])) if spec.files[0].kind == "idx-gz" else int(shape[0])


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
    schedule: str = "constant"        # or "staged": Burda et al.'s 3^i epochs at lr 10^(-i/7) (see staged_lr),
    #                                   or "released": the authors' script's (see released_staged_lr)
    optimizer: str = "adam"           # or "adam-released": the released script's Adam (see AdamReleased)
    encoder_gradient: str = "standard"  # or "stl", or "dreg" (bound iwae): see DVAEModel.backward
    clip_grad_norm: float | None = None
    binarize: str = "dynamic"
    seed: int = 0
    patience: int | None = None       # stop after this many epochs without a better validation bound
    train_examples: int | None = None  # use only the first N training examples (quick runs)
    eval_examples: int | None = None   # likewise for validation and test
    kernels: bool = True              # False: the plain NumPy references throughout (slow; to read and check)
    # model selection (npdvae/training/selection.py): a best epoch only every select_every-th
    # epoch (and the last), and only after select_after x epochs; the released script's: 50, 0.4
    select_every: int = 1
    select_after: float = 0.0
    noise_params: dict | None = None  # a registered corruption's parameters beyond the level (a JSON object)
    # filled in for a corruption registered outside npdvae: the module that registered it, its
    # description, how its level reads and whether it is the identity, so that the run can be
    # named and listed where that module is not imported (npdvae/vae/corruption_registry.py)
    noise_source: dict | None = None

    def __post_init__(self):
        for names, kind, optional in ((_INTS, int, False), (_OPTIONAL_INTS, int, True), (_FLOATS, float, False),
                                      (_OPTIONAL_FLOATS, float, True), (_STRINGS, str, False),
                                      (_OPTIONAL_STRINGS, str, True), (("kernels",), bool, False)):
            for name in names:
                _check_type(name, getattr(self, name), kind, optional)
        if self.dataset not in DATASETS:
            raise ConfigError("dataset", f"dataset must be one of {sorted(DATASETS)}, got {self.dataset!r}")
        if self.bound not in BOUNDS:
            raise ConfigError("bound", f"bound must be one of {BOUNDS}, got {self.bound!r}")
        if self.noise_type is None:
            # binary data: the corruption of the authors' released code, which produced the paper's
            # numbers (see npdvae/vae/corruption.py); "salt-pepper" selects the textbook one
            self.noise_type = "gaussian" if self.dataset == "frey-face" else "salt-pepper-released"
        if self.activation is None:
            self.activation = default_activation(self.bound)
        self._check_corruption()
        for name in ("k", "m", "encoder_layers", "latent", "hidden", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in _OPTIONAL_INTS:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(name, f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.seed < 2 ** 63:
            raise ConfigError("seed", f"seed must be an integer in [0, 2^63), got {self.seed}")
        if not (self.lr > 0 and np.isfinite(self.lr)):
            raise ConfigError("lr", f"lr must be a finite number > 0, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ConfigError("schedule", f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.schedule == "released" and self.epochs < 6:
            raise ConfigError("schedule", f"the released schedule needs at least 6 epochs, got {self.epochs}")
        if self.encoder_gradient not in ENCODER_GRADIENTS:
            raise ConfigError("encoder_gradient", f"encoder_gradient must be one of {ENCODER_GRADIENTS}, "
                                                  f"got {self.encoder_gradient!r}")
        if self.encoder_gradient == "dreg" and self.bound != "iwae":
            raise ConfigError("encoder_gradient", "the dreg estimator is for the importance-weighted bound: "
                                                  "give bound iwae (eq. 12), or stl for the elbo")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError("optimizer", f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.select_every < 1:
            raise ConfigError("select_every", f"select_every must be >= 1, got {self.select_every}")
        if not 0 <= self.select_after < 1:
            raise ConfigError("select_after", f"select_after must be a fraction in [0, 1), got {self.select_after}")
        if not is_selectable(self.epochs, self.epochs, self.select_every, self.select_after):
            # the last epoch is the rule's last chance; a run that keeps none would end with no best.h5
            raise ConfigError("select_after", f"select_after {self.select_after:g} keeps no epoch of {self.epochs}: "
                                              f"not even the last (0-based {self.epochs - 1}) comes after "
                                              f"{self.select_after:g} x {self.epochs}; give a smaller fraction "
                                              "or more epochs")
        if self.clip_grad_norm is not None and not (self.clip_grad_norm > 0 and np.isfinite(self.clip_grad_norm)):
            raise ConfigError("clip_grad_norm", f"clip_grad_norm must be a finite number > 0, got {self.clip_grad_norm}")
        if self.encoder not in ENCODERS:
            raise ConfigError("encoder", f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.binarize not in ("dynamic", "static"):
            raise ConfigError("binarize", f"binarize must be one of ('dynamic', 'static'), got {self.binarize!r}")
        if self.encoder_layers > 2:
            raise ConfigError("encoder_layers", f"encoder_layers must be 1 or 2, got {self.encoder_layers}")
        try:
            self.model_config(input_dim_of(self.dataset), "bernoulli")   # validates the activation
        except ValueError as err:
            raise ConfigError("activation", str(err)) from None
        self._check_sizes()
        self._check_subsets()

    def _check_corruption(self):
        """The corruption is made once, which validates its level and parameters, and what a
        reader needs without it is recorded in ``noise_source``. A recorded configuration (read
        by :meth:`from_dict`) of a corruption this process has not registered is accepted as
        recorded: it can be named and listed, and training under it says what to import."""
        if not np.isfinite(self.noise):
            raise ConfigError("noise", f"noise must be a finite number, got {self.noise}")
        if self.noise_params is not None:
            if not isinstance(self.noise_params, dict) or not all(isinstance(k, str) for k in self.noise_params):
                raise ConfigError("noise_params", f"noise_params must be a JSON object, got {self.noise_params!r}")
            try:
                json.dumps(self.noise_params, allow_nan=False)
            except (TypeError, ValueError) as err:
                raise ConfigError("noise_params", f"noise_params must be a JSON object ({err})") from None
        source = self.noise_source
        if source is not None and not (isinstance(source, dict) and isinstance(source.get("module"), str)
                                       and isinstance(source.get("description"), str)
                                       and source.get("level") in LEVELS and isinstance(source.get("is_identity"), bool)):
            raise ConfigError("noise_source", f"noise_source must record module and description (text), level (one "
                                              f"of {LEVELS}) and is_identity (true or false), got {source!r}")
        if not is_registered(self.noise_type):
            if _READING_RECORDS.get() and self.noise_source is not None:
                return
            module = (self.noise_source or {}).get("module")
            try:
                registered_corruption(self.noise_type, module)
            except ValueError as err:
                raise UnregisteredCorruptionError(f"noise_type: {err}") from None
        kind = registered_corruption(self.noise_type)
        if kind.built_in and self.noise_params:
            raise ConfigError("noise_params", f"{self.noise_type} takes no parameters beyond noise, "
                                              f"got {self.noise_params!r}")
        try:
            corruption = make_corruption(self.noise_type, self.noise, self.noise_params,
                                         mean_image=np.zeros(input_dim_of(self.dataset)))
        except ValueError as err:
            raise ConfigError("noise", str(err)) from None
        if kind.built_in:
            self.noise_source = None
        else:
            self.noise_source = {"module": kind.module, "description": str(getattr(corruption, "description", None)
                                                                           or kind.description),
                                 "level": kind.level, "is_identity": is_identity(corruption)}

    def corruption(self, mean_image=None, ops=None):
        """The run's corruption p(x~ | x), made by its registered factory (``mean_image``: the
        mean training image, which a mean-image corruption needs; ``ops``: the kernels).
        ConfigError saying what to import when the name is not registered in this process."""
        try:
            registered_corruption(self.noise_type, (self.noise_source or {}).get("module"))
        except ValueError as err:
            raise UnregisteredCorruptionError(f"noise_type: {err}") from None
        return make_corruption(self.noise_type, self.noise, self.noise_params, mean_image=mean_image, ops=ops)

    @property
    def corrupted(self) -> bool:
        """Whether the corruption changes the images: False makes the run the plain VAE or IWAE."""
        if self.noise_source is not None:
            return not self.noise_source["is_identity"]
        return self.noise > 0   # every built-in is the identity at noise 0, and only there

    @property
    def corruption_description(self) -> str:
        """One line saying what the corruption is, from the record when its module is not here."""
        if self.noise_source is not None:
            return self.noise_source["description"]
        return registered_corruption(self.noise_type).description

    @property
    def noise_level(self) -> str:
        """The level as a run's name says it: "5%", "sigma 0.1", or the number."""
        level = self.noise_source["level"] if self.noise_source is not None else \
            registered_corruption(self.noise_type).level
        return describe_level(level, self.noise)

    def _check_subsets(self):
        """Against the data set's split sizes, known before any file is read."""
        check_data_sizes(self, split_sizes(self.dataset))

    def parameter_count(self) -> int:
        """Entries of all parameter arrays (upper bound: the Gaussian decoder's two heads)."""
        d, h, z = input_dim_of(self.dataset), self.hidden, self.latent
        encoder = 3 * (d * h + h * h + h) if self.encoder == "gru" else \
            d * h + h + (self.encoder_layers - 1) * (h * h + h)
        heads = 2 * (h * z + z)
        decoder = z * h + h + h * h + h + 2 * (h * d + d)
        return encoder + heads + decoder

    def _check_sizes(self):
        """Refuse, before any allocation, a model or a step this machine class cannot hold."""
        parameter_bytes = 4 * 4 * self.parameter_count()   # float32 parameters, gradients, Adam's m and v
        if parameter_bytes > MAX_PARAMETER_BYTES:
            raise ConfigError("hidden", f"hidden must be smaller: hidden {self.hidden} and latent {self.latent} make "
                             f"{parameter_bytes / 1024 ** 3:.1f} GiB of parameters, gradients and Adam state "
                             f"(limit {MAX_PARAMETER_BYTES / 1024 ** 3:.0f} GiB)")
        rows = self.batch_size * self.m * self.k   # decoder rows of one step
        per_row = 4 * (2 * self.hidden + 2 * input_dim_of(self.dataset) + 4 * self.latent)   # float32
        step_bytes = 4 * rows * per_row   # forward values, their gradients, and temporaries
        if step_bytes > MAX_STEP_BYTES:
            raise ConfigError("k", f"k must be smaller: batch_size {self.batch_size} x m {self.m} x k {self.k} samples "
                             f"need about {step_bytes / 1024 ** 3:.0f} GiB per step "
                             f"(limit {MAX_STEP_BYTES / 1024 ** 3:.0f} GiB)")

    @property
    def model_name(self) -> str:
        """As in the paper's tables, e.g. "DIWAE (K=5), 1 hidden layer, noise 5%"."""
        family = "IWAE" if self.bound == "iwae" else "VAE"
        name = ("D" if self.corrupted else "") + family + (" (GRU)" if self.encoder == "gru" else "")
        layers = f"{self.encoder_layers} hidden layer" + ("s" if self.encoder_layers > 1 else "")
        text = f"{name} (K={self.k})" + (f", {layers}" if self.encoder == "mlp" else "")
        if self.corrupted and self.noise_source is None:   # a built-in, named by its level
            text += f", noise {self.noise_level}" + (" (mean image)" if self.noise_type == "mean-image" else "")
        elif self.corrupted:   # a corruption of one's own, named by its name
            params = ", ".join(f"{k}={v}" for k, v in sorted((self.noise_params or {}).items()))
            text += f", {self.noise_type}" + (f" {self.noise_level}" if self.noise else "") + \
                (f" ({params})" if params else "")
        if self.m > 1:
            text += f", M={self.m}"
        if self.encoder_gradient != "standard":   # trained by another estimator of the encoder's gradient
            text += ", " + {"stl": "STL", "dreg": "DReG"}[self.encoder_gradient]
        return text

    def model_config(self, input_dim: int, likelihood: str) -> ModelConfig:
        return ModelConfig(input_dim=input_dim, latent=self.latent, hidden=self.hidden,
                           encoder=self.encoder, encoder_layers=self.encoder_layers,
                           activation=self.activation, likelihood=likelihood)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """A configuration as a run recorded it: one of a corruption not registered in this
        process is accepted as recorded (see _check_corruption)."""
        if not isinstance(values, dict):
            raise ValueError(f"a configuration must be a JSON object, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        token = _READING_RECORDS.set(True)
        try:
            return cls(**{k: v for k, v in values.items() if k in known})
        finally:
            _READING_RECORDS.reset(token)


# True while a recorded configuration is read (TrainConfig.from_dict)
_READING_RECORDS: ContextVar[bool] = ContextVar("npdvae_reading_records", default=False)


def check_data_sizes(config: TrainConfig, sizes: dict, subsets: bool = True):
    """ConfigError, naming the setting, when a minibatch does not fit in the training set or
    (with ``subsets``) when ``train_examples`` or ``eval_examples`` asks for more images than a
    split holds. ``sizes``: images per split ("train", "valid", "test"), of the whole data set
    or of the subset a run trains on (they agree wherever the request can be met)."""
    if subsets:
        for field, splits in (("train_examples", ("train",)), ("eval_examples", ("valid", "test"))):
            asked, held = getattr(config, field), min(sizes[split] for split in splits)
            if asked is not None and asked > held:
                where = f"the {splits[0]} split of {config.dataset} holds" if len(splits) == 1 else \
                    f"the {' and '.join(splits)} splits of {config.dataset} hold"
                raise ConfigError(field, f"{field} {asked} is more than {where} ({held} images)")
    train = min(config.train_examples or sizes["train"], sizes["train"])
    if config.batch_size > train:
        raise ConfigError("batch_size", f"batch_size {config.batch_size} is larger than the training set "
                                        f"({train} examples)")


# Settings that may change when a run is resumed; everything else must match. (noise_source
# records where a corruption came from, which may move; noise_params defines it.)
RESUMABLE_CHANGES = ("epochs", "lr", "patience", "kernels", "noise_source")
# Settings added after runs began to record their identities: at its default such a setting
# is left out of what identifies a run, so every earlier run keeps its identity and its name.
LATER_SETTINGS = {"noise_params": None, "optimizer": "adam", "select_every": 1, "select_after": 0.0,
                  "encoder_gradient": "standard"}
# ...except in a grid, where a run at another learning rate is another run, in a folder of its own
GRID_RESUMABLE_CHANGES = tuple(name for name in RESUMABLE_CHANGES if name != "lr")


def defining_settings(values: dict) -> dict:
    """The settings that say what a run is: a clean run (noise 0 of a built-in corruption) has
    no corruption, so its ``noise_type`` says nothing and is left out (a clean run is shared by
    grids of every corruption, and its folder name has none); a setting of LATER_SETTINGS at
    its default is left out too."""
    clean = values.get("noise") == 0 and values.get("noise_source") is None
    return {name: value for name, value in values.items()
            if not (name == "noise_type" and clean) and not (name in LATER_SETTINGS and value == LATER_SETTINGS[name])}


def settings_differences(stored: TrainConfig, requested: TrainConfig) -> list[str]:
    """Every setting a run of ``stored`` cannot be continued with under ``requested``."""
    old, new = stored.to_dict(), requested.to_dict()
    return [f"{k}: checkpoint has {old[k]!r}, requested {new[k]!r}"
            for k in old if k not in RESUMABLE_CHANGES and old[k] != new[k]]
