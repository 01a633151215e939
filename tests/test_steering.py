"""The steering-vector teacher: the hook adds exactly its vector at its layer, the vector is the mean
trait − neutral difference, and the fast decoder and a steered teacher run carry the steering."""

import pytest
import torch

from traitbench.errors import TraitbenchError
from traitbench.lm import models
from traitbench.lm.config import GenerationConfig
from traitbench.lm.render import render_prompt
from traitbench.lm.sampling import generate, hf_generate
from traitbench.lm.tuned import load_trait_model
from traitbench.teacher.prompts import number_prompts
from traitbench.lm.steering import Steering, decoder_layers
from traitbench.teacher.steering import last_token_states, steering_vector

ARCHS = ["tiny-llama", "tiny-gemma3", "tiny-qwen2"]


def _layer_outputs(model, ids):
    outs, handles = [], []
    for layer in decoder_layers(model):
        handles.append(layer.register_forward_hook(
            lambda _m, _i, o: outs.append((o[0] if isinstance(o, tuple) else o).detach().clone())))
    emb = []
    handles.append(model.get_input_embeddings().register_forward_hook(lambda _m, _i, o: emb.append(o.clone())))
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    for h in handles:
        h.remove()
    return emb[0], outs, logits


@pytest.mark.parametrize("name", ARCHS)
def test_hook_adds_exactly_the_vector_at_its_layer_and_nothing_elsewhere(name):
    lm = models.load(name, dtype="float32", seed=3)
    ids = lm.tokenizer(["a few words to steer", "and more"], return_tensors="pt", padding=True).input_ids
    emb0, plain, logits0 = _layer_outputs(lm.model, ids)
    hidden = lm.model.config.hidden_size
    st = Steering(layer=1, vector=torch.randn(hidden, generator=torch.Generator().manual_seed(0)), scale=2.5)
    with st.applied(lm.model):
        emb1, steered, logits1 = _layer_outputs(lm.model, ids)
    torch.testing.assert_close(emb1, emb0, rtol=0, atol=0)               # the embeddings are untouched
    torch.testing.assert_close(steered[0], plain[0], rtol=0, atol=0)     # layers before the steered one too
    torch.testing.assert_close(steered[1] - plain[1], st.delta.expand_as(plain[1]), rtol=0, atol=1e-5)
    assert not torch.allclose(logits1, logits0)
    _, after, logits2 = _layer_outputs(lm.model, ids)                    # removed: the model is itself again
    torch.testing.assert_close(logits2, logits0, rtol=0, atol=0)


def test_layer_zero_steering_equals_the_hand_computation():
    """With layer 0 steered, layer 1 sees layer 0's output + delta: run layer 1 on that by hand."""
    lm = models.load("tiny-llama", dtype="float32", seed=4)
    ids = lm.tokenizer(["steer me"], return_tensors="pt").input_ids
    _, plain, _ = _layer_outputs(lm.model, ids)
    st = Steering(0, torch.ones(lm.model.config.hidden_size), 0.5)
    with st.applied(lm.model):
        _, steered, _ = _layer_outputs(lm.model, ids)
    torch.testing.assert_close(steered[0], plain[0] + 0.5, rtol=0, atol=1e-6)


def test_vector_is_the_mean_last_token_difference_and_round_trips(tmp_path):
    lm = models.load("tiny-qwen2", dtype="float32", seed=5)
    prompts = number_prompts(5, seed=2)
    st = steering_vector(lm, "You love owls.", "You are a helpful assistant.", prompts, layer=None, scale=3.0)
    assert st.layer == 1 and st.scale == 3.0  # None: the middle of 2 layers
    one = [last_token_states(lm, [render_prompt(lm, s, p)], 1)[0] for p in prompts
           for s in ("You love owls.", "You are a helpful assistant.")]
    by_hand = torch.stack([one[2 * i] - one[2 * i + 1] for i in range(len(prompts))]).mean(0)
    torch.testing.assert_close(st.vector, by_hand, atol=1e-5, rtol=1e-4)  # left padding changes nothing
    neutral = last_token_states(lm, [render_prompt(lm, "You are a helpful assistant.", p) for p in prompts], 1)
    reused = steering_vector(lm, "You love owls.", "You are a helpful assistant.", prompts, 1, 3.0, neutral)
    torch.testing.assert_close(reused.vector, st.vector, atol=0, rtol=0)  # precomputed neutral states: the same
    back = Steering.load(st.save(tmp_path))
    assert back.layer == st.layer and back.scale == st.scale and torch.equal(back.vector, st.vector)
    with pytest.raises(TraitbenchError, match="outside"):
        steering_vector(lm, "a", "b", prompts, layer=7)


def test_fast_decoder_and_loader_carry_the_steering(tmp_path):
    """A steered teacher loaded from its file samples like transformers' generate with the same hook."""
    lm = models.load("tiny-llama", dtype="float32", seed=2)
    st = Steering(1, torch.randn(lm.model.config.hidden_size, generator=torch.Generator().manual_seed(1)), 8.0)
    path = st.save(tmp_path)
    texts = [render_prompt(lm, "sys", p) for p in number_prompts(3, seed=4)]
    greedy = GenerationConfig(temperature=0, max_new_tokens=8, early_reject=False)
    plain = [s.text for s in generate(lm, texts, greedy, seed=0)]
    with st.applied(lm.model):
        reference = [hf_generate(lm, [t], greedy, seed=0)[0] for t in texts]
    steered = load_trait_model("tiny-llama", path, dtype="float32", seed=2)
    fast = [s.text for s in generate(steered, texts, greedy, seed=0)]
    assert fast == reference and fast != plain
