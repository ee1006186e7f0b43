"""Corruption distributions p(x~ | x) of the denoising criterion (section 3, 4).

Each sampler maps clean data x: (B, D) to M corrupted copies x~: (B, M, D)
and takes its randomness from the caller's ``numpy.random.Generator``. A
noise level of 0 returns M exact copies of x, so DVAE with noise 0 *is* the
VAE and DIWAE with noise 0 *is* the IWAE.

* salt-and-pepper (binary data): each pixel, with probability p, is replaced
  by 0 or 1 with equal chance; otherwise it is kept. The textbook form.
* salt-and-pepper as the authors' released code draws it (``salt-pepper-
  released``, the default for binary data): each pixel, with probability p,
  is replaced by a Bernoulli(p) draw, so it turns on with probability p^2 and
  off with probability p(1 - p).
* per-pixel rates from the mean image (section 4, last question): the same
  salt-and-pepper process, but pixel d is hit with its own rate p_d.
* additive Gaussian (real-valued data, Frey Face): x~ = x + sigma * n.
"""

from __future__ import annotations

import numpy as np

from npdvae.vae.sampling import standard_normal

# --------------------------------------------------------------------------
# Salt-and-pepper with a rate per pixel, in both forms. One uniform u per
# pixel decides everything: u < p_d hits pixel d (so P(hit) = p_d), and a hit
# pixel becomes 1 (salt) when u falls in [salt_lo_d, salt_hi_d), else 0
# (pepper); u >= p_d keeps it. The two forms differ only in that interval:
#
# * textbook: [p/2, p), so P(1 | hit) = P(0 | hit) = 1/2.
# * the authors' released code (repository Timsud/DVAE, utils.py,
#   get_corrupted_input(..., ntype='salt_pepper')): a keep mask
#   a ~ Bernoulli(1 - p) and a value b ~ Bernoulli(p) per pixel, and
#       x~ = a * x + (1 - a) * b,
#   so a hit pixel becomes 1 only with probability p:
#       P(x~ = 1 by a hit) = p^2,  P(x~ = 0 by a hit) = p (1 - p),  P(kept) = 1 - p.
#   The same law from one uniform is the interval [0, p^2): given u < p, u is
#   uniform on [0, p), so P(u < p^2 | hit) = p. At p = 5% on MNIST's mostly
#   black images that switches 0.25% of the pixels on, against 2.5% for the
#   textbook form.
# --------------------------------------------------------------------------


def salt_interval(rates, released: bool):
    """[salt_lo, salt_hi) per pixel: where u makes a hit pixel 1 (see above)."""
    if released:
        return np.zeros_like(rates), rates * rates
    return 0.5 * rates, rates


def salt_and_pepper_from_uniforms(x, uniforms, rates, salt_lo, salt_hi):
    """x: (B, D), uniforms: (B, M, D) in [0, 1), rates, salt_lo, salt_hi: (D,) -> x~: (B, M, D):
    pixel d of copy m is 1 where u falls in [salt_lo_d, salt_hi_d), 0 where it falls
    elsewhere below rates_d, and kept otherwise."""
    clean = np.broadcast_to(x[:, None, :], uniforms.shape)
    salt = ((uniforms >= salt_lo) & (uniforms < salt_hi)).astype(x.dtype)
    out = np.where(uniforms < rates, salt, clean)
    return out.astype(x.dtype, copy=False)


def _check_x(x):
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise ValueError(f"x must be a 2-D array (batch, pixels), got {getattr(x, 'shape', type(x))}")
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"x must be float32 or float64, got {x.dtype}")


def _copies(x, num_corruptions_m):
    """(B, D) -> (B, M, D): M uncorrupted copies, as a new array."""
    return np.repeat(x[:, None, :], num_corruptions_m, axis=1)


def _check_num_corruptions(num_corruptions_m):
    if int(num_corruptions_m) != num_corruptions_m or num_corruptions_m < 1:
        raise ValueError(f"num_corruptions_m must be an integer >= 1, got {num_corruptions_m}")


