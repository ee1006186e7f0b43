"""Data: where the files come from (files, download), their format (idx) and
how the model sees them (datasets)."""

from npdvae.data.datasets import Dataset, load_dataset
from npdvae.data.download import DataUnavailableError
from npdvae.data.files import DATASETS, ChecksumError, DataError

__all__ = ["Dataset", "load_dataset", "DATASETS", "DataError", "ChecksumError", "DataUnavailableError"]
