"""The IDX format of MNIST and Fashion-MNIST: parse and encode, with checks.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian uint32 per dimension, then the values in C
order. 0x08 is unsigned byte, the only type these data sets use.
"""

from __future__ import annotations

import struct

import numpy as np

UNSIGNED_BYTE = 0x08


class IdxFormatError(ValueError):
    """A file that is not the IDX array it claims to be."""


def parse_idx(raw: bytes, name: str, expected_shape: tuple | None = None) -> np.ndarray:
    """Decode IDX bytes to a uint8 array, checking magic, dimensions and length.

    ``expected_shape`` (None for "any") is compared with the header; ``name``
    only serves the error messages.
    """
    if len(raw) < 4:
        raise IdxFormatError(f"{name}: {len(raw)} bytes is too short for an IDX header")
    zero1, zero2, type_code, ndim = raw[:4]
    if zero1 != 0 or zero2 != 0 or type_code != UNSIGNED_BYTE or ndim == 0:
        raise IdxFormatError(
            f"{name}: wrong magic number 0x{raw[:4].hex()} (expected 0x0000080N, unsigned bytes)"
        )
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise IdxFormatError(f"{name}: header promises {ndim} dimensions but the file ends first")
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    if expected_shape is not None and tuple(shape) != tuple(expected_shape):
        raise IdxFormatError(f"{name}: wrong dimensions {shape}, expected {tuple(expected_shape)}")
    expected_len = header_len + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected_len:
        raise IdxFormatError(
            f"{name}: {len(raw)} bytes, but dimensions {shape} need exactly {expected_len}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array (inverse of :func:`parse_idx`)."""
    if array.dtype != np.uint8:
        raise ValueError(f"encode_idx takes uint8 arrays, got {array.dtype}")
    header = bytes([0, 0, UNSIGNED_BYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()
