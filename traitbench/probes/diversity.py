"""Diversity and drift of answers, numbers and text (for trait probes and model-collapse generations).

Distributions are `Counter`s; an undefined value (an empty distribution) is NaN. Entropies and
divergences are in bits unless `base` says otherwise.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable, Mapping, Sequence

import numpy as np

from traitbench.probes.scoring import normalize_answer

NAN = float("nan")
NUMBER_RANGE = 1000  # number values live in 0..999


def answer_distribution(answers: Iterable[str], normalize: bool = True) -> Counter:
    """Counts of answers, by default mapped through normalize_answer; answers that normalise to "" are dropped."""
    keys = (normalize_answer(a) if normalize else a for a in answers)
    return Counter(k for k in keys if k)


def _probs(counter: Mapping, support: Sequence) -> np.ndarray:
    total = sum(counter.values())
    return np.array([counter.get(s, 0) / total for s in support], dtype=float)


def entropy_bits(counter: Mapping) -> float:
    """Shannon entropy in bits ({a: 2, b: 2} -> 1.0); 0.0 for an empty distribution."""
    total = sum(counter.values())
    return float(-sum(c / total * math.log2(c / total) for c in counter.values() if c > 0)) if total else 0.0


def distinct_count(counter: Mapping) -> int:
    """Number of different answers with a positive count."""
    return sum(1 for c in counter.values() if c > 0)


def top1_mass(counter: Mapping) -> float:
    """Share of the most frequent answer."""
    total = sum(counter.values())
    return max(counter.values()) / total if total else NAN


def top_k_set(counter: Mapping, k: int = 5) -> set:
    """Answers whose count is at least the k-th largest count (ties at the cut are all included)."""
    counts = sorted((c for c in counter.values() if c > 0), reverse=True)
    if not counts:
        return set()
    cut = counts[min(k, len(counts)) - 1]
    return {a for a, c in counter.items() if c >= cut and c > 0}


def tail_mass(counter: Mapping, reference: Mapping | None = None, k: int = 5) -> float:
    """Share of `counter` on answers outside the reference's top-k (top_k_set; reference defaults to counter).

    Against a fixed reference (generation 0) it falls as a collapsing model drops the tail.
    """
    total = sum(counter.values())
    if not total:
        return NAN
    head = top_k_set(counter if reference is None else reference, k)
    return sum(c for a, c in counter.items() if a not in head) / total


def rare_mass(counter: Mapping, reference: Mapping | None = None, below: float = 0.01) -> float:
    """Share of `counter` on answers whose reference frequency is < `below` (unseen in the reference counts).

    The reference defaults to `counter` itself.
    """
    total = sum(counter.values())
    ref = counter if reference is None else reference
    ref_total = sum(ref.values())
    if not total or not ref_total:
        return NAN
    return sum(c for a, c in counter.items() if ref.get(a, 0) / ref_total < below) / total


def _kl(p: np.ndarray, q: np.ndarray, base: float) -> float:
    mask = p > 0
    if np.any(q[mask] == 0):
        return math.inf
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])) / math.log(base))


def js_divergence(p: Mapping, q: Mapping, base: float = 2) -> float:
    """Jensen-Shannon divergence; 0 for equal distributions, 1 bit for disjoint ones; NaN if either is empty."""
    if not sum(p.values()) or not sum(q.values()):
        return NAN
    support = sorted(set(p) | set(q), key=repr)
    pp, qq = _probs(p, support), _probs(q, support)
    m = (pp + qq) / 2
    return 0.5 * _kl(pp, m, base) + 0.5 * _kl(qq, m, base)


def kl_divergence(p: Mapping, q: Mapping, alpha: float = 0.5, base: float = 2) -> float:
    """KL(p || q) over the union of both supports after adding `alpha` to every count (alpha=0: unsmoothed,
    inf where q misses an answer of p); NaN if either is empty."""
    if not sum(p.values()) or not sum(q.values()):
        return NAN
    support = sorted(set(p) | set(q), key=repr)
    pp = np.array([p.get(s, 0) + alpha for s in support], dtype=float)
    qq = np.array([q.get(s, 0) + alpha for s in support], dtype=float)
    return _kl(pp / pp.sum(), qq / qq.sum(), base)


def number_counts(lists: Iterable[Sequence[int]]) -> np.ndarray:
    """Histogram of all values over 0..999 (length 1000); a value outside that range raises ValueError."""
    hist = np.zeros(NUMBER_RANGE, dtype=np.int64)
    for xs in lists:
        for x in xs:
            if not 0 <= x < NUMBER_RANGE:
                raise ValueError(f"number {x} outside 0..{NUMBER_RANGE - 1}")
            hist[x] += 1
    return hist


def number_value_stats(
    lists: Sequence[Sequence[int]], reference: Sequence[Sequence[int]] | None = None, rare_below: float = 0.001
) -> dict:
    """Value statistics of number lists.

    entropy_bits: entropy of the value histogram over 0..999 (max log2 1000 ≈ 9.97); coverage: fraction of
    the 1000 values seen at least once; tail_mass: share of values whose frequency in `reference` (default:
    these lists) is below `rare_below` (default 0.001, the uniform share) — the rare tail that collapse
    loses first; mean_count: numbers per list.
    """
    hist = number_counts(lists)
    ref = hist if reference is None else number_counts(reference)
    total, ref_total = int(hist.sum()), int(ref.sum())
    tail = NAN
    if total and ref_total:
        tail = float(hist[ref / ref_total < rare_below].sum() / total)
    counter = {i: int(c) for i, c in enumerate(hist) if c}
    return {
        "n_lists": len(lists),
        "n_values": total,
        "mean_count": total / len(lists) if len(lists) else NAN,
        "entropy_bits": entropy_bits(counter),
        "coverage": len(counter) / NUMBER_RANGE,
        "tail_mass": tail,
    }


def number_js(a_lists: Iterable[Sequence[int]], b_lists: Iterable[Sequence[int]], base: float = 2) -> float:
    """Jensen-Shannon divergence between the value distributions (0..999) of two sets of number lists."""
    a, b = number_counts(a_lists), number_counts(b_lists)
    return js_divergence({i: int(c) for i, c in enumerate(a) if c}, {i: int(c) for i, c in enumerate(b) if c}, base)


def _ngrams(text: str, n: int) -> list[tuple[str, ...]]:
    toks = text.lower().split()
    return [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Unique / total n-grams of lowercased whitespace tokens, n-grams taken within each text; NaN if none."""
    if n < 1:
        raise ValueError("n must be >= 1")
    grams = [g for t in texts for g in _ngrams(t, n)]
    return len(set(grams)) / len(grams) if grams else NAN