def salt_and_pepper(x, noise: float, num_corruptions_m: int, rng: np.random.Generator, released: bool = False,
                    fill=salt_and_pepper_from_uniforms):
    """M salt-and-pepper copies of each row of x, with global rate ``noise`` in [0, 1).

    ``released=True`` draws the hit pixel's value from Bernoulli(noise), as the
    authors' released code does; otherwise 0 or 1 with equal chance. ``fill`` is
    :func:`salt_and_pepper_from_uniforms` or its twin."""
    _check_x(x)
    _check_num_corruptions(num_corruptions_m)
    if not 0.0 <= noise < 1.0:
        raise ValueError(f"noise must be in [0, 1) for salt-and-pepper, got {noise}")
    rates = np.full(x.shape[1], noise, dtype=x.dtype)
    return per_pixel_salt_and_pepper(x, rates, num_corruptions_m, rng, released, fill)


def per_pixel_salt_and_pepper(x, rates, num_corruptions_m: int, rng: np.random.Generator, released: bool = False,
                              fill=salt_and_pepper_from_uniforms):
    """M salt-and-pepper copies of x where pixel d is hit with probability rates[d]
    (and, with ``released``, turned on with probability rates[d] when hit)."""
    _check_x(x)
    _check_num_corruptions(num_corruptions_m)
    rates = np.asarray(rates, dtype=x.dtype)
    if rates.shape != (x.shape[1],):
        raise ValueError(f"rates must have shape ({x.shape[1]},), got {rates.shape}")
    if np.any(rates < 0) or np.any(rates >= 1) or not np.all(np.isfinite(rates)):
        raise ValueError(f"rates must lie in [0, 1), got min {rates.min()} max {rates.max()}")
    if not rates.any():
        # noise 0 is the plain VAE/IWAE: skip drawing B*M*D uniforms that could not hit anything
        return _copies(x, num_corruptions_m)
    uniforms = rng.random((x.shape[0], num_corruptions_m, x.shape[1]), dtype=x.dtype)
    salt_lo, salt_hi = salt_interval(rates, released)
    return fill(x, uniforms, rates, salt_lo, salt_hi)


def mean_image_rates(mean_image, noise: float):
    """Per-pixel corruption rates proportional to the mean training image.

    The paper uses "the pixel intensity of the mean image as the corruption
    rate". We scale it so the *average* rate over pixels equals ``noise``,
    which makes a mean-image run directly comparable to a global-rate run at
    the same noise level, and clip below 1 so that no pixel is always lost.
    """
    if not 0.0 <= noise < 1.0:
        raise ValueError(f"noise must be in [0, 1) for mean-image corruption, got {noise}")
    mean_image = np.asarray(mean_image, dtype=np.float64)
    if mean_image.ndim != 1 or np.any(mean_image < 0):
        raise ValueError("mean_image must be a 1-D array of non-negative intensities")
    average = mean_image.mean()
    if average == 0:
        return np.zeros_like(mean_image)
    return np.minimum(mean_image * (noise / average), 0.999)


def additive_gaussian(x, sigma: float, num_corruptions_m: int, rng: np.random.Generator, draw=standard_normal):
    """M copies x~ = x + sigma * n with n ~ N(0, I); pixels are not clipped, so
    the corruption stays exactly the Gaussian the paper describes. ``draw`` is
    :func:`npdvae.vae.sampling.standard_normal` or its twin."""
    _check_x(x)
    _check_num_corruptions(num_corruptions_m)
    if not (sigma >= 0.0 and np.isfinite(sigma)):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma}")
    if sigma == 0.0:
        return _copies(x, num_corruptions_m)
    noise = draw(rng, (x.shape[0], num_corruptions_m, x.shape[1]), x.dtype)
    return x[:, None, :] + x.dtype.type(sigma) * noise


