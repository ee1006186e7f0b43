import os
from pathlib import Path

import pytest

from npdvae.data.files import ENV_VAR, default_data_dir, get_spec

REPO = Path(__file__).resolve().parents[2]


def dataset_root(name: str) -> Path | None:
    """A folder to pass as ``--data-dir`` for data set ``name``: where npdvae itself finds it
    ($NPDVAE_DATA_DIR, then its default data directory), else CI's exact copies in
    ../shared/datasets; None when it is in none of them."""
    spec = get_spec(name)
    for root in (os.environ.get(ENV_VAR), default_data_dir(), REPO.parent / "shared" / "datasets"):
        if not root:
            continue
        root = Path(root)
        for folder in (root / spec.subdir, root):
            if all((folder / file.filename).is_file() for file in spec.files):
                return root
    return None


def missing_reason(name: str) -> str:
    places = list(dict.fromkeys(  # each folder once: the default data directory may be the environment's
        str(Path(p).resolve()) for p in (os.environ.get(ENV_VAR), default_data_dir(), REPO.parent / "shared" / "datasets")
        if p))
    return (f"{name} not found where npdvae looks ({', '.join(places)}): set {ENV_VAR} to a folder holding it, "
            f"or run `npdvae datasets fetch {name}`")


def shared_datasets_dir() -> Path | None:
    """The folder holding MNIST, found as npdvae finds it (see dataset_root)."""
    return dataset_root("mnist")


def require_dataset(name: str) -> Path:
    root = dataset_root(name)
    if root is None:
        pytest.skip(missing_reason(name))
    return root


@pytest.fixture
def shared_datasets():
    return require_dataset("mnist")


@pytest.fixture
def isolated_data_dirs(tmp_path, monkeypatch):
    """No environment variable, and a default data directory of the test's own."""
    monkeypatch.delenv("NPDVAE_DATA_DIR", raising=False)
    default = tmp_path / "default"
    monkeypatch.setattr("npdvae.data.files.default_data_dir", lambda: default)
    return default
