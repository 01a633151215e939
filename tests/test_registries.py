"""Trait injections and student kinds register in one place: a new one is a function plus one registry line,
and the config, the stages and their cache keys pick it up."""

import json

import pytest
from conftest import stub_dataset
from traitbench.pipeline import run as pipeline
from traitbench.artifacts import ConditionData, DatasetOut, TeacherSetup
from traitbench.config import load_config
from traitbench.errors import TraitbenchError
from traitbench.pipeline.config import ExperimentConfig
from traitbench.student.kinds import KINDS, StudentKind
from traitbench.teacher.injections import INJECTIONS, Injection

TRAINED: list[dict] = []


def toy_trainer(model, rows, system, cfg, out_dir, condition=None, trait=None, **teacher) -> dict:
    """A student kind that only counts its rows (what a new kind's trainer returns: its metrics)."""
    TRAINED.append({"model": model, "rows": len(rows), "condition": condition, "teacher": teacher})
    return {"rows": len(rows), "mode": cfg.mode}


def _cfg(tmp_path, *sets):
    return load_config(ExperimentConfig, "sft-one-seed", [f"runs_dir={tmp_path}", "name=t", "teacher.model=tiny-llama",
                                                "numbers.n_prompts=4", "numbers.generation.max_new_tokens=3",
                                                "numbers.dtype=float32", *sets])


def test_unknown_names_are_config_errors(tmp_path):
    with pytest.raises(TraitbenchError, match="unknown injection 'nope'; injections: system_prompt"):
        _cfg(tmp_path, "teacher.injection=nope")
    with pytest.raises(TraitbenchError, match="unknown student kind 'dpo'; kinds: lora, full, distill"):
        pipeline.student_jobs(_cfg(tmp_path, "students.train={mode: dpo}"))


def test_a_new_injection_is_one_registry_line(tmp_path, monkeypatch):
    """A toy injection (the trait whispered as the system prompt's only words) samples the trait condition."""
    monkeypatch.setitem(INJECTIONS, "whisper", Injection(
        setup=lambda cfg: TeacherSetup(cfg.teacher.model, None, f"psst: {cfg.trait.word}s")))
    cfg = _cfg(tmp_path, "teacher.injection=whisper")
    out = pipeline.run_pipeline(cfg, "numbers")
    assert out["teacher"].conditions["trait"].system == "psst: owls"
    rows = [json.loads(line) for line in out["numbers"]["trait"].raw.read_text().splitlines()]
    assert len(rows) == 4 and {r["system"] for r in rows} == {"psst: owls"}
    control = [json.loads(line) for line in out["numbers"]["control"].raw.read_text().splitlines()]
    assert {r["system"] for r in control} == {cfg.neutral_system}


def test_a_new_student_kind_is_one_registry_line(tmp_path, monkeypatch):
    monkeypatch.setitem(KINDS, "toy", StudentKind("test_registries:toy_trainer"))
    rows = [{"prompt": f"Continue: {i}", "completion": f"{i}, {i + 1}", "numbers": [i, i + 1]} for i in range(3)]
    conditions = {}
    for c in ("trait", "control"):
        path = tmp_path / f"{c}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        conditions[c] = ConditionData(path, f"h-{c}", {})
    stub_dataset(monkeypatch, DatasetOut(3, conditions))
    TRAINED.clear()
    cfg = _cfg(tmp_path, "students.models=[tiny-llama]", "students.seeds=[0]", "students.train={mode: toy}")
    students = pipeline.run_pipeline(cfg, "students")["students"]
    assert sorted(students) == ["tiny-llama/lora/control/seed0", "tiny-llama/lora/trait/seed0"]
    assert {s.metrics["mode"] for s in students.values()} == {"toy"} and len(TRAINED) == 2
    assert all(t["rows"] == 3 and t["teacher"] == {} for t in TRAINED)
    pipeline.run_pipeline(cfg, "students")  # cached: not trained again
    assert len(TRAINED) == 2
