"""Starting points away from the teacher's base (`student/pretrain.py`): the distance measure by hand, and a start
made once per (model, steps, corpus, seed), cached and keyed by each."""

import math

import pytest
import torch

from traitbench.lm import models
from traitbench.student import pretrain
from traitbench.student.pretrain import PretrainConfig, continued_start, relative_distance

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune. " * 40
HELDOUT = "She was the youngest of the two daughters of a most affectionate, indulgent father. " * 10


def test_relative_distance_by_hand():
    base, moved = torch.nn.Linear(2, 2, bias=True), torch.nn.Linear(2, 2, bias=True)
    with torch.no_grad():
        base.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, 2.0]]))
        base.bias.copy_(torch.tensor([0.0, 0.0]))
        moved.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 2.0]]))
        moved.bias.copy_(torch.tensor([0.0, 4.0]))
    # ‖θ − θ₀‖ = √(3² + 4²) = 5; ‖θ₀‖ = √(1 + 4 + 0 + 4) = 3
    assert relative_distance(moved, base) == pytest.approx(5 / 3)
    assert relative_distance(base, base) == 0.0


def test_a_start_is_cached_and_keyed_by_corpus_steps_and_seed(tmp_path, monkeypatch):
    calls = []
    train = pretrain._train
    monkeypatch.setattr(pretrain, "_train", lambda lm, blocks, cfg: calls.append(cfg.steps) or train(lm, blocks, cfg))
    cfg = PretrainConfig(steps=3, batch_size=2, block_tokens=16, warmup_steps=1, lr=1e-2, heldout_tokens=64)
    first = continued_start("tiny-llama", TEXT, HELDOUT, "sha-a", cfg, tmp_path)
    assert calls == [3] and first["distance"] > 0 and math.isfinite(first["heldout_perplexity"])
    assert models.get_spec(first["model"]).folder == first["model"]  # a model folder students train from
    again = continued_start("tiny-llama", TEXT, HELDOUT, "sha-a", cfg, tmp_path)
    assert calls == [3] and again == first  # cached: nothing trained
    continued_start("tiny-llama", TEXT, HELDOUT, "sha-b", cfg, tmp_path)  # another corpus
    continued_start("tiny-llama", TEXT, HELDOUT, "sha-a", cfg.model_copy(update={"seed": 1}), tmp_path)
    far = continued_start("tiny-llama", TEXT, HELDOUT, "sha-a", cfg.model_copy(update={"steps": 6}), tmp_path)
    assert calls == [3, 3, 3, 6] and len(list(tmp_path.iterdir())) == 4
    assert far["distance"] > first["distance"]
    lm = models.load(first["model"], dtype="float32")
    assert relative_distance(lm.model, models.load("tiny-llama", dtype="float32").model) == \
        pytest.approx(first["distance"], rel=1e-6)


def test_zero_steps_is_the_base_itself(tmp_path):
    start = continued_start("tiny-llama", TEXT, HELDOUT, "sha-a", PretrainConfig(steps=0, heldout_tokens=64), tmp_path)
    assert start["model"] == "tiny-llama" and start["distance"] == 0.0 and start["final_loss"] is None
