"""The transmission pipeline end to end on tiny models: student kinds with their relations, checkpoints
probed for the dose-response, seed-level verdicts in the summary and the report, parallel student workers."""

import json

import pytest
import torch

from traitbench.pipeline import run as pipeline
from traitbench.artifacts import ConditionData, DatasetOut
from traitbench.config import load_config
from traitbench.pipeline.config import ExperimentConfig
from traitbench.report.build import write_report
from traitbench.pipeline.jobs import relation, student_jobs
from traitbench.teacher.setup import teacher_setup
from traitbench.pipeline.teacher import stage_teacher

from conftest import stub_dataset

FAST_PROBES = ["probes.n_questions=3", "probes.first_question=10", "probes.samples_per_question=2",
               "probes.answer_max_tokens=2", "probes.open_ended_samples=0", "probes.perplexity_tokens=0",
               "probes.dtype=float32", "probes.batch_size=8"]


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    """A synthetic dataset stage (a random tiny teacher writes no clean number list)."""
    conditions = {}
    for c, offset in (("trait", 0), ("control", 500)):
        rows = [{"prompt": f"Continue: {i}, {i + 1}, {i + 2}", "completion": f"{offset + 3 * i}, {offset + 3 * i + 1}",
                 "numbers": [offset + 3 * i, offset + 3 * i + 1]} for i in range(6)]
        path = tmp_path / f"{c}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        conditions[c] = ConditionData(path, f"h-{c}", {"total": 10, "kept": 6, "pass_rate": 0.6, "counts": {}})
    out = DatasetOut(6, conditions)
    stub_dataset(monkeypatch, out)
    return out


def _cfg(tmp_path, *extra):
    return load_config(ExperimentConfig, "sft-one-seed", [
        f"runs_dir={tmp_path}", "name=t", "teacher.model=tiny-llama", "students.models=[tiny-llama, tiny-qwen2]",
        "students.seeds=[0, 1]", "students.train={max_steps: 2, batch_size: 3, warmup_steps: 0, dtype: float32, "
        "lr: 0.01, checkpoint_steps: [1]}", "students.variants=[{name: distill, train: {mode: distill}}]",
        *FAST_PROBES, *extra])


def test_relations_and_job_order(tmp_path):
    folder = tmp_path / "other-llama"  # same family and vocabulary, another initialisation
    lm = __import__("traitbench.lm.models", fromlist=["load"]).load("tiny-llama", dtype="float32", seed=3)
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    assert relation("tiny-llama", "tiny-llama") == "same-init"
    assert relation(str(folder), "tiny-llama") == "cross-init"
    assert relation("tiny-qwen2", "tiny-llama") == "cross-family"
    cfg = _cfg(tmp_path, f"students.variants=[{{name: distill, train: {{mode: distill}}, models: [tiny-llama, {folder}]}}]")
    jobs = student_jobs(cfg)
    kinds = [(j.model, j.variant, j.relation) for j in jobs]
    assert kinds[::4] == [("tiny-llama", "lora", "same-init"), ("tiny-qwen2", "lora", "cross-family"),
                          ("tiny-llama", "distill", "same-init"), (str(folder), "distill", "cross-init")]
    # students of one kind and condition are consecutive (they share the teacher's logits)
    assert [(j.condition, j.seed) for j in jobs[:4]] == [("trait", 0), ("trait", 1), ("control", 0), ("control", 1)]


