"""npdvae: denoising variational autoencoders (DVAE, DIWAE; Im, Ahn, Memisevic and Bengio)
in NumPy and Numba, every gradient written by hand.

The public API:

- :class:`TrainConfig`: every setting of a run (model, bound, K, M, noise, schedule, ...);
- :func:`train`: train a configuration into a run folder, resuming it if it is there;
- :func:`load`: a trained model from a run folder, checkpoint or model file, with
  ``encode``, ``decode``, ``sample``, ``bound(x, k)`` and ``log_likelihood(x, k)``;
- :class:`Corruption`: the corruption samplers p(x~ | x) (salt-and-pepper in the
  released code's and the textbook form, additive Gaussian, mean-image rates);
- :func:`load_dataset`: MNIST and Frey Face, found or downloaded and verified.

The packages, from the bottom up: ``nn`` (layers and their kernels), ``vae`` (sampler,
likelihoods, corruption, bounds, the model), ``data``, ``training``, ``evaluation`` and
``experiments`` (the paper's grids).
"""

from npdvae.api import TrainedModel, load, train
from npdvae.data import load_dataset
from npdvae.training.config import TrainConfig
from npdvae.training.provenance import npdvae_version
from npdvae.vae.corruption import Corruption

__version__ = npdvae_version()

__all__ = ["Corruption", "TrainConfig", "TrainedModel", "__version__", "load", "load_dataset", "train"]
