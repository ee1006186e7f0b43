import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp

from npdvae.data.idx import IdxFormatError, encode_idx, parse_idx


@settings(max_examples=50)
@given(array=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6)))
def test_encode_then_parse_is_the_identity(array):
    np.testing.assert_array_equal(parse_idx(encode_idx(array), "a", array.shape), array)


def test_wrong_magic_is_named():
    raw = bytearray(encode_idx(np.zeros((2, 3), np.uint8)))
    raw[2] = 0x0D  # float type code
    with pytest.raises(IdxFormatError, match="f.idx: wrong magic number 0x00000d02"):
        parse_idx(bytes(raw), "f.idx")


def test_wrong_dimensions_are_named():
    with pytest.raises(IdxFormatError, match=r"wrong dimensions \(2, 3\), expected \(3, 2\)"):
        parse_idx(encode_idx(np.zeros((2, 3), np.uint8)), "f.idx", (3, 2))


@pytest.mark.parametrize("cut", [1, 5])
def test_truncated_or_padded_data_is_named(cut):
    raw = encode_idx(np.zeros((4, 4), np.uint8))
    with pytest.raises(IdxFormatError, match="need exactly 28"):
        parse_idx(raw[:-cut], "f.idx")
    with pytest.raises(IdxFormatError, match="need exactly 28"):
        parse_idx(raw + b"\0" * cut, "f.idx")


def test_header_too_short():
    with pytest.raises(IdxFormatError, match="too short"):
        parse_idx(b"\0\0", "f.idx")
