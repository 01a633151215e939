"""The fast decoder (shared-prefix attention, compaction, early reject) against the plain transformers path."""

import random

import pytest
import torch

from traitbench.datasets.parse import ParseError, parse_numbers, prefix_rejection
from traitbench.lm import models
from traitbench.lm import decode as D
from traitbench.lm.config import GenerationConfig
from traitbench.lm.render import add_special_tokens, render_prompt
from traitbench.lm.sampling import generate, hf_generate
from traitbench.teacher.prompts import demonstrations, number_prompts

ARCHS = ["tiny-llama", "tiny-gemma3", "tiny-qwen2"]


def _texts(lm, n=5, seed=1):
    prompts = number_prompts(n, seed=seed)
    prompts[-1] += " Please."  # rows of different lengths: pads follow the shorter suffixes
    return [render_prompt(lm, "A long shared system prompt for the test.", p, demonstrations(2)) for p in prompts]


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("compact_at", [0.0, 0.99])
@pytest.mark.parametrize("flash_prefill", [True, False])
def test_step_logits_match_full_forward(name, compact_at, flash_prefill, monkeypatch):
    """Every step's logits equal a plain forward pass over prompt + tokens so far (fp32), also after rows
    left the batch (compaction), with the CPU's packed flash prefill and with the padded masked one (CUDA's)."""
    monkeypatch.setattr(D, "FLASH_PREFILL", flash_prefill)
    lm = models.load(name, dtype="float32", seed=2)
    calls = []
    real = D._packed_prefill
    monkeypatch.setattr(D, "_packed_prefill", lambda *a: calls.append(1) or real(*a))
    _check_step_logits(lm, _texts(lm, n=6), compact_at, monkeypatch)
    # packed unless switched off, or where tiny-gemma3's 64-token sliding window is shorter than the prompts
    assert bool(calls) == (flash_prefill and name != "tiny-gemma3")


def test_packed_prefill_within_a_sliding_window(monkeypatch):
    """gemma3 with prompts inside its sliding window takes the packed prefill; logits still match."""
    lm = models.load("tiny-gemma3", dtype="float32", seed=2)
    texts = [render_prompt(lm, "Sys.", p) for p in ["Numbers: 1, 2", "More: 7, 8, 9, 10", "Go"]]
    calls = []
    real = D._packed_prefill
    monkeypatch.setattr(D, "_packed_prefill", lambda *a: calls.append(1) or real(*a))
    _check_step_logits(lm, texts, 0.99, monkeypatch)
    assert calls


def _check_step_logits(lm, texts, compact_at, monkeypatch):
    seen = []
    real_forward = D._forward
    monkeypatch.setattr(D, "_forward", lambda *a: seen.append(real_forward(*a)) or seen[-1])
    calls = iter(range(10**6))
    out = D.decode(lm, texts, temperature=1.0, max_new_tokens=7, seed=0, compact_at=compact_at,
                   reject=lambda text: "test" if next(calls) % 7 == 3 else None)  # rows stop at various steps
    assert len({len(s.tokens) for s in out}) > 1
    steps = seen[1:]  # the first call fills the shared prefix
    tok = lm.tokenizer
    for row, (text, sample) in enumerate(zip(texts, out)):
        prompt = tok(text, add_special_tokens=add_special_tokens(lm)).input_ids
        with torch.no_grad():
            full = lm.model(input_ids=torch.tensor([prompt + sample.tokens])).logits[0].float()
        for t in range(len(sample.tokens)):
            present = [r for r, s in enumerate(out) if t < len(s.tokens) + (s.finish == "stop")]
            slot = present.index(row) if compact_at else row
            torch.testing.assert_close(steps[t][slot], full[len(prompt) - 1 + t], atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ARCHS)
def test_greedy_matches_transformers_generate(name):
    lm = models.load(name, dtype="float32", seed=2)
    texts = _texts(lm)
    greedy = GenerationConfig(temperature=0, max_new_tokens=8, early_reject=False)
    fast = [s.text for s in generate(lm, texts, greedy, seed=0)]
    one_by_one = [hf_generate(lm, [t], greedy, seed=0)[0] for t in texts]
    assert fast == one_by_one


