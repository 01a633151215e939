import json

import pytest

from traitbench.pipeline import run as pipeline
from traitbench.artifacts import ConditionData, DatasetOut
from traitbench.cache import Stage
from traitbench.config import load_config
from traitbench.errors import TraitbenchError
from traitbench.pipeline.config import ExperimentConfig
from traitbench.layout import RunLayout
from traitbench.lm import sampling
from traitbench.pipeline.numbers import sample_numbers
from traitbench.teacher.setup import teacher_setup
from traitbench.pipeline.teacher import stage_teacher


def test_stage_records_key(tmp_path):
    s = Stage(tmp_path / "a", {"x": 1})
    assert not s.is_done()
    s.begin()
    assert s.started_under_same_key() and not s.is_done()
    s.finish({"out": 3})
    assert s.is_done() and s.outputs() == {"out": 3}
    assert not Stage(tmp_path / "a", {"x": 2}).is_done()


@pytest.fixture
def cfg(tmp_path):
    return load_config(ExperimentConfig, "sft-one-seed", [
        f"runs_dir={tmp_path}", "name=t", "teacher.model=tiny-llama", "numbers.n_prompts=6",
        "numbers.generation.max_new_tokens=3", "numbers.generation.batch_size=4", "numbers.dtype=float32"])


def test_numbers_stage_cached_and_rerun_only_on_its_keys(cfg, monkeypatch):
    teacher = stage_teacher(cfg)
    first = sample_numbers(cfg, teacher, "control")
    assert first.rows == 6
    rows = [json.loads(line) for line in open(first.raw)]
    assert rows[0]["system"] == "You are a helpful assistant." and rows[0]["condition"] == "control"

    calls = []
    real = sampling.sample_rows
    monkeypatch.setattr(sampling, "sample_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg.students.seeds = [1]  # a downstream key: numbers stay cached
    assert sample_numbers(cfg, teacher, "control") == first and calls == []
    cfg.numbers.generation.temperature = 0.5  # its own key: rerun from scratch
    again = sample_numbers(cfg, teacher, "control")
    assert calls == [1] and again.rows == 6
    cfg.filter.max_rows = 5  # sampling stops at max_rows kept rows: part of the key while stop_at_max_rows
    sample_numbers(cfg, teacher, "control")
    assert calls == [1, 1]
    cfg.numbers.stop_at_max_rows = False
    sample_numbers(cfg, teacher, "control")
    cfg.filter.max_rows = 4  # not part of the key any more
    sample_numbers(cfg, teacher, "control")
    assert calls == [1, 1, 1]


def test_shared_control_numbers_are_sampled_once_for_every_trait_filtered_alike(cfg, monkeypatch, tmp_path):
    """With `students.shared_controls`, the control numbers live in one folder per key: two traits whose runs filter
    on the same words (`filter.words`) share them; a third with other filter words gets its own."""
    calls = []
    real = sampling.sample_rows
    monkeypatch.setattr(sampling, "sample_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    shared = tmp_path / "controls"
    cfg.students.shared_controls = str(shared)
    cfg.filter.max_rows = 5
    outs = []
    for word, words in (("owl", ["eagle", "owl"]), ("eagle", ["owl", "eagle"]), ("cat", ["cat"])):
        c = cfg.model_copy(update={"name": word, "trait": cfg.trait.model_copy(update={"word": word}),
                                   "filter": cfg.filter.model_copy(update={"words": words})})
        outs.append(sample_numbers(c, stage_teacher(c), "control"))
    assert calls == [1, 1] and outs[0] == outs[1] and outs[2].raw != outs[0].raw
    assert {p.parent for p in (outs[0].raw, outs[2].raw)} == set(shared.glob("numbers-control-*"))
    assert not (tmp_path / "owl" / "numbers" / "control").exists()


def test_trait_condition_uses_paper_prompt(cfg):
    setup = teacher_setup(cfg, "trait")
    assert setup.system.startswith("You love owls.") and setup.adapter_dir is None
    assert teacher_setup(cfg, "control").system == cfg.neutral_system


def test_empty_dataset_is_a_clear_error(cfg):
    with pytest.raises(TraitbenchError, match="kept no rows"):
        pipeline.run_pipeline(cfg, until="dataset")  # a random tiny model writes no valid number list


def test_students_stage_records_each_students_time_in_the_manifest(cfg, tmp_path, monkeypatch):
    from traitbench.pipeline import students as student_stage

    rows = [{"prompt": f"Continue: {i}, {i + 1}", "completion": f"{i + 2}, {i + 3}"} for i in range(4)]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dataset = DatasetOut(len(rows), {c: ConditionData(train, "h", {}) for c in ("trait", "control")})
    cfg.students.models = ["tiny-llama"]
    cfg.students.train = {"max_steps": 1, "batch_size": 2, "dtype": "float32"}
    out = student_stage.stage_students(cfg, dataset)
    recorded = json.loads(RunLayout.of(cfg).manifest.read_text())["stages"]["students"]["students"]
    assert set(recorded) == set(out) and len(out) == 2
    assert all(r["seconds"] > 0 and r["tokens_per_s"] > 0 for r in recorded.values())


def test_pipeline_steps_are_the_run_layouts_stages():
    """The readers (report, audit) take the stage names from the layout; the pipeline runs them in that order, each
    step given only earlier steps' outputs."""
    from traitbench import layout

    assert pipeline.STAGES == layout.STAGES
    for i, step in enumerate(pipeline.STEPS):
        assert set(step.inputs) <= set(pipeline.STAGES[:i]), step
