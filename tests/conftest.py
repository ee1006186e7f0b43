import os

import pytest
from hypothesis import HealthCheck, settings

from tests.data.conftest import missing_reason, require_dataset, shared_datasets_dir

# Gradient checks and Numba's first compilation are slow per example, so no
# per-example deadline; the example counts are set per test.
settings.register_profile(
    "npdvae", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "npdvae"))


@pytest.fixture(scope="session")
def mnist_root():
    """The folder to pass as --data-dir for MNIST, found as npdvae finds it; skips, saying where
    it looked, when MNIST is in none of those places."""
    path = shared_datasets_dir()
    if path is None:
        pytest.skip(missing_reason("mnist"))
    return path


@pytest.fixture
def frey_datasets():
    """The folder to pass as --data-dir for Frey Face; skips, saying where it looked, without it."""
    return require_dataset("frey-face")
