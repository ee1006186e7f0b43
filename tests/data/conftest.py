import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_datasets_dir() -> Path | None:
    """The exact copies of the data sets: $NPDVAE_DATA_DIR, else ../shared/datasets."""
    for candidate in (os.environ.get("NPDVAE_DATA_DIR"), REPO.parent / "shared" / "datasets"):
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    return None


@pytest.fixture
def shared_datasets():
    path = shared_datasets_dir()
    if path is None:
        pytest.skip("real data absent: set NPDVAE_DATA_DIR to a folder with mnist/ and frey_face/ "
                    "(CI uses ../shared/datasets)")
    return path


@pytest.fixture
def isolated_data_dirs(tmp_path, monkeypatch):
    """No environment variable, and a default data directory of the test's own."""
    monkeypatch.delenv("NPDVAE_DATA_DIR", raising=False)
    default = tmp_path / "default"
    monkeypatch.setattr("npdvae.data.files.default_data_dir", lambda: default)
    return default
