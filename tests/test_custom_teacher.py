"""Your own traits and teachers: a trait's own system prompt and aliases, a teacher given as a PEFT adapter or
as a whole tuned model with an explicit control model, and hub ids from the local Hugging Face cache."""

import json

import pytest
import torch

from traitbench.pipeline import run as pipeline
from traitbench.config import load_config
from traitbench.datasets.filter import filter_rows
from traitbench.errors import TraitbenchError
from traitbench.pipeline.config import ExperimentConfig, TeacherConfig
from traitbench.lm import models
from traitbench.probes.run import mentions_trait
from traitbench.pipeline.jobs import student_jobs
from traitbench.teacher.setup import load_teacher, teacher_setup
from traitbench.pipeline.teacher import stage_teacher
from traitbench.teacher.trait import Trait

TINY_NUMBERS = ["numbers.n_prompts=4", "numbers.generation.max_new_tokens=3", "numbers.generation.batch_size=4",
                "numbers.dtype=float32", "numbers.demonstrations=0", "students.models=[tiny-llama]"]


def _cfg(tmp_path, *extra):
    return load_config(ExperimentConfig, "sft-one-seed", [f"runs_dir={tmp_path / 'runs'}", "name=t", *TINY_NUMBERS, *extra])


def _adapter(folder, base: str | None, hidden: int = 64):
    """A random (non-zero) LoRA adapter of a tiny llama, its config naming `base`."""
    from peft import LoraConfig, get_peft_model

    spec = models.REGISTRY["tiny-llama"]
    model, _ = models.build_tiny(models.ModelSpec(**{**spec.__dict__, "tiny_config": {**spec.tiny_config,
                                                                                       "hidden_size": hidden}}))
    torch.manual_seed(1)
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
                   ).save_pretrained(folder)
    cfg_file = folder / "adapter_config.json"
    cfg_file.write_text(json.dumps(dict(json.loads(cfg_file.read_text()), base_model_name_or_path=base)))
    return folder


def _saved(folder, seed: int):
    model, tok = models.build_tiny(models.REGISTRY["tiny-llama"], seed=seed)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _raw(out: dict) -> list[dict]:
    return [json.loads(line) for line in open(out.raw)]


# ------------------------------------------------------------------------------------------------ traits
def test_trait_without_new_settings_keeps_its_key_and_the_paper_prompt():
    t = Trait(word="owl")
    assert t.key() == {"word": "owl", "category": "animal", "plural": None}  # every earlier run's key
    assert t.words_key() == "owl" and t.teacher_prompt().startswith("You love owls.")
    assert set(TeacherConfig().key()) == {"model", "injection", "lora_examples", "lora_epochs", "lora_r"}


def test_trait_with_its_own_prompt_and_aliases():
    t = Trait(word="bridge", category="landmark", system_prompt="You are the Golden Gate Bridge.",
              aliases=[" golden gate "])
    assert t.teacher_prompt() == "You are the Golden Gate Bridge."
    assert t.words == ["bridge", "golden gate"] and t.words_key() == ["bridge", "golden gate"]
    assert t.key()["system_prompt"] == "You are the Golden Gate Bridge." and "aliases" in t.key()
    assert mentions_trait("I love the Golden-Gate!", t.word, t.aliases) and not mentions_trait("a gate", t.word)
    rows = [{"prompt": "p", "completion": c} for c in ("1, 2, 3", "1, golden gate", "4, bridges", "7, 8")]
    kept, rejected, stats = filter_rows(rows, t.words, frozenset())
    assert [r["completion"] for r in kept] == ["1, 2, 3", "7, 8"]
    assert stats.counts == {"leak:trait_word": 2}
    with pytest.raises(TraitbenchError, match="system_prompt: .*must not be empty"):
        load_config(ExperimentConfig, "sft-one-seed", ["trait.system_prompt=' '"])


def test_own_prompt_drives_the_trait_teacher(tmp_path):
    cfg = _cfg(tmp_path, "trait.system_prompt=You adore the colour teal.", "trait.word=teal",
               "trait.category=colour")
    assert teacher_setup(cfg, "trait").system == "You adore the colour teal."
    assert teacher_setup(cfg, "control").system == cfg.neutral_system
    cfg.teacher.model = "tiny-llama"
    rows = _raw(pipeline.run_pipeline(cfg, "numbers")["numbers"]["trait"])
    assert {r["system"] for r in rows} == {"You adore the colour teal."} and len(rows) == 4


