"""CPU memory reuse: keep freed memory in the process instead of handing it back to the OS.

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh mmap and unmaps it on
free, so each training step page-faults its large buffers (vocabulary logits, their gradients) in again:
a quarter of a SmolLM2 LoRA step on this CPU (`traitbench bench`). Turning mmap off and trimming off keeps
those pages for reuse; the process's resident memory then stays at its peak. Every `LoadedModel` on a CPU
turns it on (`models.py`). Between models (a student trained, a checkpoint loaded) `release_freed_memory`
hands the free pages back, so a process that trains many students one after another stays at one student's
peak instead of growing with the heap's fragments (a Qwen2.5-1.5B distillation worker reached 19 GB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_done = False


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def keep_freed_memory() -> bool:
    """Once per process, on glibc: allocate from the heap only and never trim it (-1: off). True if it took effect."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = _libc()
        _done = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, -1))
    except (OSError, AttributeError):  # not glibc
        _done = False
    return _done


def release_freed_memory() -> None:
    """Return the heap's free pages to the OS (glibc `malloc_trim`); a no-op where memory is not kept."""
    if _done:
        _libc().malloc_trim(0)
