"""Give the heap's free memory back to the operating system after large, passing work.

glibc keeps freed small allocations (GEOS geometries, Python objects) in its
heaps; after a union of a million lines the process would keep gigabytes it
no longer uses. ``malloc_trim`` returns them. Elsewhere (no glibc) this does
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return fn


def release_free_memory() -> bool:
    """Return the heap's free pages to the system; True when the C library could.

    Examples
    --------
    >>> release_free_memory() in (True, False)
    True
    """
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
