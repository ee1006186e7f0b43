"""Corruptions by name: the four built in and any a researcher registers, made the same way.

A corruption p(x~ | x) is any object with

- ``sample(x, m, rng) -> x~``: x (B, D) clean images, x~ (B, M, D) corrupted copies, every
  random draw taken from the ``numpy.random.Generator`` rng (so a run is reproducible and a
  resumed epoch draws what it would have);
- ``description``: one line, for tables, model cards and ``npdvae runs``;
- ``params``: the parameters that define it beyond its level ``noise``, a JSON object;
- ``is_identity``: True when x~ is always x (a built-in at noise 0). A run whose corruption
  is the identity is the plain VAE or IWAE: whether a corruption is "none" is its own
  business, not a test of the noise level.

A factory makes one from the level and the parameters, ``factory(noise, **params)``; it may
also take ``mean_image`` (the mean training image, D,) and ``ops`` (the table of kernels,
:func:`npdvae.training.operations.operations`) by name, and is given those it names. It
raises ValueError for a level or a parameter it cannot use.

:func:`register_corruption` adds a factory under a name; a run's configuration then records
the name, the parameters (``noise_params``) and where it came from (``noise_source``: the
module that registered it, its description), so that a run of a registered corruption is
named, listed, plotted and exported like any other, also in a process that does not know it.
Training, resuming or scoring under it needs the factory: in a process where the name is not
registered, :class:`UnknownCorruptionError` says which module to import.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import partial
from typing import Callable

from npdvae.vae.corruption import AdditiveGaussian, MeanImageSaltAndPepper, SaltAndPepper

# How a level is printed: "5%" for a rate, "sigma 0.1" for a standard deviation, "0.3" otherwise
LEVELS = ("rate", "standard deviation", "level")
_BUILT_IN_MODULE = "npdvae.vae.corruption"


class UnknownCorruptionError(ValueError):
    """A corruption name that no factory is registered under in this process."""


@dataclass(frozen=True)
class CorruptionType:
    """A registered name: its factory, its one-line description, how its level reads, and the
    module that registered it."""

    name: str
    factory: Callable
    description: str
    level: str
    module: str

    @property
    def built_in(self) -> bool:
        return self.module == _BUILT_IN_MODULE


_REGISTRY: dict[str, CorruptionType] = {}


def register_corruption(name: str, factory: Callable, *, description: str | None = None, level: str = "level",
                        replace: bool = False) -> CorruptionType:
    """Make ``factory`` the corruption called ``name`` (see the module's docstring for what a
    factory takes and returns). ``description`` defaults to the first line of the factory's
    docstring; ``level`` says how the noise level reads (one of ``LEVELS``). A name already
    registered is refused unless ``replace`` (a built-in never is replaced)."""
    if not isinstance(name, str) or not name or name != name.strip() or "/" in name:
        raise ValueError(f"a corruption's name must be non-empty text without '/' or edge spaces, got {name!r}")
    if not callable(factory):
        raise ValueError(f"the factory of corruption {name!r} must be callable, got {factory!r}")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    existing = _REGISTRY.get(name)
    if existing is not None and (existing.built_in or not replace):
        raise ValueError(f"a corruption called {name!r} is already registered (by {existing.module})"
                         + ("" if existing.built_in else "; pass replace=True to replace it"))
    if description is None:
        doc = inspect.getdoc(factory) or ""
        description = doc.strip().splitlines()[0] if doc.strip() else name
    module = getattr(factory.func if isinstance(factory, partial) else factory, "__module__", None) or "?"
    registered = CorruptionType(name, factory, description, level, module)
    _REGISTRY[name] = registered
    return registered


def registered_corruption(name: str, module: str | None = None) -> CorruptionType:
    """The registered type of ``name``; UnknownCorruptionError naming what to import when it
    is not registered in this process (``module``: where a recorded run says it came from)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        pass
    where = (f"import {module} (the module that registered it) first" if module and module != "__main__" else
             "run the code that registers it (npdvae.register_corruption) first")
    raise UnknownCorruptionError(f"no corruption called {name!r} is registered in this process: {where}; "
                                 f"registered: {', '.join(corruption_names())}")


def is_registered(name: str) -> bool:
    return name in _REGISTRY


def corruption_names(built_in_only: bool = False) -> tuple[str, ...]:
    return tuple(name for name, kind in _REGISTRY.items() if kind.built_in or not built_in_only)


def make_corruption(name: str, noise: float, params: dict | None = None, *, mean_image=None, ops=None):
    """The corruption ``name`` at level ``noise`` with ``params``: its factory called with the
    level, the parameters, and those of ``mean_image`` and ``ops`` that it names."""
    kind = registered_corruption(name)
    params = dict(params or {})
    try:
        accepted = inspect.signature(kind.factory).parameters
    except (TypeError, ValueError):
        accepted = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    for extra, value in (("mean_image", mean_image), ("ops", ops)):
        if extra in accepted or takes_any:
            params.setdefault(extra, value)
    try:
        corruption = kind.factory(noise, **params)
    except TypeError as err:   # a parameter the factory does not take
        raise ValueError(f"corruption {name!r}: {err}") from None
    if not callable(getattr(corruption, "sample", None)):
        raise ValueError(f"the factory of corruption {name!r} returned {corruption!r}, which has no sample(x, m, rng)")
    return corruption


def is_identity(corruption) -> bool:
    """Whether ``corruption`` leaves every image as it is (then the run is a plain VAE/IWAE)."""
    return bool(getattr(corruption, "is_identity", False))


def describe_level(level: str, noise: float) -> str:
    """How a noise level reads in a run's name: "5%", "sigma 0.1" or "0.3"."""
    if level == "rate":
        return f"{100 * noise:g}%"
    if level == "standard deviation":
        return f"sigma {noise:g}"
    return f"{noise:g}"


# The four built in, through the same door as a user's
register_corruption("salt-pepper-released", partial(SaltAndPepper, released=True), level="rate",
                    description="salt-and-pepper as the authors' released code draws it "
                                "(a hit pixel becomes Bernoulli(p))")
register_corruption("salt-pepper", partial(SaltAndPepper, released=False), level="rate",
                    description="textbook salt-and-pepper (a hit pixel becomes 0 or 1 with equal chance)")
register_corruption("gaussian", AdditiveGaussian, level="standard deviation",
                    description=AdditiveGaussian.description)
register_corruption("mean-image", MeanImageSaltAndPepper, level="rate",
                    description=MeanImageSaltAndPepper.description)
BUILT_IN_CORRUPTIONS = corruption_names(built_in_only=True)
