"""Keep the tap's memory flat over long syncs."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from functools import cache

#: glibc's mallopt() parameter for the size above which malloc uses mmap.
M_MMAP_THRESHOLD = -3
#: glibc's own starting value, here made fixed.
THRESHOLD = 128 * 1024
#: Container allocations between two runs of the youngest generation's collector.
GC_YOUNG_THRESHOLD = 100_000


@cache
def fix_mmap_threshold() -> bool:
    """Give every response body (~1 MB) its own mapping, returned when freed.

    glibc raises its mmap threshold each time a mapped block is freed, so after
    the first page, response bodies come from the heaps of the worker threads
    that read them, which fragment: the resident size then grew with the
    records read (+117% for ten times the records). A fixed threshold keeps it
    flat. Elsewhere than glibc this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD))
    except (OSError, AttributeError):
        return False


def collect_cycles_rarely() -> None:
    """Run the cycle collector every 100,000 allocations instead of every 700.

    Records are trees, freed by reference counting alone, yet each page parsed
    allocates thousands of containers and so triggered collections that scanned
    the whole heap: 40% of the time spent parsing a page. Freezing what start-up
    built also keeps the SDK's long-lived objects out of every later scan.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 100)
