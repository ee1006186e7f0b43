import os
import signal

import pytest
from hypothesis import HealthCheck, settings

from tests.data.conftest import missing_reason, require_dataset, shared_datasets_dir

# Gradient checks and Numba's first compilation are slow per example, so no
# per-example deadline; the example counts are set per test.
settings.register_profile(
    "npdvae", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "npdvae"))

# A shell starts a background job (``pytest &`` in a script) with SIGINT ignored, and a
# program started with SIGINT ignored keeps ignoring it: Python installs its KeyboardInterrupt
# handler only over the default. The tests press Ctrl-C on the programs they start, so those
# must start with the default, as from a terminal, however the suite itself was started.
# (A handler set here is reset to the default in every program this process starts.)
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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
