import os

from hypothesis import HealthCheck, settings

# Gradient checks and Numba's first compilation are slow per example, so no
# per-example deadline; the example counts are set per test.
settings.register_profile(
    "npdvae", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "npdvae"))
