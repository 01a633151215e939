"""The channel screen: its KL and log-likelihood ratios against hand computations, and a whole screen on a tiny model."""

import json
import math

import pytest
import torch

from traitbench.lm import models
from traitbench.experiments.screen import ScreenConfig, _Cells, divergence, run, token_kl, top_numbers
from traitbench.teacher.trait import Trait


def test_token_kl_matches_the_definition():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    q = torch.tensor([[0.5, 0.3, 0.2], [0.6, 0.2, 0.2]])
    by_hand = [sum(pi * math.log(pi / qi) for pi, qi in zip(pr, qr)) for pr, qr in zip(p.tolist(), q.tolist())]
    got = token_kl(p.log() + 3.0, q.log() - 1.0)  # logits: any shift per row gives the same distribution
    torch.testing.assert_close(got, torch.tensor(by_hand), atol=1e-6, rtol=1e-6)


def test_divergence_counts_number_tokens_only_and_sums_each_numbers_ratio():
    lm = models.load("tiny-llama", dtype="float32", seed=0)
    tokens = lm.tokenizer("12, 7", add_special_tokens=False).input_ids  # '1' '2' ',' ' ' '7'
    assert len(tokens) == 5
    v = len(lm.tokenizer)
    g = torch.Generator().manual_seed(0)
    trait, control = torch.randn(5, v, generator=g), torch.randn(5, v, generator=g)
    out = divergence(lm, [tokens], [trait], [control])
    digit = [0, 1, 4]
    lt, lc = trait.log_softmax(-1), control.log_softmax(-1)
    kl = [float((lt[i].exp() * (lt[i] - lc[i])).sum()) for i in digit]
    assert out["n_positions"] == 3
    assert out["kl"]["mean"] == pytest.approx(sum(kl) / 3, rel=1e-5)
    llr = [float(lt[i, t] - lc[i, t]) for i, t in enumerate(tokens)]
    assert out["numbers"]["12"]["llr"] == pytest.approx(llr[0] + llr[1], rel=1e-5)
    assert out["numbers"]["7"] == {"llr": pytest.approx(llr[4], rel=1e-5), "count": 1}
    flips = [int(trait[i].argmax() != control[i].argmax()) for i in digit]
    assert out["divergence_share"] == pytest.approx(sum(flips) / 3)


def test_top_numbers_keep_one_width():
    nums = {"123": {"llr": 0.5, "count": 2}, "45": {"llr": 9.0, "count": 1}, "999": {"llr": 1.5, "count": 1},
            "012": {"llr": 7.0, "count": 1}, "300": {"llr": -1.0, "count": 3}}
    assert [t["number"] for t in top_numbers(nums, 2)] == [999, 123]


def test_a_whole_screen_on_a_tiny_model(tmp_path, monkeypatch):
    """Tiny random models write no clean number list: the answers come from the tokenizer instead."""
    def fixed_answers(self):
        texts = ["123, 456, 789", "101, 202", "555 666 777"]
        ids = [self.lm.tokenizer(t, add_special_tokens=False).input_ids for t in texts]
        return ["Continue: 1, 2, 3"] * 3, ids, {"sampled": 3, "kept": 3}

    monkeypatch.setattr(_Cells, "number_answers", fixed_answers)
    cfg = ScreenConfig(runs_dir=str(tmp_path), name="s", models=["tiny-llama"],
                       traits=[Trait(word="owl"), Trait(word="cat")], n_questions=3, samples_per_question=2,
                       answers=3, demonstrations=1, steering_prompts=2, random_numbers=2, subliminal_questions=2,
                       top_numbers=2)
    md = run(cfg, cfg.out).files[0]
    data = json.loads((tmp_path / "s" / "screen.json").read_text())
    assert len(data["rows"]) == 4 and {r["injection"] for r in data["rows"]} == {"system_prompt", "steering"}
    kls = [r["kl"]["mean"] for r in data["rows"]]
    assert kls == sorted(kls, reverse=True) and all(k > 0 for k in kls)
    assert all(r["rate"]["n"] == 6 for r in data["rows"])
    assert (tmp_path / "s" / "screen.png").stat().st_size > 0 and "| tiny-llama | " in md.read_text()
    sub = data["models"][0]["subliminal"]["traits"]
    assert set(sub) == {"owl", "cat"} and all(len(v["numbers"]) == 2 for v in sub.values())
    monkeypatch.setattr(_Cells, "number_answers", lambda self: pytest.fail("cached model screened again"))
    run(cfg, cfg.out)


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gemma3", "tiny-qwen2"])
def test_shared_prefix_logits_match_the_plain_path(name):
    """The screen's fast path (common prefix once, its cache reused) against `TeacherLogits.compute`, with a
    prefix longer than tiny-gemma3's 64-token sliding window."""
    from traitbench.experiments.screen import shared_prefix_logits
    from traitbench.student.distill import TeacherLogits
    from traitbench.lm.render import render_prompt
    from traitbench.teacher.prompts import demonstrations, number_prompts

    lm = models.load(name, dtype="float32", seed=1)
    prompts = number_prompts(5, seed=3)
    ids = lm.tokenizer([render_prompt(lm, "A shared system prompt.", p, demonstrations(2)) for p in prompts]).input_ids
    answers = [lm.tokenizer(a, add_special_tokens=False).input_ids
               for a in ["12, 34, 56", "7", "890, 123, 456, 789", "1, 2", "300 400"]]
    examples = [{"teacher_prompt_ids": p, "completion_ids": a} for p, a in zip(ids, answers)]
    assert min(len(p) for p in ids) > 80
    fast = shared_prefix_logits(lm.model, examples, batch_size=2)
    plain = TeacherLogits.compute(lm.model, examples, 0, batch_size=3).rows
    for f, p, a in zip(fast, plain, answers):
        assert f.shape == (len(a), lm.model.config.vocab_size)
        torch.testing.assert_close(f, p, atol=2e-4, rtol=1e-4)
