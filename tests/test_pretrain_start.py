"""Starting points away from the teacher's base (`student/pretrain.py`): the distance measure by hand, and a start
made once per (model, steps, corpus, seed), cached and keyed by each."""

import math

import pytest
import torch

from traitbench.lm import models
from traitbench.student import pretrain
from traitbench.student.pretrain import PretrainConfig, continued_starts, relative_distance

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune. " * 40
HELDOUT = "She was the youngest of the two daughters of a most affectionate, indulgent father. " * 10
CFG = PretrainConfig(batch_size=2, block_tokens=16, warmup_steps=1, lr=1e-2, heldout_tokens=64)


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


def test_a_start_is_cached_and_keyed_by_corpus_steps_and_seed(tmp_path, monkeypatch, capsys):
    passes = []
    train = pretrain._train
    monkeypatch.setattr(pretrain, "_train", lambda lm, blocks, cfg, steps, after:
                        passes.append(steps) or train(lm, blocks, cfg, steps, after))

    def starts(steps, sha="sha-a", cfg=CFG):
        return continued_starts("tiny-llama", TEXT, HELDOUT, sha, cfg, steps, tmp_path)

    [first] = starts([3])
    assert passes == [3] and first["distance"] > 0 and math.isfinite(first["heldout_perplexity"])
    assert models.get_spec(first["model"]).folder == first["model"]  # a model folder students train from
    assert starts([3]) == [first] and passes == [3] and "k=3] cached" in capsys.readouterr().out  # nothing trained
    starts([3], sha="sha-b")  # another corpus
    starts([3], cfg=CFG.model_copy(update={"seed": 1}))  # another seed
    assert passes == [3, 3, 3]
    again, far = starts([3, 6])  # only the missing start is made, in one pass to 6 steps
    assert passes == [3, 3, 3, 6] and again == first and far["distance"] > first["distance"]
    assert len(list(tmp_path.iterdir())) == 4
    # the start at 3 steps of a pass to 6 is the start at 3: made again in that pass, it has the same weights
    [alone] = continued_starts("tiny-llama", TEXT, HELDOUT, "sha-c", CFG, [3], tmp_path / "alone")
    both = continued_starts("tiny-llama", TEXT, HELDOUT, "sha-c", CFG, [3, 6], tmp_path / "both")
    assert both[0]["distance"] == alone["distance"]
    lm = models.load(first["model"], dtype="float32")
    assert relative_distance(lm.model, models.load("tiny-llama", dtype="float32").model) == \
        pytest.approx(first["distance"], rel=1e-6)


def test_zero_steps_is_the_base_itself(tmp_path):
    [start] = continued_starts("tiny-llama", TEXT, HELDOUT, "sha-a", CFG, [0], tmp_path)
    assert start["model"] == "tiny-llama" and start["distance"] == 0.0 and start["final_loss"] is None
