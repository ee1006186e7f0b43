import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npdvae.kernels import corruption as fast
from npdvae.vae import corruption as C
from tests.strategies import DTYPES
from npdvae.vae.corruption_registry import make_corruption

FILLS = {True: fast.salt_and_pepper_from_uniforms, False: C.salt_and_pepper_from_uniforms}


@pytest.mark.parametrize("released", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30)
@given(seed=st.integers(0, 2**31), B=st.integers(1, 6), M=st.integers(1, 3), D=st.integers(1, 30),
       noise=st.floats(0, 0.99))
def test_salt_and_pepper_kernel_equals_reference(released, dtype, seed, B, M, D, noise):
    x = (np.random.default_rng(seed).random((B, D)) < 0.5).astype(dtype)
    kernel = C.salt_and_pepper(x, noise, M, np.random.default_rng(seed + 1), released, fast.salt_and_pepper_from_uniforms)
    reference = C.salt_and_pepper(x, noise, M, np.random.default_rng(seed + 1), released)
    assert kernel.shape == (B, M, D) and kernel.dtype == dtype
    np.testing.assert_array_equal(kernel, reference)


@pytest.mark.parametrize("use_kernels", [True, False])
def test_salt_and_pepper_hits_each_pixel_with_probability_p_and_half_of_hits_are_ones(use_kernels):
    # x = 0.5 everywhere, so any 0 or 1 in x~ is a hit, and its value tells salt from pepper
    x = np.full((200, 500), 0.5)
    noise = 0.15
    x_tilde = C.salt_and_pepper(x, noise, 2, np.random.default_rng(3), fill=FILLS[use_kernels])
    hits = x_tilde != 0.5
    n = hits.size
    assert abs(hits.mean() - noise) < 4 * np.sqrt(noise * (1 - noise) / n)
    ones = (x_tilde[hits] == 1).mean()
    assert abs(ones - 0.5) < 4 * np.sqrt(0.25 / hits.sum())


@pytest.mark.parametrize("use_kernels", [True, False])
@pytest.mark.parametrize("noise", [0.05, 0.3])
def test_released_salt_and_pepper_turns_on_p_squared_off_p_one_minus_p_and_keeps_one_minus_p(use_kernels, noise):
    # x = 0.5 everywhere: a 1 in x~ is a hit turned on, a 0 a hit turned off, 0.5 a kept pixel
    x = np.full((400, 500), 0.5)
    x_tilde = C.salt_and_pepper(x, noise, 2, np.random.default_rng(11), True, FILLS[use_kernels])
    n = x_tilde.size
    for value, rate in ((1.0, noise ** 2), (0.0, noise * (1 - noise)), (0.5, 1 - noise)):
        observed = (x_tilde == value).mean()
        assert abs(observed - rate) < 4 * np.sqrt(rate * (1 - rate) / n), (value, observed, rate)


def test_released_salt_and_pepper_is_the_released_codes_two_mask_form_in_law():
    # The released code: a ~ Bernoulli(1 - p), b ~ Bernoulli(p), x~ = x a + (1 - a) b. On a binary
    # image the four transition rates (0->1, 1->0 and the kept ones) must agree with ours.
    rng = np.random.default_rng(2)
    p, shape = 0.2, (300, 400)
    x = (rng.random(shape) < 0.3).astype(np.float64)
    a = (rng.random(shape) < 1 - p).astype(np.float64)
    b = (rng.random(shape) < p).astype(np.float64)
    two_masks = x * a + (1 - a) * b
    ours = C.salt_and_pepper(x, p, 1, np.random.default_rng(3), released=True)[:, 0]
    for before in (0.0, 1.0):
        pixels = x == before
        theirs_on, ours_on = two_masks[pixels].mean(), ours[pixels].mean()
        expected_on = (1 - p) * before + p * p
        for observed in (theirs_on, ours_on):
            assert abs(observed - expected_on) < 4 * np.sqrt(expected_on * (1 - expected_on) / pixels.sum())


@pytest.mark.parametrize("use_kernels", [True, False])
def test_noise_zero_is_the_identity(use_kernels):
    x = np.random.default_rng(0).random((4, 9))
    np.testing.assert_array_equal(C.salt_and_pepper(x, 0.0, 3, np.random.default_rng(1), fill=FILLS[use_kernels]),
                                  np.repeat(x[:, None], 3, axis=1))
    np.testing.assert_array_equal(C.additive_gaussian(x, 0.0, 2, np.random.default_rng(1)),
                                  np.repeat(x[:, None], 2, axis=1))


def test_noise_zero_draws_no_randomness_and_returns_its_own_array():
    x = np.random.default_rng(0).random((4, 9))
    rng = np.random.default_rng(1)
    before = rng.bit_generator.state
    for x_tilde in (C.salt_and_pepper(x, 0.0, 2, rng), C.additive_gaussian(x, 0.0, 2, rng),
                    C.per_pixel_salt_and_pepper(x, np.zeros(9), 2, rng)):
        assert not np.shares_memory(x_tilde, x)
    assert rng.bit_generator.state == before


