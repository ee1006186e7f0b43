from pathlib import Path

import numpy as np
import pytest

from npdvae.data import load_dataset
from npdvae.data.datasets import EVAL_BINARIZATION_SEED, FREY_SPLIT, binarize


@pytest.fixture(scope="module")
def mnist(mnist_root):
    return load_dataset("mnist", data_dir=mnist_root, mirrors=[], use_package_index=False)


def test_mnist_has_the_papers_splits_shapes_and_label_counts(mnist):
    assert {s: mnist.images[s].shape for s in mnist.images} == {
        "train": (50000, 784), "valid": (10000, 784), "test": (10000, 784)}
    assert mnist.images["train"].dtype == np.uint8 and mnist.images["train"].max() == 255
    # published label counts of the MNIST training set (60,000) and test set
    train_counts = np.bincount(np.concatenate([mnist.labels["train"], mnist.labels["valid"]]))
    assert train_counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist.labels["test"]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_evaluation_sets_are_binarized_once_with_the_fixed_seed(mnist):
    for split in ("valid", "test"):
        assert set(np.unique(mnist.images[split])) == {0, 1}
    from npdvae.data.files import find_file, get_spec, read_verified
    from tests.data.conftest import shared_datasets_dir
    spec = get_spec("mnist")
    images_file = spec.files[0]
    train = read_verified(find_file(spec, images_file, shared_datasets_dir()), images_file)
    expected_valid = binarize(train.reshape(60000, -1)[50000:], np.random.default_rng(EVAL_BINARIZATION_SEED))
    np.testing.assert_array_equal(mnist.images["valid"], expected_valid)


def test_dynamic_binarization_differs_between_draws_and_matches_intensity_on_average(mnist):
    rng = np.random.default_rng(0)
    idx = np.arange(200)
    first, second = mnist.batch("train", idx, rng), mnist.batch("train", idx, rng)
    assert first.dtype == np.float32 and set(np.unique(first)) <= {0.0, 1.0}
    assert np.mean(first != second) > 0.02
    draws = np.mean([mnist.batch("train", idx, rng) for _ in range(200)], axis=0)
    target = mnist.images["train"][idx] / 255.0
    # per-pixel standard error is at most sqrt(0.25 / 200) ~ 0.035
    assert np.abs(draws - target).max() < 0.2 and np.abs(draws - target).mean() < 0.01


def test_static_binarization_is_reproducible_from_its_seed(shared_datasets):
    a = load_dataset("mnist", data_dir=shared_datasets, binarization="static", binarization_seed=7, mirrors=[])
    b = load_dataset("mnist", data_dir=shared_datasets, binarization="static", binarization_seed=7, mirrors=[])
    c = load_dataset("mnist", data_dir=shared_datasets, binarization="static", binarization_seed=8, mirrors=[])
    np.testing.assert_array_equal(a.images["train"], b.images["train"])
    assert not np.array_equal(a.images["train"], c.images["train"])
    idx = np.arange(10)
    np.testing.assert_array_equal(a.batch("train", idx), a.batch("train", idx))
    assert a.binarization_seed == 7


def test_frey_face_splits_are_disjoint_seeded_and_scaled(frey_datasets):
    frey = load_dataset("frey-face", data_dir=frey_datasets, mirrors=[])
    assert tuple(frey.num_examples(s) for s in ("train", "valid", "test")) == FREY_SPLIT == (1572, 295, 98)
    assert frey.images["train"].shape[1] == 560 and frey.likelihood == "gaussian"
    allimg = np.concatenate([frey.images[s] for s in ("train", "valid", "test")])
    assert 0.0 <= allimg.min() and allimg.max() <= 1.0
    assert np.unique(allimg, axis=0).shape[0] >= 1900  # disjoint: no face counted twice
    again = load_dataset("frey-face", data_dir=frey_datasets, mirrors=[])
    np.testing.assert_array_equal(frey.images["test"], again.images["test"])


def test_fashion_mnist_loads_from_the_debian_package_when_installed():
    folder = Path("/usr/share/datasets/fashion-mnist")
    if not folder.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    fashion = load_dataset("fashion-mnist", mirrors=[])
    assert fashion.images["train"].shape == (50000, 784)
    assert np.bincount(fashion.labels["test"]).tolist() == [1000] * 10


def test_unknown_dataset_and_binarization_are_named():
    from npdvae.data import DataError
    with pytest.raises(DataError, match="unknown data set 'cifar'"):
        load_dataset("cifar")
