"""Whether Numba's on-disk cache of the kernels is there.

Every kernel is compiled with ``cache=True``: the first process of an
installation compiles them (a few seconds; the README gives the figure) and writes the
machine code next to the sources, in ``__pycache__/*.nbi`` and ``*.nbc``, or, when
``NUMBA_CACHE_DIR`` is set, in a folder per source folder under it; later processes load
it in a fraction of a second. The command line uses this to say why the first run pauses.
"""

from __future__ import annotations

from pathlib import Path

from numba.core import config
from numba.core.caching import UserProvidedCacheLocator

PACKAGE = Path(__file__).resolve().parents[1]   # npdvae/, all of whose kernels are cached


def _cache_folders():
    """Where Numba keeps the cache of each source folder of the package."""
    sources = {path.parent for path in PACKAGE.glob("**/*.py")}
    if config.CACHE_DIR:
        return [Path(config.CACHE_DIR) / UserProvidedCacheLocator.get_suitable_cache_subpath(str(folder / "x.py"))
                for folder in sources]
    return [folder / "__pycache__" for folder in sources]


def numba_cache_is_warm() -> bool:
    """True when some compiled kernel of this package is cached on disk."""
    return any(any(folder.glob("*.nbi")) for folder in _cache_folders())
