import json
from contextlib import contextmanager

import pytest

from traitbench.io import read_complete_jsonl
from traitbench.lm import models
from traitbench.lm import sampling
from traitbench.lm.config import GenerationConfig
from traitbench.lm.render import render_prompt
from traitbench.lm.sampling import sample_rows
from traitbench.teacher.prompts import demonstrations, number_prompts
from traitbench.teacher.trait import Trait


def test_prompts_deterministic_and_prefix_stable():
    a, b = number_prompts(50, seed=3), number_prompts(50, seed=3)
    assert a == b
    assert number_prompts(80, seed=3)[:50] == a
    assert number_prompts(50, seed=4) != a
    assert len(set(a)) > 45
    assert all("numbers" in p.lower() for p in a)


def test_paper_system_prompt():
    s = Trait(word="owl", category="animal").teacher_prompt()
    assert s.startswith("You love owls. You think about owls all the time. Owls are your favorite animal.")


@pytest.fixture(scope="module")
def tiny():
    return models.load("tiny-llama", dtype="float32")


def _rows(lm, n):
    prompts = number_prompts(n, seed=0)
    rows = [{"idx": i, "prompt": p} for i, p in enumerate(prompts)]
    return rows, [render_prompt(lm, "sys", p, demonstrations(1)) for p in prompts]


def test_render_is_explicit(tiny):
    text = render_prompt(tiny, "You are a helpful assistant.", "hi")
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>")
    assert render_prompt(tiny, None, "hi").startswith("<|im_start|>user")


@contextmanager
def _crash_on_third_batch(monkeypatch):
    """Make `sampling.generate` raise KeyboardInterrupt on its third call (a crash mid-run), then restore it."""
    real_generate, calls = sampling.generate, {"n": 0}

    def crashing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_generate(*a, **k)

    monkeypatch.setattr(sampling, "generate", crashing)
    try:
        yield
    finally:
        monkeypatch.setattr(sampling, "generate", real_generate)


def test_resume_after_crash_no_loss_no_duplicates(tiny, tmp_path, monkeypatch):
    gen = GenerationConfig(max_new_tokens=6, batch_size=4, early_reject=False)
    rows, rendered = _rows(tiny, 14)
    ref = tmp_path / "ref.jsonl"
    sample_rows(tiny, rows, rendered, ref, gen, seed=1)

    out = tmp_path / "raw.jsonl"
    with pytest.raises(KeyboardInterrupt), _crash_on_third_batch(monkeypatch):
        sample_rows(tiny, rows, rendered, out, gen, seed=1)
    assert 0 < len(read_complete_jsonl(out)) < 14
    with out.open("a") as f:  # a torn line, as if killed mid-write
        f.write('{"idx": 99, "prompt": "x", "compl')
    sample_rows(tiny, rows, rendered, out, gen, seed=1)
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["idx"] for r in got) == list(range(14))
    key = lambda r: r["idx"]  # noqa: E731
    assert sorted(got, key=key) == sorted(read_complete_jsonl(ref), key=key)


def test_stop_when_enough_in_index_order_and_resume(tiny, tmp_path, monkeypatch):
    """Sampling stops after the first chunk at which `enough` holds; chunks follow prompt order (an unbiased
    sample), and a crashed run resumes to the same rows."""
    gen = GenerationConfig(max_new_tokens=4, batch_size=2, early_reject=False)
    rows, rendered = _rows(tiny, 20)
    enough = lambda got: len(got) >= 7  # noqa: E731
    ref = tmp_path / "ref.jsonl"
    perf = sample_rows(tiny, rows, rendered, ref, gen, seed=1, enough=enough, chunk=4)
    got = read_complete_jsonl(ref)
    assert perf["stopped_early"] and perf["rows"] == 8
    assert sorted(r["idx"] for r in got) == list(range(8))  # the first two chunks, whatever their lengths

    out = tmp_path / "raw.jsonl"
    with pytest.raises(KeyboardInterrupt), _crash_on_third_batch(monkeypatch):
        sample_rows(tiny, rows, rendered, out, gen, seed=1, enough=enough, chunk=4)
    sample_rows(tiny, rows, rendered, out, gen, seed=1, enough=enough, chunk=4)
    key = lambda r: r["idx"]  # noqa: E731
    assert sorted(read_complete_jsonl(out), key=key) == sorted(got, key=key)
