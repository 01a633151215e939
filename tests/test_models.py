import pytest
import torch

from traitbench import models
from traitbench.errors import TraitbenchError


def test_registry_has_three_real_families_and_tiny_models():
    real = {n: s for n, s in models.REGISTRY.items() if s.bundled}
    assert {s.family for s in real.values()} == {"llama", "gemma3", "qwen2"}
    assert {real[n].family for n in models.default_fetch_names()} == {"llama", "gemma3", "qwen2"}  # make models
    assert models.REGISTRY["gemma3-270m"].kind == "base" and models.REGISTRY["smollm2-135m"].kind == "chat"
    assert all(len(s.bundled.sha256) == 64 for s in real.values())
    assert {models.REGISTRY[f"tiny-{f}"].family for f in ("llama", "gemma3", "qwen2")} == {"llama", "gemma3", "qwen2"}


@pytest.mark.parametrize("family,cls", [("llama", "LlamaForCausalLM"), ("gemma3", "Gemma3ForCausalLM"),
                                        ("qwen2", "Qwen2ForCausalLM")])
def test_tiny_models_are_seeded_and_of_the_right_architecture(family, cls):
    a = models.load(f"tiny-{family}", dtype="float32", seed=7)
    b = models.load(f"tiny-{family}", dtype="float32", seed=7)
    c = models.load(f"tiny-{family}", dtype="float32", seed=8)
    assert type(a.model).__name__ == cls
    pa, pb, pc = (torch.cat([p.flatten() for p in m.model.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert a.tokenizer.chat_template and a.tokenizer.pad_token_id is not None
    assert models.file_hashes(f"tiny-{family}") == {}


def test_unknown_names_give_clear_errors(tmp_path):
    with pytest.raises(TraitbenchError, match="unknown model"):
        models.get_spec("no-such-model")
    with pytest.raises(TraitbenchError, match="hub"):
        models.get_spec("Qwen/Qwen2.5-7B-Instruct")
    with pytest.raises(TraitbenchError, match="config.json"):
        models.get_spec(str(tmp_path))


def test_uninstalled_real_model_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAITBENCH_CACHE", str(tmp_path))
    with pytest.raises(TraitbenchError, match="make models"):
        models.load("qwen2.5-0.5b")


def test_dtype_resolution():
    assert models.resolve_dtype("float32") == torch.float32
    assert models.resolve_dtype("bf16") == torch.bfloat16
    assert models.resolve_dtype("auto") in (torch.float32, torch.bfloat16)
