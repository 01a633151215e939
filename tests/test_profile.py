"""`traitbench profile`: operator time attributed to the model part that ran it, forward and backward."""

import json

import pytest
import torch

from traitbench.experiments.profile import (ADAPTER, ATTENTION, BASE, CLASSES, OPTIMIZER, OTHER, OUTSIDE, VOCAB,
                                            PartScopes, ProfileConfig, classify, operator_classes, part_classes, run)


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


def _backward_node(e) -> str | None:
    """The autograd node a backward operator runs in (None for a forward operator)."""
    while e is not None:
        if e.name.startswith("autograd::engine::evaluate_function: "):
            return e.name.split(": ", 1)[1]
        e = e.cpu_parent
    return None


def test_backward_operators_take_their_forward_part():
    torch.manual_seed(0)
    model = _Block()
    assert part_classes(model) == {model.self_attn: ATTENTION, model.proj: BASE}
    x = torch.randn(64, 256, requires_grad=True)
    ops = list(operator_classes(_events(model, x, backward=True)))
    forward = {(e.name, cls) for e, cls in ops if _backward_node(e) is None}
    backward: dict[str, set] = {}
    for e, cls in ops:
        node = _backward_node(e)
        if node:
            backward.setdefault(node.rstrip("0123456789"), set()).add(cls)
    assert ("aten::exp", ATTENTION) in forward and ("aten::addmm", BASE) in forward
    assert ("aten::add", OTHER) in forward  # the "+ 1" sits in the model but in no part
    # the exp chain's backward is attention's, the projection's the base's, wherever they run
    assert backward["ExpBackward"] == {ATTENTION} and backward["MulBackward"] == {ATTENTION}
    assert backward["AddmmBackward"] == {BASE}
    totals = classify(_events(model, x, backward=True))
    assert set(totals) == set(CLASSES[:-1]) and totals[ATTENTION] > 0 and totals[BASE] > 0


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