def test_per_pixel_rates_hit_pixels_at_their_own_rate():
    rates = np.array([0.0, 0.1, 0.5, 0.9])
    x = np.full((20000, 4), 0.5)
    hit_rate = (C.per_pixel_salt_and_pepper(x, rates, 1, np.random.default_rng(5))[:, 0] != 0.5).mean(axis=0)
    np.testing.assert_allclose(hit_rate, rates, atol=0.015)
    assert hit_rate[0] == 0.0


def test_mean_image_rates_average_to_the_noise_level_and_follow_the_image():
    mean_image = np.array([0.0, 0.1, 0.2, 0.5])
    rates = C.mean_image_rates(mean_image, 0.05)
    np.testing.assert_allclose(rates.mean(), 0.05)
    np.testing.assert_allclose(rates / rates.max(), mean_image / mean_image.max())


def test_additive_gaussian_has_the_requested_standard_deviation():
    x = np.zeros((1000, 50))
    x_tilde = C.additive_gaussian(x, 0.3, 2, np.random.default_rng(7))
    assert x_tilde.shape == (1000, 2, 50)
    assert abs(x_tilde.std() - 0.3) < 0.005 and abs(x_tilde.mean()) < 0.005


def test_corruption_is_reproducible_from_the_generator():
    x = np.random.default_rng(0).random((3, 7))
    a = C.salt_and_pepper(x, 0.3, 2, np.random.default_rng(42))
    b = C.salt_and_pepper(x, 0.3, 2, np.random.default_rng(42))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("noise", [-0.1, 1.0, 1.5, float("nan")])
def test_salt_and_pepper_rejects_noise_outside_unit_interval(noise):
    with pytest.raises(ValueError, match="noise"):
        C.salt_and_pepper(np.zeros((2, 3)), noise, 1, np.random.default_rng(0))


@pytest.mark.parametrize("sigma", [-0.1, float("inf"), float("nan")])
def test_additive_gaussian_rejects_bad_sigma(sigma):
    with pytest.raises(ValueError, match="sigma"):
        C.additive_gaussian(np.zeros((2, 3)), sigma, 1, np.random.default_rng(0))


@pytest.mark.parametrize("m", [0, -1, 1.5])
def test_corruption_rejects_m_below_one(m):
    with pytest.raises(ValueError, match="num_corruptions_m"):
        C.salt_and_pepper(np.zeros((2, 3)), 0.1, m, np.random.default_rng(0))


def test_corruption_rejects_wrong_shapes_and_dtypes():
    with pytest.raises(ValueError, match="x must be a 2-D"):
        C.salt_and_pepper(np.zeros(3), 0.1, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="float32 or float64"):
        C.salt_and_pepper(np.zeros((2, 3), dtype=np.uint8), 0.1, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="rates must have shape"):
        C.per_pixel_salt_and_pepper(np.zeros((2, 3)), np.zeros(4), 1, np.random.default_rng(0))


def test_corruption_by_name_dispatches_and_validates():
    x = np.full((50, 40), 0.5)
    rng = np.random.default_rng(0)
    assert make_corruption("salt-pepper", 0.0).sample(x, 2, rng).shape == (50, 2, 40)
    assert np.all(make_corruption("salt-pepper", 0.0).sample(x, 1, rng) == 0.5)
    assert make_corruption("gaussian", 0.1).sample(x, 1, rng).std() > 0.05
    released = make_corruption("salt-pepper-released", 0.3).sample(np.full((2000, 40), 0.5), 1, rng)
    assert 0.07 < (released == 1).mean() < 0.11 and 0.19 < (released == 0).mean() < 0.23  # 0.09 and 0.21
    textbook = make_corruption("salt-pepper", 0.3).sample(np.full((2000, 40), 0.5), 1, rng)
    assert 0.13 < (textbook == 1).mean() < 0.17 and 0.13 < (textbook == 0).mean() < 0.17   # 0.15 each
    rates_image = np.linspace(0, 1, 40)
    hit = make_corruption("mean-image", 0.2, mean_image=rates_image).sample(np.full((2000, 40), 0.5), 1, rng)[:, 0] != 0.5
    assert hit[:, 0].mean() == 0.0 and hit[:, -1].mean() > 0.3
    with pytest.raises(ValueError, match="no corruption called 'dropout' is registered"):
        make_corruption("dropout", 0.1)
    with pytest.raises(ValueError, match="noise must be in"):
        make_corruption("salt-pepper", 1.2)
    with pytest.raises(ValueError, match="mean training image"):
        make_corruption("mean-image", 0.1)