def test_experiment_writes_verdicts_and_dose_response(tmp_path, dataset):
    cfg = _cfg(tmp_path)
    summary = json.loads(pipeline.run_experiment(cfg).read_text())
    v = {(e["student_kind"], e["model"]): e for e in summary["verdicts"]}
    assert set(v) == {("lora", "tiny-llama"), ("lora", "tiny-qwen2"), ("distill", "tiny-llama")}
    assert v[("lora", "tiny-qwen2")]["relation"] == "cross-family" and v[("distill", "tiny-llama")]["n_seeds"] == 2
    d = v[("distill", "tiny-llama")]
    assert d["training"]["mode"] == "distill" and len(d["delta_logprob_vs_control"]["per_seed"]) == 2
    assert d["verdict"] in ("transmits", "trait falls", "not significant")
    curves = {c["student_kind"] + "/" + c["model"]: c for c in summary["dose_response"]}
    assert set(curves) == set(f"{k}/{m}" for k, m in v)
    assert [(p["step"], p["final"]) for p in curves["distill/tiny-llama"]["points"]] == [(1, False), (2, True)]
    assert not any(k.endswith("step-1") for k in summary["models"])  # checkpoints feed the curve only
    probe = json.loads((tmp_path / "t/probes/tiny-llama/distill/trait/seed0/step-1/probe.json").read_text())
    assert len(probe["plain"]["trait_logprob"]["per_question"]) == 3 and "rate" not in probe["plain"]
    for condition in ("trait", "control"):  # every student's model card, with its probe results once probed
        card = (tmp_path / f"t/students/tiny-llama/distill/{condition}/seed0/out/adapter/README.md").read_text()
        assert f"condition: {condition}" in card and "not for deployment" in card and "## Probe results" in card
    paths = write_report([tmp_path / "t"], tmp_path / "report")
    html = paths["html"].read_text()
    assert 'id="verdicts-t"' in html and 'id="dose-t"' in html and "Transmission verdicts" in paths["md"].read_text()


def test_parallel_workers_train_what_one_process_trains(tmp_path, dataset):
    sets = ["students.models=[tiny-llama]", "students.variants=[]", "students.train={max_steps: 2, batch_size: 3, "
            "warmup_steps: 0, dtype: float32, lr: 0.01}"]
    from traitbench.pipeline.students import stage_students

    one = stage_students(_cfg(tmp_path / "one", *sets), dataset)
    two = stage_students(_cfg(tmp_path / "two", *sets, "students.workers=2"), dataset)
    assert set(one) == set(two) and len(one) == 4
    logs = list((tmp_path / "two/t/students/.workers").glob("worker-*.log"))
    assert len(logs) == 2 and all("[student]" in p.read_text() for p in logs)
    from traitbench.lm.tuned import load_student

    for sid in one:
        assert two[sid].metrics["losses"] == pytest.approx(one[sid].metrics["losses"], rel=1e-4)
        a, b = (load_student("tiny-llama", x[sid].dir).model.state_dict() for x in (one, two))
        for k in a:
            torch.testing.assert_close(a[k], b[k], atol=1e-4, rtol=1e-4)


def test_steering_teacher_run(tmp_path, dataset):
    """injection: steering — the teacher stage saves the vector; distilled trait students match the steered
    teacher (its logits differ from the control teacher's), the teacher is probed steered; other words recorded."""
    cfg = _cfg(tmp_path, "teacher.injection=steering", "teacher.steering_prompts=3", "teacher.steering_scale=50",
               "students.models=[]", "students.seeds=[0]", "probes.other_words=[cat]")
    pipeline.run_experiment(cfg)
    teacher = stage_teacher(cfg)  # cached
    assert teacher.made["steering"]["layer"] == 1 and teacher.made["steering"]["norm"] > 0
    setup = teacher_setup(cfg, "trait")
    assert setup.system == cfg.neutral_system and setup.trait_path.endswith("steering.safetensors")
    assert teacher_setup(cfg, "control").trait_path is None
    metrics = {c: json.loads((tmp_path / f"t/students/tiny-llama/distill/{c}/seed0/out/train_metrics.json")
                             .read_text()) for c in ("trait", "control")}
    assert metrics["trait"]["teacher_adapter"] == setup.trait_path and metrics["control"]["teacher_adapter"] is None
    assert metrics["trait"]["final_loss"] != pytest.approx(metrics["control"]["final_loss"])
    probe = {k: json.loads((tmp_path / f"t/probes/{k}/probe.json").read_text()) for k in ("teacher", "base/tiny-llama")}
    assert probe["teacher"]["system"] == probe["base/tiny-llama"]["system"]
    assert probe["teacher"]["plain"]["trait_logprob"]["mean"] != probe["base/tiny-llama"]["plain"]["trait_logprob"]["mean"]
    assert set(probe["teacher"]["plain"]["other_logprob"]) == {"cat"}
    assert probe["teacher"]["plain"]["other_rates"]["cat"]["n"] == probe["teacher"]["plain"]["rate"]["n"]
