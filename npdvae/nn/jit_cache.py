"""Whether Numba's on-disk cache of the kernels is there.

Every kernel is compiled with ``cache=True``: the first process of an
installation compiles them (a few seconds; the README gives the figure) and writes the
machine code next to the sources, in ``__pycache__/*.nbi`` and ``*.nbc``;
later processes load it in a fraction of a second. The command line uses
this to say why the first run pauses.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]   # npdvae/, all of whose kernels are cached


def numba_cache_is_warm() -> bool:
    """True when some compiled kernel of this package is cached on disk."""
    return any(PACKAGE.glob("**/__pycache__/*.nbi"))