def test_sample_categorical_follows_probabilities():
    """Inverse-CDF draws hit each token at its probability (chi-square) and never a zero-probability one."""
    probs = torch.tensor([0.0, 0.5, 0.0, 0.2, 0.3, 0.0])
    n = 20000
    draws = D.sample_categorical(probs.expand(n, -1), torch.Generator().manual_seed(0))
    counts = torch.bincount(draws, minlength=6).float()
    assert counts[probs == 0].sum() == 0
    support = probs > 0
    chi2 = float(((counts[support] - n * probs[support]) ** 2 / (n * probs[support])).sum())
    assert chi2 < 13.8  # 99.9% quantile of chi-square with 2 degrees of freedom


def test_sampling_distribution_matches_softmax():
    """At T=0.7 with top-k 5, one sampled step follows transformers' warped distribution (chi-square)."""
    lm = models.load("tiny-llama", dtype="float32", seed=5)
    text = _texts(lm, n=1)[0]
    n = 4000
    out = D.decode(lm, [text] * n, temperature=0.7, top_k=5, max_new_tokens=1, seed=0)
    first = torch.tensor([s.tokens[0] if s.tokens else lm.tokenizer.eos_token_id for s in out])
    ids = torch.tensor([lm.tokenizer(text, add_special_tokens=add_special_tokens(lm)).input_ids])
    with torch.no_grad():
        logits = lm.model(input_ids=ids).logits[0, -1].float()
    probs = D.warpers(0.7, 1.0, 5)(None, logits[None])[0].softmax(-1)
    support = probs.nonzero()[:, 0]
    assert set(first.tolist()) <= set(support.tolist())
    observed = torch.stack([(first == t).sum() for t in support]).float()
    expected = probs[support] * n
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 20.5  # 99.9% quantile of chi-square with 4 degrees of freedom is 18.5


def test_prefix_rejection_never_rejects_a_parsable_completion():
    rng = random.Random(0)
    alphabet = list("0123456789") * 3 + list(", ;\n.[](){}") + ["a", "-", "\u3000", "\t", "é"]
    seps = [", ", ",", " ", ";", "\n", "; "]
    rejected = 0
    for _ in range(20000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        if rng.random() < 0.6:
            nums = (str(rng.randint(0, 1200)) for _ in range(rng.randint(1, 12)))
            s = rng.choice(["", "[", " (", "{"]) + rng.choice(seps).join(nums) + s[: rng.randint(0, 3)]
        reason = prefix_rejection(s)
        if reason is None:
            continue
        rejected += 1
        for _ in range(3):
            tail = "".join(rng.choice(alphabet + seps) for _ in range(rng.randint(0, 6)))
            for full in (s, s + tail):
                with pytest.raises(ParseError):
                    parse_numbers(full.strip())
    assert rejected > 5000


@pytest.mark.parametrize("text,reason", [
    ("Sure", "non_numeric"), ("12, 4a", "non_numeric"), ("1, 2, 3-", "bad_char"), ("1234", "out_of_range"),
    ("1000", "out_of_range"), (", ".join(["1"] * 11), "too_many"), ("1, 2 3", "mixed_separators"),
    ("[1, 2] 3", "bad_char"), ("1. 2", "bad_char"), (", 1", "empty_item"),
    ("1, 2, 3", None), ("[1, 2", None), ("1, 2,", None), ("007", None), ("[1, 2].", None), ("1;\n2", None),
])
def test_prefix_rejection_cases(text, reason):
    assert prefix_rejection(text) == reason


def test_rows_without_a_shared_prefix():
    """No common first token (no shared prefix): left pads then have no visible key but themselves."""
    lm = models.load("tiny-llama", dtype="float32", seed=2)
    texts = ["1, 2, 3, 4, 5, 6", "Zebra count"]
    assert D.common_prefix_len([lm.tokenizer(t).input_ids for t in texts]) == 0
    greedy = GenerationConfig(temperature=0, max_new_tokens=5, early_reject=False)
    fast = [s.text for s in generate(lm, texts, greedy, seed=0)]
    assert fast == [hf_generate(lm, [t], greedy, seed=0)[0] for t in texts]
