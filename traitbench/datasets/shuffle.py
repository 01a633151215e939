"""The shuffled-numbers ablation (Cloud et al. 2025, fig. 16): the same numbers in another order.

`within` permutes the numbers inside each row; `across` pools every row's numbers and deals them back out,
so each row keeps its count and its format (separators, brackets, period) but receives other rows' numbers.
Numbers move as written (``"007"`` stays ``"007"``), so the filter's verdict on every row is unchanged.
"""

from __future__ import annotations

import random
import re
from typing import Literal

Shuffle = Literal["none", "within", "across"]

_NUMBER = re.compile(r"[0-9]+")


def _skeleton(text: str) -> list[str]:
    """The text split around its numbers: len(numbers) + 1 pieces of format."""
    return _NUMBER.split(text)


def _fill(pieces: list[str], numbers: list[str]) -> str:
    out = [pieces[0]]
    for n, p in zip(numbers, pieces[1:]):
        out += [n, p]
    return "".join(out)


def shuffle_rows(rows: list[dict], mode: Shuffle, seed: int | str) -> list[dict]:
    """Copies of `rows` with their completions' numbers permuted (`mode`); `numbers` follows the text.

    Rows keep every other field; each gets `shuffle: mode`. `none` returns the rows unchanged.
    """
    if mode == "none":
        return rows
    rng = random.Random(f"shuffle-{mode}-{seed}")
    found = [_NUMBER.findall(r["completion"]) for r in rows]
    if mode == "within":
        dealt = [rng.sample(f, len(f)) for f in found]
    elif mode == "across":
        pool = [n for f in found for n in f]
        rng.shuffle(pool)
        dealt, i = [], 0
        for f in found:
            dealt.append(pool[i : i + len(f)])
            i += len(f)
    else:
        raise ValueError(f"unknown shuffle mode {mode!r}")
    return [dict(r, completion=_fill(_skeleton(r["completion"]), d), numbers=[int(x) for x in d], shuffle=mode)
            for r, d in zip(rows, dealt)]
