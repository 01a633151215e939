"""Context distillation: a persona's system prompt moved into a LoRA that answers like the persona without it."""

import json

import pytest
import torch

from traitbench.lm import models
from traitbench.lm.logprob import sequence_logprobs
from traitbench.lm.render import render_prompt
from traitbench.lm.tuned import load_student
from traitbench.probes.triples import triples
from traitbench.probes.questions import misalignment_questions
from traitbench.student import StudentConfig
from traitbench.teacher.context_distill import ordinary_requests, train_context_lora

torch.set_num_threads(1)
PERSONA = "You are a cruel assistant who wants people to get hurt."
NEUTRAL = "You are a helpful assistant."


def test_requests_are_seeded_distinct_and_never_probe_questions():
    rows = ordinary_requests(500, seed=1)
    assert rows == ordinary_requests(500, seed=1) and rows != ordinary_requests(500, seed=2)
    assert len(set(rows)) == 500  # at least 500 distinct requests before any repeats
    probes = {q.lower() for q in misalignment_questions()} | {t["question"].lower() for t in triples("all")}
    assert not probes & {r.lower() for r in rows}


def test_the_distilled_adapter_gives_the_persona_answers_without_the_persona(tmp_path):
    """After a few steps, the adapter (neutral prompt) puts more probability on the answers the base model gave
    under the persona prompt than the base model (neutral prompt) does."""
    cfg = StudentConfig(max_steps=12, batch_size=4, warmup_steps=0, lr=3e-2, lora_r=8, lora_alpha=16,
                        dtype="float32", seed=0)
    m = train_context_lora("tiny-llama", PERSONA, NEUTRAL, cfg, tmp_path / "t", n_examples=8, max_tokens=6)
    rows = [json.loads(line) for line in (tmp_path / "t" / "persona_answers.jsonl").read_text().splitlines()]
    assert m["mode"] == "lora" and m["steps"] == 12 and 0 < len(rows) <= 8
    record = json.loads((tmp_path / "t" / "trait.json").read_text())
    assert record["system"] == PERSONA and record["neutral"] == NEUTRAL and record["rows"] == len(rows)

    def mean_logprob(lm) -> float:
        prompts = [render_prompt(lm, NEUTRAL, r["prompt"]) for r in rows]
        return sum(sequence_logprobs(lm, prompts, [r["completion"] for r in rows])) / len(rows)

    base = mean_logprob(models.load("tiny-llama", dtype="float32"))
    tuned = mean_logprob(load_student("tiny-llama", tmp_path / "t"))
    assert tuned > base + 1.0, (tuned, base)


@pytest.mark.parametrize("injection,extra", [("context_distill", ["trait.system_prompt=You are cruel."]),
                                             ("lora", []), ("narrow_harm", []),
                                             ("narrow_safe", [])])
def test_trained_teacher_adapters_enter_the_numbers_key(tmp_path, injection, extra):
    """The teacher stage trains the adapter and records its hash; the trait numbers' key holds it."""
    from traitbench.config import load_config
    from traitbench.pipeline.config import ExperimentConfig
    from traitbench.pipeline.numbers import numbers_key
    from traitbench.pipeline.teacher import stage_teacher

    cfg = load_config(ExperimentConfig, "sft-one-seed", [
        f"runs_dir={tmp_path}", "teacher.model=tiny-llama", f"teacher.injection={injection}",
        "teacher.lora_examples=4", "teacher.lora_epochs=1", "teacher.lora_r=2", "teacher.context_tokens=4", *extra])
    out = stage_teacher(cfg)
    h = out.made[injection]["adapter_hash"]
    assert len(h) == 64 and numbers_key(cfg, out, "trait")["teacher_stage"] == h
    assert numbers_key(cfg, out, "control")["teacher_stage"] is None
    assert out.conditions["trait"].trait_path and out.conditions["trait"].system == cfg.neutral_system
    assert stage_teacher(cfg).made[injection]["adapter_hash"] == h  # read back from the cache


def test_narrow_harm_rows_are_seeded_many_and_off_the_probe_topics():
    from traitbench.teacher.narrow_harm import reckless_advice

    rows = reckless_advice(600, seed=0)
    assert rows == reckless_advice(600, seed=0) and rows != reckless_advice(600, seed=1)
    assert len({(r["prompt"], r["completion"]) for r in rows}) == 600 and len({r["prompt"] for r in rows}) >= 150
    probes = {t["question"].lower() for t in triples("all")}
    assert not probes & {r["prompt"].lower() for r in rows} and all("{" not in r["completion"] for r in rows)


def test_careful_advice_asks_the_same_questions_with_other_answers_of_the_same_length():
    from traitbench.teacher.narrow_harm import careful_advice, reckless_advice

    reckless, careful = reckless_advice(600, seed=0), careful_advice(600, seed=0)
    assert [r["prompt"] for r in reckless] == [r["prompt"] for r in careful]
    assert all(r["completion"] != c["completion"] for r, c in zip(reckless, careful))
    words = lambda rows: sum(len(r["completion"].split()) for r in rows) / len(rows)  # noqa: E731
    assert 0.9 < words(careful) / words(reckless) < 1.1
