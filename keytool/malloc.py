"""One tuning of the C allocator, for bulk transfers in the blocking driver.

glibc's malloc hands the free memory at the top of its heap back to the kernel once
it exceeds a threshold, which it raises on its own only as far as twice the largest
block it has given back by munmap. A transfer allocates and frees a few hundred KiB
of buffers per batch (what recv returned, the sealed packets, their join), so every
batch gave its pages back and then faulted fresh zeroed ones in: over half of the
client's CPU time went to the kernel's page faults. Keeping up to 64 MiB of freed
memory (and serving blocks under 32 MiB from the heap) ends that; it is done once,
after the first MiB moved, so short commands never load ctypes for it.
"""

from __future__ import annotations

#: bytes moved before the allocator is tuned
AFTER_BYTES = 1 << 20

# mallopt(3) parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP = 64 << 20
_MMAP_ABOVE = 32 << 20

_done = False


def keep_freed_memory() -> None:
    """Tell glibc's malloc to keep freed memory; a no-op elsewhere, and after the
    first call."""
    global _done
    if _done:
        return
    _done = True
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (ImportError, OSError, AttributeError):  # not glibc: nothing to tune
        return
    mallopt(_M_TRIM_THRESHOLD, _KEEP)
    mallopt(_M_MMAP_THRESHOLD, _MMAP_ABOVE)
