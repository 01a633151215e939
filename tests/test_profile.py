"""`traitbench profile`: operator time attributed to the model part that ran it, forward and backward."""

import json

import pytest
import torch

from traitbench.experiments.profile import (ADAPTER, ATTENTION, BASE, CLASSES, OPTIMIZER, OTHER, OUTSIDE, VOCAB,
                                            PartScopes, ProfileConfig, classify, part_classes, run)


class _Block(torch.nn.Module):
    """A layer whose attention is nothing but element-wise work, and a linear projection after it."""

    def __init__(self):
        super().__init__()
        self.self_attn = _Exp()
        self.proj = torch.nn.Linear(256, 256)

    def forward(self, x):
        return self.proj(self.self_attn(x)) + 1


class _Exp(torch.nn.Module):
    def forward(self, x):
        for _ in range(20):
            x = (x * 0.5).exp()
        return x


def _events(model, x, backward: bool):
    scopes = PartScopes(model)
    try:
        with torch.profiler.profile() as prof:
            y = model(x)
            if backward:
                y.sum().backward()
    finally:
        scopes.remove()
    return prof.events()


def test_backward_operators_take_their_forward_part():
    torch.manual_seed(0)
    model = _Block()
    assert part_classes(model) == {model.self_attn: ATTENTION, model.proj: BASE}
    x = torch.randn(512, 256, requires_grad=True)
    fwd = classify(_events(model, x, backward=False))
    both = classify(_events(model, x, backward=True))
    # the exp chain's backward (its muls) is attention's, the projection's mm backward the base's; the "+ 1"
    # sits in the model but in no part
    assert both[ATTENTION] > 1.5 * fwd[ATTENTION] > 0
    assert both[BASE] > 1.5 * fwd[BASE] > 0
    assert both[OTHER] > 0 and both[VOCAB] < 0.2 * both[ATTENTION]  # only the backward's seed ops are outside
    assert set(both) == set(CLASSES[:-1])


def test_hooks_are_removed():
    model = _Block()
    PartScopes(model).remove()
    assert not model._forward_hooks and not model._forward_pre_hooks
    assert not model.self_attn._forward_hooks and not model.proj._forward_pre_hooks


def test_profile_tiny(tmp_path):
    cfg = ProfileConfig(models=["tiny-llama"], train_batch_size=2, warmup_steps=0, profiled_steps=1, decode_batch=2,
                        decode_new_tokens=3, demonstrations=1, roofline_size=128)
    result = run(cfg, tmp_path)
    saved = json.loads((tmp_path / "profile.json").read_text())
    parts = {p["part"]: p for p in saved["parts"]}
    assert set(parts) == {"lora", "distill", "decode"}
    for part in ("lora", "distill"):
        secs = parts[part]["seconds"]
        # every class measured, and together they are the profiled step's wall time
        assert sum(secs.values()) == pytest.approx(parts[part]["profiled_step_seconds"], rel=1e-6)
        for cls in (BASE, ADAPTER, ATTENTION, VOCAB, OPTIMIZER):
            assert secs[cls] > 0, (part, cls)
        assert secs[OUTSIDE] >= 0 and parts[part]["step_seconds"] > 0
    phases = parts["decode"]["phases"]
    assert set(phases) == {"prefill", "decode", "sampling"}
    assert phases["prefill"][BASE] > 0 and phases["decode"][ATTENTION] > 0 and phases["sampling"][BASE] == 0
    assert phases["prefill"][ADAPTER] == 0  # the sampler's model has no adapters
    assert sum(sum(p.values()) for p in phases.values()) == pytest.approx(parts["decode"]["seconds_profiled"])
    assert "| adapter (LoRA A, B, scale, add) |" in result.text and "tiny-llama sampler decode" in result.text
    assert (tmp_path / "profile.md").read_text() == result.text
