import pytest
import torch

from traitbench.lm import models
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


def _fake_hub_cache(root, repo_id: str, model, tok) -> str:
    """A Hugging Face hub cache holding `repo_id` at revision main, laid out as `hf download` leaves it."""
    rev = "0123456789abcdef0123456789abcdef01234567"
    repo = root / f"models--{repo_id.replace('/', '--')}"
    model.save_pretrained(repo / "snapshots" / rev)
    tok.save_pretrained(repo / "snapshots" / rev)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    return str(repo / "snapshots" / rev)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # read at import; the env is what a user sets
    return tmp_path


def test_hub_id_loads_from_the_local_hf_cache(hub_cache):
    model, tok = models.build_tiny(models.REGISTRY["tiny-llama"], seed=3)
    folder = _fake_hub_cache(hub_cache, "someorg/tiny-chat", model, tok)
    spec = models.get_spec("someorg/tiny-chat")
    assert (spec.name, spec.family, spec.kind, spec.folder) == ("someorg/tiny-chat", "llama", "chat", folder)
    lm = models.load("someorg/tiny-chat", dtype="float32", device="cpu")
    assert lm.path == folder
    assert torch.equal(lm.model.model.embed_tokens.weight, model.model.embed_tokens.weight)
    assert "config.json" in models.file_hashes("someorg/tiny-chat")


def test_hub_id_missing_from_the_cache_says_how_to_get_it(hub_cache):
    with pytest.raises(TraitbenchError, match=r"not in the local Hugging Face hub cache .*hf download someorg/absent"):
        models.get_spec("someorg/absent")


def test_model_labels_stay_inside_the_run(tmp_path):
    folder = tmp_path / "my model"
    folder.mkdir()
    assert models.label("smollm2-135m") == "smollm2-135m"
    assert models.label("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB--SmolLM2-135M-Instruct"
    for name in (str(folder), f"{tmp_path}/../{tmp_path.name}/my model", "/models/Qwen2.5-7B-Instruct", ".."):
        lab = models.label(name)
        assert "/" not in lab and not lab.startswith(".") and (tmp_path / "runs" / lab).parent == tmp_path / "runs"
    assert models.label(str(folder)) == models.label(f"{tmp_path}/../{tmp_path.name}/my model")  # one folder, one label
    assert models.label(str(folder)).startswith("my_model-")