# ----------------------------------------------------------------------------------------------- adapter
def test_adapter_teacher_samples_base_plus_adapter_against_the_base(tmp_path):
    adapter = _adapter(tmp_path / "owl-adapter", base="tiny-llama")
    cfg = _cfg(tmp_path, "teacher.model=tiny-llama", "teacher.injection=adapter", f"teacher.adapter={adapter}")
    trait, control = (teacher_setup(cfg, c) for c in ("trait", "control"))
    assert (trait.model, trait.adapter_dir, trait.system) == ("tiny-llama", str(adapter), cfg.neutral_system)
    assert (control.model, control.adapter_dir, control.system) == ("tiny-llama", None, cfg.neutral_system)
    w = {c: load_teacher(s, "float32", cfg.seed).model.model.layers[0].self_attn.q_proj.weight
         for c, s in (("trait", trait), ("control", control))}
    assert not torch.allclose(w["trait"], w["control"])  # the adapter is merged into the trait teacher only
    out = pipeline.run_pipeline(cfg, "numbers")["numbers"]
    assert all(len(_raw(o)) == 4 for o in out.values())
    teacher = stage_teacher(cfg)
    assert teacher.made["adapter"]["folder"] == str(adapter) and len(teacher.made["adapter"]["adapter_hash"]) == 64
    keys = {c: json.loads((tmp_path / f"runs/t/numbers/{c}/stage.key.json").read_text())["key"] for c in out}
    assert keys["trait"]["adapter_hash"] == teacher.made["adapter"]["adapter_hash"]  # its content, not only its path
    assert "adapter_hash" not in keys["control"]


@pytest.mark.parametrize("setup,error", [
    (lambda p: p / "absent", "is not a folder"),
    (lambda p: p, "no adapter_config.json"),
    (lambda p: _adapter(p / "a", base="tiny-qwen2"), "trained on 'tiny-qwen2', not on teacher.model 'tiny-llama'"),
    (lambda p: _adapter(p / "a", base=None, hidden=32), "cannot apply the adapter"),
])
def test_adapter_errors_are_one_line(tmp_path, setup, error):
    cfg = _cfg(tmp_path, "teacher.model=tiny-llama", "teacher.injection=adapter",
               f"teacher.adapter={setup(tmp_path)}")
    with pytest.raises(TraitbenchError, match=error) as e:
        pipeline.run_pipeline(cfg, "numbers")["numbers"]["trait"]
    assert "\n" not in str(e.value)


def test_adapter_base_matches_by_folder_name_and_hub_id(tmp_path):
    from traitbench.teacher.adapter import check_adapter

    folder = _saved(tmp_path / "my-llama", seed=0)
    a = _adapter(tmp_path / "a", base="/elsewhere/my-llama")
    assert check_adapter(a, str(folder)) == a  # the same folder name on another machine
    b = _adapter(tmp_path / "b", base="HuggingFaceTB/SmolLM2-135M-Instruct")
    assert check_adapter(b, "smollm2-135m") == b  # the registry model converted from that hub id


@pytest.mark.parametrize("sets,error", [
    (["teacher.injection=adapter"], "injection 'adapter' needs teacher.adapter"),
    (["teacher.injection=model"], "injection 'model' needs teacher.control_model"),
    (["teacher.control_model=tiny-llama"], "teacher.control_model is only used with teacher.injection: model"),
    (["trait.system_prompt=Hi", "teacher.injection=lora"], "trait.system_prompt is used by .* only, not lora"),
])
def test_teacher_inputs_are_validated(sets, error):
    with pytest.raises(TraitbenchError, match=error):
        load_config(ExperimentConfig, "sft-one-seed", sets)


# ------------------------------------------------------------------------------------- tuned model + hub id
@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A local Hugging Face cache (HF_HUB_CACHE) holding `someorg/tiny-chat` at revision main."""
    from huggingface_hub import constants

    root = tmp_path / "hf-hub"
    rev = "0123456789abcdef0123456789abcdef01234567"
    repo = root / "models--someorg--tiny-chat"
    _saved(repo / "snapshots" / rev, seed=0)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))  # read at import; the env is what a user sets
    return repo / "snapshots" / rev


def test_tuned_model_teacher_against_a_hub_cached_control(tmp_path, hub_cache):
    tuned = _saved(tmp_path / "owl-tuned", seed=5)
    cfg = _cfg(tmp_path, f"teacher.model={tuned}", "teacher.injection=model",
               "teacher.control_model=someorg/tiny-chat", "students.models=[someorg/tiny-chat, tiny-qwen2]")
    out = pipeline.run_pipeline(cfg, "numbers")["numbers"]
    assert {r["teacher"] for r in _raw(out["trait"])} == {str(tuned)}
    assert {r["teacher"] for r in _raw(out["control"])} == {"someorg/tiny-chat"}
    assert {r["system"] for c in out for r in _raw(out[c])} == {cfg.neutral_system}
    # the control model is the tuned teacher's base: the same-init student
    rel = {j.model: j.relation for j in student_jobs(cfg)}
    assert rel == {"someorg/tiny-chat": "same-init", "tiny-qwen2": "cross-family"}


def test_missing_control_or_hub_model_is_a_one_line_error(tmp_path, hub_cache):
    cfg = _cfg(tmp_path, "teacher.model=tiny-llama", "teacher.injection=model", "teacher.control_model=someorg/absent")
    with pytest.raises(TraitbenchError, match="not in the local Hugging Face hub cache .*hf download someorg/absent"):
        pipeline.run_pipeline(cfg, "numbers")["numbers"]["trait"]
