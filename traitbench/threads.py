"""CPU threads for a traitbench process: the cores other processes leave free.

Two processes that each use every core fight over them: on a 2-core CPU a second 2-thread traitbench process made
sampling and training 14-18x slower, not 2x. At start the CLI takes as many threads as the machine's recent load
leaves idle (at least one), so a busy machine slows a run down instead of stalling both. `TRAITBENCH_THREADS=N`
sets the count outright.
"""

from __future__ import annotations

import os

from traitbench.errors import TraitbenchError

ENV = "TRAITBENCH_THREADS"


def free_cores(cores: int, load: float) -> int:
    """Cores left idle by a 1-minute load average of `load` on `cores` cores (at least one)."""
    return max(1, min(cores, round(cores - load)))


def configure_threads() -> str | None:
    """Set torch's thread count for this process (the env variable, else the free cores when fewer than torch's
    default); a line saying so when it was lowered, else None."""
    import torch  # only the commands that compute call this

    want = os.environ.get(ENV)
    if want:
        if not want.isdigit() or int(want) < 1:
            raise TraitbenchError(f"{ENV} must be a positive whole number, got {want!r}")
        torch.set_num_threads(int(want))
        return None
    have = torch.get_num_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    free = free_cores(os.cpu_count() or have, load)
    if free >= have:
        return None
    torch.set_num_threads(free)
    return (f"[threads] this machine is busy (load {load:.1f} on {os.cpu_count()} cores): {free} of {have} threads "
            f"(set {ENV} to choose)")
