"""traitbench's probe figures as Hugging Face `evaluate` modules that load offline from this package.

Each metric is a folder `traitbench/probes/metrics/<name>/<name>.py` holding one `evaluate.Metric`; its `_compute`
calls the probe code's own function (`stats.py`, `probes/diversity.py`), and the probes compute these
figures through the loaded module, so there is one implementation. `evaluate.load(path(name))` copies the
script into the `evaluate` module cache once and never contacts the Hub (the path is local); `load` keeps one
instance per process, computing in memory.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from traitbench.errors import TraitbenchError

NAMES = ("trait_rate", "delta_logprob", "distinct_n", "number_diversity")
ROOT = Path(__file__).resolve().parent


def path(name: str) -> str:
    """The folder of metric `name`, the argument `evaluate.load` takes."""
    if name not in NAMES:
        raise TraitbenchError(f"unknown metric {name!r}; traitbench's metrics: {', '.join(NAMES)}")
    return str(ROOT / name)


@lru_cache(maxsize=None)
def load(name: str):
    """The `evaluate` module of metric `name`, loaded once per process (results computed in memory)."""
    import evaluate  # heavy (evaluate, datasets): only when a metric is computed

    return evaluate.load(path(name), keep_in_memory=True)