# --------------------------------------------------------------------------
# The built-in corruptions as objects: sample(x, m, rng) with a description, the
# parameters that define them beyond the level (none) and whether they leave x as it
# is. npdvae/vae/corruption_registry.py registers them by name, as a user's are.
# --------------------------------------------------------------------------

# The largest Gaussian standard deviation a run may train with: far beyond it the corrupted image
# holds nothing of the clean one, and the encoder's float32 sums overflow (1e308 gave NaN at once)
MAX_GAUSSIAN_NOISE = 1000.0


def _check_rate(noise, kind):
    if not 0.0 <= noise < 1.0:
        raise ValueError(f"noise must be in [0, 1) for {kind} corruption, got {noise}")


class SaltAndPepper:
    """Salt-and-pepper at rate ``noise``: a hit pixel becomes Bernoulli(noise) (``released``,
    the authors' code) or 0 or 1 with equal chance (the textbook form). ``ops``, a table of
    :func:`npdvae.training.operations.operations`, gives the sampler's twin; without it the
    definitions above run (the same numbers)."""

    params: dict = {}

    def __init__(self, noise: float, released: bool, ops=None):
        _check_rate(noise, "salt-pepper-released" if released else "salt-pepper")
        self.noise, self.released = noise, released
        self.is_identity = noise == 0
        self.description = ("salt-and-pepper as the authors' released code draws it (a hit pixel becomes "
                            "Bernoulli(p))" if released else
                            "textbook salt-and-pepper (a hit pixel becomes 0 or 1 with equal chance)")
        self._fill = ops.salt_and_pepper_from_uniforms if ops else salt_and_pepper_from_uniforms

    def sample(self, x, num_corruptions_m: int, rng: np.random.Generator):
        """x: (B, D) -> x~: (B, M, D)."""
        return salt_and_pepper(x, self.noise, num_corruptions_m, rng, self.released, self._fill)


class MeanImageSaltAndPepper:
    """Textbook salt-and-pepper with pixel d hit at its own rate, proportional to the mean
    training image and averaging ``noise`` (:func:`mean_image_rates`)."""

    params: dict = {}
    description = "textbook salt-and-pepper with per-pixel rates from the mean image"

    def __init__(self, noise: float, mean_image=None, ops=None):
        _check_rate(noise, "mean-image")
        if mean_image is None:
            raise ValueError("mean-image corruption needs the mean training image")
        self.noise, self.rates = noise, mean_image_rates(mean_image, noise)
        self.is_identity = noise == 0
        self._fill = ops.salt_and_pepper_from_uniforms if ops else salt_and_pepper_from_uniforms

    def sample(self, x, num_corruptions_m: int, rng: np.random.Generator):
        """x: (B, D) -> x~: (B, M, D)."""
        return per_pixel_salt_and_pepper(x, self.rates, num_corruptions_m, rng, fill=self._fill)


class AdditiveGaussian:
    """x~ = x + noise * n, n ~ N(0, I): ``noise`` is the standard deviation on [0, 1] pixels."""

    params: dict = {}
    description = "additive Gaussian (noise = standard deviation on [0, 1] pixels)"

    def __init__(self, noise: float, ops=None):
        if not (noise >= 0 and np.isfinite(noise)):
            raise ValueError(f"noise must be a finite number >= 0 for gaussian corruption, got {noise}")
        if noise > MAX_GAUSSIAN_NOISE:
            raise ValueError(f"noise {noise:g} is no corruption to train with: a Gaussian standard deviation "
                             f"on [0, 1] pixels must be at most {MAX_GAUSSIAN_NOISE:g}")
        self.noise, self.is_identity = noise, noise == 0
        self._draw = ops.standard_normal if ops else standard_normal

    def sample(self, x, num_corruptions_m: int, rng: np.random.Generator):
        """x: (B, D) -> x~: (B, M, D)."""
        return additive_gaussian(x, self.noise, num_corruptions_m, rng, self._draw)
