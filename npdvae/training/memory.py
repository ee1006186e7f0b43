"""Keep freed memory in the process instead of returning it to the system.

A training step allocates and frees the same few megabytes of temporaries
(decoder activations, logits and their gradients) every minibatch. glibc
serves blocks that large with mmap and hands them back on free, so every
step page-faults them in again, a cost comparable to the step's own
arithmetic for the smaller models. This is the
same effect a hand-kept pool of workspaces would have, without threading
buffers through every function.

Only glibc has ``mallopt``; elsewhere this does nothing.
"""

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_configured = False


def keep_freed_memory(mmap_threshold=256 << 20, trim_threshold=1 << 30) -> bool:
    """Serve blocks below ``mmap_threshold`` from the heap and keep up to
    ``trim_threshold`` bytes of freed heap. Returns whether it took effect."""
    global _configured
    if _configured:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    _configured = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
    return _configured
