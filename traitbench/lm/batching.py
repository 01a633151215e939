"""Length-sorted batching, the one way the engine groups rows of different lengths: sort by length, cut into
batches (little padding, a fixed order), run each batch, put the results back in input order.

Used by the sampler (`sampling.sample_rows`, `sampling.sample_answers`), the log-probabilities
(`logprob.sequence_logprobs`) and the students' length-bucketed batches (`student.data.LengthBucketSampler`).
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


def length_batches(lengths: Sequence[int], size: int, ties: Sequence[float] | None = None) -> list[list[int]]:
    """Indices sorted by length (equal lengths by `ties`, else by index) and cut into batches of `size`."""
    if ties is None:
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    else:
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], ties[i]))
    return [order[i : i + size] for i in range(0, len(order), size)]


def in_length_batches(run: Callable[[list[int], int], Sequence[T]], lengths: Sequence[int], size: int) -> list[T]:
    """`run(indices, batch number)` on each length-sorted batch; its results, one per index, in input order."""
    out: list = [None] * len(lengths)
    for b, idxs in enumerate(length_batches(lengths, size)):
        results = run(idxs, b)
        if len(results) != len(idxs):
            raise ValueError(f"batch {b}: {len(results)} results for {len(idxs)} rows")
        for i, r in zip(idxs, results):
            out[i] = r
    return out
