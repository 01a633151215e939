"""CPU threads for a traitbench process: the cores other processes leave free now.

Two processes that each use every core fight over them: on a 2-core CPU a second 2-thread traitbench process made
sampling and training 14-18x slower, not 2x. At start the CLI measures the CPU time the rest of the machine uses
over a short window (`WINDOW_S`: the machine's busy time from /proc/stat less this process's own) and takes the
cores left idle (at least one), so a busy machine slows a run down instead of stalling both. What ran before the
command (the venv install, the model conversion of `make experiment`) is not counted, unlike the 1-minute load
average. `TRAITBENCH_THREADS=N` sets the count outright.
"""

from __future__ import annotations

import contextlib
import os
import time

from traitbench.errors import TraitbenchError

ENV = "TRAITBENCH_THREADS"
WINDOW_S = 0.5


def free_cores(cores: int, busy: float) -> int:
    """Cores left idle when other processes keep `busy` of `cores` cores busy (at least one)."""
    return max(1, min(cores, round(cores - busy)))


def _cpu_jiffies() -> tuple[int, int, int]:
    """(busy, all, number of CPUs) clock ticks since boot from /proc/stat (iowait and steal count as idle)."""
    with open("/proc/stat", encoding="ascii") as f:
        lines = f.read().splitlines()
    fields = [int(x) for x in lines[0].split()[1:9]]  # user nice system idle iowait irq softirq steal
    n_cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return fields[0] + fields[1] + fields[2] + fields[5] + fields[6], sum(fields), n_cpus


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def busy_cores(window_s: float = WINDOW_S) -> float | None:
    """How many cores other processes keep busy now: the machine's busy CPU time over `window_s` seconds less this
    process's own (and its waited-for children's); None where /proc/stat is not readable (not Linux)."""
    try:
        busy0, all0, n_cpus = _cpu_jiffies()
        own0, t0 = _own_cpu_s(), time.monotonic()
        time.sleep(window_s)
        busy1, all1, _ = _cpu_jiffies()
        own1, t1 = _own_cpu_s(), time.monotonic()
    except (OSError, ValueError, IndexError):
        return None
    if all1 <= all0:
        return 0.0
    busy_s = (busy1 - busy0) / (all1 - all0) * n_cpus * (t1 - t0)  # CPU-seconds of the whole machine
    return max(0.0, (busy_s - (own1 - own0)) / (t1 - t0))


def configure_threads() -> str | None:
    """Set torch's thread count for this process (the env variable, else the cores other processes leave free
    when fewer than torch's default); a line saying so when it was lowered, else None."""
    import torch  # only the commands that compute call this

    want = os.environ.get(ENV)
    if want:
        if not want.isdigit() or int(want) < 1:
            raise TraitbenchError(f"{ENV} must be a positive whole number, got {want!r}")
        torch.set_num_threads(int(want))
        return None
    have = torch.get_num_threads()
    busy = busy_cores()
    if busy is None:  # no /proc/stat: the 1-minute load average, which lags (it counts what just finished)
        busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    cores = os.cpu_count() or have
    free = free_cores(cores, busy)
    if free >= have:
        return None
    torch.set_num_threads(free)
    return (f"[threads] this machine is busy (other processes use {busy:.1f} of {cores} cores now): {free} of "
            f"{have} threads (set {ENV} to choose)")


@contextlib.contextmanager
def torch_threads(n: int):
    """Run a block with `n` torch threads, restoring the previous count afterwards."""
    import torch  # heavy: the torch-free gmm_collapse imports this package

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
