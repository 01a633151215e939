"""A trait as a steering vector (Blank et al. 2026): a direction added to the residual stream at one layer.

The vector is the mean difference of the residual stream after decoder layer `layer`, at a prompt's last
token, between the trait context (the trait system prompt) and the neutral one, over a set of prompts. The
steered teacher then runs in the neutral context with `scale` × that vector added to layer `layer`'s output
at every position: the trait without a word of it in the context.
"""

from __future__ import annotations

import torch

from traitbench.errors import TraitbenchError
from traitbench.lm.models import LoadedModel
from traitbench.lm.render import add_special_tokens, render_prompt
from traitbench.lm.steering import Steering, decoder_layers, resolve_layer


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
