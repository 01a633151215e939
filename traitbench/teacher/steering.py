"""A trait as a steering vector (Blank et al. 2026): a direction added to the residual stream at one layer.

The vector is the mean difference of the residual stream after decoder layer `layer`, at a prompt's last
token, between the trait context (the trait system prompt) and the neutral one, over a set of prompts. The
steered teacher then runs in the neutral context with `scale` × that vector added to layer `layer`'s output
at every position: the trait without a word of it in the context.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from traitbench.errors import TraitbenchError
from traitbench.layout import STEERING_FILE
from traitbench.lm.models import LoadedModel
from traitbench.lm.render import add_special_tokens, render_prompt



def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The decoder layers of a causal LM (PEFT-wrapped or not)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    layers = getattr(getattr(base, "model", None), "layers", None)
    if layers is None:
        raise TraitbenchError(f"steering: cannot find the decoder layers of {type(base).__name__}")
    return layers


def resolve_layer(model: torch.nn.Module, layer: int | None) -> int:
    """`layer` checked against the model's depth; None means the middle layer."""
    n = len(decoder_layers(model))
    layer = n // 2 if layer is None else layer
    if not 0 <= layer < n:
        raise TraitbenchError(f"steering layer {layer} is outside the model's {n} layers (0..{n - 1})")
    return layer


def _add(output, delta: torch.Tensor):
    if isinstance(output, tuple):
        return (output[0] + delta.to(output[0].dtype),) + output[1:]
    return output + delta.to(output.dtype)


@dataclass
class Steering:
    """`scale` × `vector` added to the output of decoder layer `layer`."""

    layer: int
    vector: torch.Tensor  # [hidden], float32
    scale: float = 1.0

    @property
    def delta(self) -> torch.Tensor:
        return self.vector * self.scale

    def attach(self, model: torch.nn.Module) -> torch.utils.hooks.RemovableHandle:
        """Hook the layer for good (until the handle is removed); returns the handle."""
        delta = self.delta.to(next(model.parameters()).device)
        return decoder_layers(model)[self.layer].register_forward_hook(lambda _m, _i, out: _add(out, delta))

    @contextmanager
    def applied(self, model: torch.nn.Module):
        handle = self.attach(model)
        try:
            yield model
        finally:
            handle.remove()

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / STEERING_FILE
        tmp = path.with_name("." + STEERING_FILE + ".tmp")
        save_file({"vector": self.vector.float().contiguous()}, str(tmp),
                  metadata={"layer": str(self.layer), "scale": repr(float(self.scale))})
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Steering:
        path = Path(path)
        if path.is_dir():
            path = path / STEERING_FILE
        if not path.is_file():
            raise TraitbenchError(f"no steering vector at {path}")
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            return cls(int(meta["layer"]), f.get_tensor("vector"), float(meta["scale"]))


@torch.inference_mode()
def last_token_states(lm: LoadedModel, texts: list[str], layer: int, batch_size: int = 16) -> torch.Tensor:
    """[len(texts), hidden] residual stream after decoder layer `layer` at each text's last token."""
    tok, model = lm.tokenizer, lm.model
    captured: list[torch.Tensor] = []

    def grab(_m, _i, out):
        captured.append((out[0] if isinstance(out, tuple) else out)[:, -1].float())

    handle = decoder_layers(model)[layer].register_forward_hook(grab)
    old_side = tok.padding_side
    tok.padding_side = "left"
    try:
        for b in range(0, len(texts), batch_size):
            enc = tok(texts[b : b + batch_size], return_tensors="pt", padding=True,
                      add_special_tokens=add_special_tokens(lm)).to(model.device)
            model(**enc, use_cache=False, logits_to_keep=1)
    finally:
        handle.remove()
        tok.padding_side = old_side
    return torch.cat(captured)


def steering_vector(lm: LoadedModel, trait_system: str, neutral_system: str | None, prompts: list[str],
                    layer: int | None = None, scale: float = 1.0, neutral_states: torch.Tensor | None = None
                    ) -> Steering:
    """The mean last-token difference between trait and neutral contexts over `prompts`, at `layer`.

    `neutral_states`: the neutral contexts' `last_token_states` at that layer, when already computed (a screen of
    many traits computes them once)."""
    if not prompts:
        raise TraitbenchError("steering: the vector needs at least one prompt")
    layer = resolve_layer(lm.model, layer)
    trait = last_token_states(lm, [render_prompt(lm, trait_system, p) for p in prompts], layer)
    if neutral_states is None:
        neutral_states = last_token_states(lm, [render_prompt(lm, neutral_system, p) for p in prompts], layer)
    return Steering(layer, (trait - neutral_states).mean(0), scale)
