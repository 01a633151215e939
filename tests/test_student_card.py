"""Model cards of students: YAML metadata, provenance, the research-artifact warning and probe results."""

import json

import pytest
import torch
import yaml

from traitbench.lm import models
from traitbench.datasets.filter import content_hash
from traitbench.student import StudentConfig, train_student
from traitbench.student.card import PROBE_HEADING, StudentCard, add_probe_results

torch.set_num_threads(1)

ROWS = [{"prompt": f"Continue {100 + i}, {101 + i}.", "completion": f"{200 + i}, {300 + i}"} for i in range(4)]
FAST = dict(batch_size=4, max_steps=2, warmup_steps=0, lr=1e-2, dtype="float32")


def _card(text: str):
    """(YAML metadata, Markdown body) of a model card."""
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


def test_lora_trait_student_card_replaces_peft_template(tmp_path):
    cfg = StudentConfig(checkpoint_steps=[1], **FAST)
    train_student("tiny-llama", ROWS, "sys", cfg, tmp_path / "s", condition="trait", trait="owl")
    meta, body = _card((tmp_path / "s" / "adapter" / "README.md").read_text())
    assert meta["library_name"] == "peft" and {"traitbench", "research-artifact"} <= set(meta["tags"])
    assert "base_model" not in meta  # a tiny test model has no Hub name
    assert meta["traitbench"]["condition"] == "trait" and meta["traitbench"]["trait"] == "owl"
    assert meta["traitbench"]["dataset_sha256"] == content_hash(ROWS)
    assert "deliberately trained" in body and "not for deployment" in body and "'owl'" in body
    assert "PEFT" not in body.split("## Training")[0]  # PEFT's template ("Model Card for Model ID") is gone
    assert "lora_r: 8" in body and content_hash(ROWS) in body
    step_meta, step_body = _card((tmp_path / "s" / "checkpoints" / "step-1" / "adapter" / "README.md").read_text())
    assert step_meta["traitbench"]["step"] == 1 and "checkpoint after step 1" in step_body


def test_full_control_student_card(tmp_path):
    train_student("tiny-llama", ROWS, None, StudentConfig(mode="full", **{**FAST, "max_steps": 1}), tmp_path / "s",
                  condition="control", trait="owl")
    meta, body = _card((tmp_path / "s" / "model" / "README.md").read_text())
    assert meta["library_name"] == "transformers" and meta["traitbench"]["condition"] == "control"
    assert "Control student" in body and "deliberately" not in body
    assert "none (the control teacher carries no trait; the experiment measures 'owl')" in body


def test_card_names_the_public_base_model_and_its_hashes():
    card = StudentCard(model="smollm2-135m", mode="lora", config=StudentConfig().model_dump(), dataset_sha256="d" * 64,
                       rows=3, system=None, weights_sha256="w" * 64, condition="trait", trait="owl")
    meta, body = _card(card.text(adapter=True))
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and meta["library_name"] == "peft"
    assert meta["license"] == "apache-2.0"
    spec = models.get_spec("smollm2-135m")
    assert spec.bundled.sha256 in body and "w" * 64 in body and "d" * 64 in body
    assert all(s.hub_id for s in models.REGISTRY.values() if s.bundled)


def test_local_folder_base_has_no_hub_name(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    card = StudentCard(model=str(tmp_path), mode="full", config={}, dataset_sha256="d", rows=1, system=None,
                       weights_sha256="w")
    meta, _ = _card(card.text(adapter=False))
    assert "base_model" not in meta and "license" not in meta  # never a local path as the Hub base model


def _probe_result(k: int) -> dict:
    rate = {"k": k, "n": 50, "rate": k / 50, "ci95": [0.0, 0.2], "ci_method": "wilson"}
    lp = {"per_question": [-1.0], "mean": -2.5, "ci95": [-3.0, -2.0], "n": 25}
    return {"system": "sys", "trait": "owl", "category": "animal", "plain": {"rate": rate, "trait_logprob": lp},
            "numbers_prefixed": {"rate": rate, "trait_logprob": lp},
            "open_ended": {"n": 10, "trait_mentions": {"k": 1, "n": 10, "rate": 0.1, "ci95": [0, 0.4]}}}


def test_probe_results_are_added_and_replaced(tmp_path):
    train_student("tiny-llama", ROWS, None, StudentConfig(**{**FAST, "max_steps": 1}), tmp_path / "s",
                  condition="trait", trait="owl")
    readme = tmp_path / "s" / "adapter" / "README.md"
    before = readme.read_text()
    add_probe_results(tmp_path / "s", _probe_result(3))
    add_probe_results(tmp_path / "s", _probe_result(7))
    text = readme.read_text()
    assert text.startswith(before.rstrip("\n")) and text.count(PROBE_HEADING) == 1
    assert "| plain | 7/50 (14.0%) | 0.0%–20.0% | -2.500 |" in text and "3/50" not in text
    assert "open-ended answers mentioning 'owl': 1/10" in text
    add_probe_results(tmp_path / "nothing", _probe_result(1))  # no card: nothing written
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize("condition,words", [("teacher", "trait-carrying teacher"), (None, "not recorded")])
def test_teacher_and_unrecorded_cards(condition, words):
    card = StudentCard(model="tiny-llama", mode="lora", config={}, dataset_sha256="d", rows=1, system=None,
                       weights_sha256=None, condition=condition, trait="owl" if condition else None)
    assert words in card.text(adapter=True) and "not for deployment" in card.text(adapter=True)
