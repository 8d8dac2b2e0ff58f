"""Keep the process's memory flat on glibc: big buffers return to the system when freed.

glibc serves an allocation from per-thread arenas once its dynamic mmap threshold has risen
(it does after the first large free), and arenas keep freed memory. With 16+ threads passing
8 MiB buffers around, that retained memory would grow the RSS far past the budget. Pinning
the threshold keeps every buffer over 1 MiB mmapped (returned on free), and few arenas keep
the small-object heap compact. Same effect as MALLOC_MMAP_THRESHOLD_/MALLOC_ARENA_MAX.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1024 * 1024
ARENAS = 2

_tuned = False


def tune_allocator() -> bool:
    """Apply once per process; a no-op (False) where the C library is not glibc."""
    global _tuned  # noqa: PLW0603 - one process-wide setting
    if _tuned:
        return True
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    _tuned = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_ARENA_MAX, ARENAS))
    return _tuned
