"""Controls that need no language model: the aux-logit positive control and GMM model collapse."""

from __future__ import annotations

import contextlib
import math
from typing import Sequence

from traitbench.probes.stats import mean_ci


def mean_ci95(values: Sequence[float]) -> dict:
    """{"mean", "ci95", "n"} for JSON: Student-t interval over the values; undefined parts are None."""
    m = mean_ci(values)
    return {
        "mean": None if math.isnan(m.mean) else m.mean,
        "ci95": None if math.isnan(m.lo) else [m.lo, m.hi],
        "n": len(values),
    }


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
