"""Data files are verified before any parser inflates them."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from npdvae.data.files import ChecksumError, DataError, get_spec, read_verified
from tests.data.conftest import REPO

FREY = get_spec("frey-face").files[0]


def test_the_canonical_frey_file_is_read_and_verified(frey_datasets):
    array = read_verified(frey_datasets / "frey_face" / FREY.filename, FREY)
    assert array.shape == (1965, 560) and array.dtype == np.uint8


def test_a_frey_file_holding_more_than_ff_is_refused_without_being_inflated(frey_datasets, tmp_path):
    """The real ``ff`` beside 1 GiB of compressed zeros: refused on its bytes, at the memory of a
    process that never inflated it (an inflating reader would need more than 1 GiB)."""
    bomb = tmp_path / FREY.filename
    # written by another process: a child inherits its parent's peak memory across exec
    make = ("import sys, numpy as np\nfrom scipy.io import loadmat, savemat\n"
            "ff = loadmat(sys.argv[1])['ff']\n"
            "savemat(sys.argv[2], {'ff': ff, 'padding': np.zeros(2 ** 27)}, do_compression=True)\n")   # 1 GiB
    subprocess.run([sys.executable, "-c", make, str(frey_datasets / "frey_face" / FREY.filename), str(bomb)],
                   check=True, timeout=300)
    assert bomb.stat().st_size < 8 * 2 ** 20
    probe = ("import pathlib, sys\n"
             "from npdvae.data.files import DataError, get_spec, read_verified\n"
             "try:\n"
             "    read_verified(pathlib.Path(sys.argv[1]), get_spec('frey-face').files[0])\n"
             "except DataError as err:\n"
             "    print(err)\n"
             # VmHWM is this program's own peak (ru_maxrss would count the parent's, from before exec)
             "print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM'))"
             " // 1024)\n")
    result = subprocess.run([sys.executable, "-c", probe, str(bomb)], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    message, peak_mib = result.stdout.strip().splitlines()
    assert str(bomb) in message and ("larger than the canonical" in message or "SHA-256 mismatch" in message)
    assert int(peak_mib) < 512, peak_mib
    assert not bomb.exists()   # moved aside, so it is never read again


def test_a_frey_file_of_the_right_size_but_other_bytes_is_a_checksum_error(frey_datasets, tmp_path):
    copy = tmp_path / FREY.filename
    shutil.copy(frey_datasets / "frey_face" / FREY.filename, copy)
    raw = bytearray(copy.read_bytes())
    raw[-1] ^= 1
    copy.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match=f"{FREY.file_sha256}"):
        read_verified(copy, FREY)


def test_a_short_frey_file_is_named(tmp_path):
    path = tmp_path / FREY.filename
    path.write_bytes(b"MATLAB 5.0 MAT-file")
    with pytest.raises(DataError, match=f"{path}: SHA-256 mismatch"):
        read_verified(path, FREY)


def test_fetch_from_a_file_one_has_copies_it_verified_and_refuses_another(frey_datasets, tmp_path):
    from click.testing import CliRunner
    from npdvae.cli.main import main
    mine = tmp_path / "from-a-colleague.mat"
    shutil.copy(frey_datasets / "frey_face" / FREY.filename, mine)
    (tmp_path / "data").mkdir()
    result = CliRunner().invoke(main, ["datasets", "fetch", "frey-face", "--from", str(mine),
                                       "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    installed = tmp_path / "data" / "frey_face" / FREY.filename
    assert installed.read_bytes() == mine.read_bytes() and f"{installed}  [verified]" in result.output
    other = tmp_path / "other.mat"
    other.write_bytes(mine.read_bytes()[:-1] + b"\0")
    (tmp_path / "data2").mkdir()
    refused = CliRunner().invoke(main, ["datasets", "fetch", "frey-face", "--from", str(other),
                                        "--data-dir", str(tmp_path / "data2")])
    assert refused.exit_code == 1 and f"{other} is not the canonical {FREY.filename}" in refused.output
    assert other.exists() and not (tmp_path / "data2" / "frey_face").exists()   # the user's file is left as it was
