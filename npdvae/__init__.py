"""npdvae: denoising variational autoencoders (DVAE, DIWAE; Im, Ahn, Memisevic and Bengio)
in NumPy and Numba, every gradient written by hand.

The public API:

- :class:`TrainConfig`: every setting of a run (model, bound, K, M, noise, schedule, ...);
- :func:`train`: train a configuration into a run folder, resuming it if it is there;
- :func:`load`: a trained model from a run folder, checkpoint or model file, with
  ``encode``, ``decode``, ``sample``, ``bound(x, k)``, ``log_likelihood(x, k)`` and
  ``denoising_bound(x)`` (eq. 11 or 12 under its training corruption, or another);
- :func:`make_corruption` and :func:`register_corruption`: the corruptions p(x~ | x) by name,
  the four built in (salt-and-pepper in the released code's and the textbook form, additive
  Gaussian, mean-image rates) and any of one's own, trained and recorded under its name;
- :func:`load_dataset`: MNIST and Frey Face, found or downloaded and verified;
- :func:`runs`: the run folders one has, each with its model, progress, scores and state;
- :func:`inference_gaps` with :class:`GapSettings` (and its :class:`AISSettings` and
  :class:`LocalOptimumSettings`): log p(x) by AIS and IS, the bound of each image's best
  Gaussian and the encoder's, and the approximation and amortization gaps they make.

The packages, from the bottom up: ``nn`` (layers and their kernels), ``vae`` (sampler,
likelihoods, corruption, bounds, the model), ``data``, ``training``, ``evaluation`` and
``experiments`` (the paper's grids).
"""

import logging

# a library does not print: what it says goes to the "npdvae" logger, heard only where the caller
# configures logging (logging.basicConfig(level=logging.INFO), say)
logging.getLogger("npdvae").addHandler(logging.NullHandler())

__all__ = ["AISSettings", "GapSettings", "LocalOptimumSettings", "TrainConfig", "TrainedModel",
           "__version__", "inference_gaps", "load", "load_dataset", "make_corruption", "register_corruption",
           "runs", "train"]

# Imported on first use: ``import npdvae`` (and so every ``python -m npdvae.cli``) stays light
# until a name is asked for, which keeps an interrupt during start-up a one-line affair.
_LAZY = {"TrainedModel": "npdvae.api", "load": "npdvae.api", "train": "npdvae.api", "runs": "npdvae.api",
         "load_dataset": "npdvae.data", "TrainConfig": "npdvae.training.config",
         "make_corruption": "npdvae.vae.corruption_registry", "register_corruption": "npdvae.vae.corruption_registry",
         "inference_gaps": "npdvae.evaluation.gaps",
         "GapSettings": "npdvae.evaluation.gaps", "AISSettings": "npdvae.evaluation.ais",
         "LocalOptimumSettings": "npdvae.evaluation.local_optimum"}


def __getattr__(name):
    if name == "__version__":
        from npdvae.run_folder.provenance import npdvae_version
        globals()["__version__"] = npdvae_version()
        return globals()["__version__"]
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'npdvae' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | {"__version__"})
