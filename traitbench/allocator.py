"""CPU memory reuse: keep freed memory in the process instead of handing it back to the OS.

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh mmap and unmaps it on
free, so each training step page-faults its large buffers (vocabulary logits, their gradients) in again:
a quarter of a SmolLM2 LoRA step on this CPU (`traitbench bench`). Turning mmap off and trimming off keeps
those pages for reuse; the process's resident memory then stays at its peak. Every `LoadedModel` on a CPU
turns it on (`models.py`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_done = False


def keep_freed_memory() -> bool:
    """Once per process, on glibc: allocate from the heap only and never trim it (-1: off). True if it took effect."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _done = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, -1))
    except (OSError, AttributeError):  # not glibc
        _done = False
    return _done