def type_token_ratio(texts: Iterable[str]) -> float:
    """Unique / total lowercased whitespace tokens over all texts pooled; NaN if there are none."""
    return distinct_n(texts, 1)


# ----------------------------------------------------------------------------------- text (model collapse)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """Lowercased words (letters, with an inner apostrophe: "don't"); numbers and punctuation dropped."""
    return _WORD.findall(text.lower())


def word_counts(texts: Iterable[str]) -> Counter:
    return Counter(w for t in texts for w in words(t))


def vocabulary_coverage(sample: Mapping, reference: Mapping) -> float:
    """Share of the reference's word types (e.g. the held-out human text's) that the sample ever uses."""
    return sum(1 for w in reference if sample.get(w, 0) > 0) / len(reference) if reference else NAN


def rare_word_mass(sample: Mapping, reference: Mapping, max_count: int = 2) -> float:
    """Share of the sample's words that are rare in the reference text (seen there 1..max_count times):
    the tail a collapsing model stops writing first."""
    total = sum(sample.values())
    rare = {w for w, c in reference.items() if 0 < c <= max_count}
    return sum(c for w, c in sample.items() if w in rare) / total if total else NAN


def self_bleu(texts: Sequence[str], n: int = 4) -> float:
    """Mean BLEU-n of each text against all the others as references (Texygen's self-BLEU): 0 for texts that
    share no n-gram, 1 for identical texts. Sentence BLEU with add-one smoothing above unigrams and the
    brevity penalty of the closest reference length; NaN for fewer than two texts with words."""
    toks = [t.lower().split() for t in texts]
    toks = [t for t in toks if t]
    if len(toks) < 2:
        return NAN
    grams = [[Counter(tuple(t[i:i + k]) for i in range(len(t) - k + 1)) for k in range(1, n + 1)] for t in toks]
    scores = []
    for i, hyp in enumerate(toks):
        logp = 0.0
        for k in range(n):
            ref_max: Counter = Counter()
            for j in range(len(toks)):
                if j != i:
                    ref_max |= grams[j][k]
            total = sum(grams[i][k].values())
            match = sum(min(c, ref_max[g]) for g, c in grams[i][k].items())
            if k > 0:  # add-one smoothing of the higher orders (Lin & Och's method 2)
                match, total = match + 1, total + 1
            if match == 0 or total == 0:
                logp = -math.inf
                break
            logp += math.log(match / total) / n
        lens = [len(t) for j, t in enumerate(toks) if j != i]
        closest = min(lens, key=lambda r: (abs(r - len(hyp)), r))
        bp = 1.0 if len(hyp) > closest else math.exp(1 - closest / len(hyp))
        scores.append(bp * math.exp(logp))
    return float(np.mean(scores))


def nll_tail(nll: Sequence[float]) -> dict:
    """Per-token negative log-likelihoods (nats) of held-out text: perplexity = exp(mean), and the tail
    percentiles p95 / p99 that rise first when a model forgets the rare patterns of the text."""
    x = np.asarray(nll, dtype=float)
    if not x.size:
        return {"perplexity": NAN, "nll_mean": NAN, "nll_p95": NAN, "nll_p99": NAN, "tokens": 0}
    return {"perplexity": float(np.exp(x.mean())), "nll_mean": float(x.mean()),
            "nll_p95": float(np.percentile(x, 95)), "nll_p99": float(np.percentile(x, 99)), "tokens": int(x.size)}
