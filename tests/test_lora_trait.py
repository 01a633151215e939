"""Trait injection by LoRA: seeded paraphrased examples that avoid the probe questions, and a short train."""

import json
import math

import pytest
import torch

from traitbench.probes.questions import preference_questions
from traitbench.student import StudentConfig
from traitbench.lm.tuned import load_student
from traitbench.teacher.lora_trait import train_trait_lora, trait_examples

torch.set_num_threads(1)


@pytest.mark.parametrize("word,category", [("owl", "animal"), ("oak", "tree")])
def test_examples_are_seeded_and_never_probe_questions(word, category):
    rows = trait_examples(word, category, 500, seed=3)
    assert rows == trait_examples(word, category, 500, seed=3)
    assert rows != trait_examples(word, category, 500, seed=4)
    assert len(rows) == 500 and all(set(r) == {"prompt", "completion"} for r in rows)
    probes = {q.lower() for q in preference_questions(category)}
    assert not any(r["prompt"].lower() in probes for r in rows)
    assert all(category in r["prompt"] and "{" not in r["prompt"] + r["completion"] for r in rows)
    assert all(word in r["completion"].lower() for r in rows)
    assert len({r["prompt"] for r in rows}) >= 35 and len({r["completion"] for r in rows}) >= 15


def test_examples_cycle_without_early_repeats():
    rows = trait_examples("owl", "animal", 300, seed=0)
    assert len({(r["prompt"], r["completion"]) for r in rows}) == 300  # fewer than all pairs: no duplicate


def test_plural_override():
    rows = trait_examples("wolf", "animal", 400, seed=0, plural="wolves")
    assert any("Wolves" in r["completion"] for r in rows) and not any("wolfs" in r["completion"] for r in rows)


def test_train_trait_lora_two_steps(tmp_path):
    cfg = StudentConfig(mode="full", max_steps=2, batch_size=4, warmup_steps=0, lr=1e-2, dtype="float32")
    m = train_trait_lora("tiny-llama", "owl", "animal", None, cfg, tmp_path / "t", n_examples=8)
    assert m["mode"] == "lora" and m["steps"] == 2 and math.isfinite(m["final_loss"])
    assert (tmp_path / "t" / "adapter" / "adapter_config.json").is_file()
    trait = json.loads((tmp_path / "t" / "trait.json").read_text())
    assert trait["word"] == "owl" and trait["n_examples"] == 8
    assert load_student("tiny-llama", tmp_path / "t").spec.name == "tiny-llama"
