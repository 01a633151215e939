import math

import pytest
import torch

from traitbench.lm import models
from traitbench.lm.logprob import answer_variants, perplexity, sequence_logprobs, trait_logprob
from traitbench.lm.render import render_prompt
from traitbench.probes.config import ProbeConfig
from traitbench.probes.questions import held_out_text
from traitbench.probes.run import probe_model


@pytest.fixture(scope="module")
def tiny():
    return models.load("tiny-qwen2", dtype="float32", seed=1)


def _by_hand(lm, prompt, cont):
    """log P(cont | prompt) from one unpadded forward pass and an explicit softmax."""
    p = lm.tokenizer(prompt, add_special_tokens=False).input_ids
    c = lm.tokenizer(cont, add_special_tokens=False).input_ids
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([p + c])).logits[0].double()
    total = 0.0
    for i, t in enumerate(c):
        row = logits[len(p) + i - 1]
        total += float(row[t] - torch.logsumexp(row, 0))
    return total


def test_sequence_logprob_matches_hand_computation_with_padding(tiny):
    prompts = [render_prompt(tiny, "sys", "Name your favorite animal."), render_prompt(tiny, None, "Hi")]
    conts = ["Owl", "owls are great"]
    got = sequence_logprobs(tiny, prompts, conts)
    for g, p, c in zip(got, prompts, conts):
        assert g == pytest.approx(_by_hand(tiny, p, c), abs=1e-4)


def test_continuations_share_their_prompt(tiny):
    """Continuations of one prompt share a pass when one's input extends the other's (one-token "A" and
    three-token "Owl"/"owl"/"owls are great"), in any order and across batches."""
    q, q2 = render_prompt(tiny, "sys", "Favorite animal?"), render_prompt(tiny, None, "A longer question here?")
    conts = ["A", "Owl", "owl", "owls are great", "owl", "A"]
    prompts = [q, q, q, q, q2, q2]
    assert len(tiny.tokenizer("A", add_special_tokens=False).input_ids) == 1
    got = sequence_logprobs(tiny, prompts, conts, batch_size=2)
    for g, p, c in zip(got, prompts, conts):
        assert g == pytest.approx(_by_hand(tiny, p, c), abs=1e-4)


def test_trait_logprob_is_logsumexp_of_variants(tiny):
    q = render_prompt(tiny, "sys", "Favorite animal?")
    variants = answer_variants(tiny, "owl")
    assert variants == ["Owl", "owl"]
    expected = math.log(sum(math.exp(_by_hand(tiny, q, v)) for v in variants))
    assert trait_logprob(tiny, [q], "owl")[0] == pytest.approx(expected, abs=1e-4)


def test_perplexity_of_uniform_model_is_vocab_size(tiny):
    text, source = held_out_text(2000)
    assert "PSF" in source and len(text) == 2000
    with torch.no_grad():
        for p in tiny.model.parameters():
            p.zero_()
    assert perplexity(tiny, text, 64)["perplexity"] == pytest.approx(len(tiny.tokenizer), rel=1e-3)


def test_probe_model_writes_samples_and_rates(tmp_path):
    lm = models.load("tiny-llama", dtype="float32")
    cfg = ProbeConfig(n_questions=3, samples_per_question=2, open_ended_samples=1, perplexity_tokens=32)
    res = probe_model(lm, "sys", "owl", "animal", cfg, tmp_path, seed=0)
    assert res["plain"]["rate"]["n"] == 6 and res["numbers_prefixed"]["rate"]["n"] == 6
    assert len(res["plain"]["trait_logprob"]["per_question"]) == 3
    assert (tmp_path / "samples.jsonl").read_text().count("\n") == 6 + 6 + 10
