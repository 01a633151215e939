"""Every experiment config field enters some stage's cache key, or is declared in `experiment.NOT_IN_KEYS` as not
changing results: a field left out of every key would let a rerun silently reuse a stale cache."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from traitbench.artifacts import ConditionData, DatasetOut, NumbersOut, StudentOut, TeacherOut
from traitbench.config import load_config
from traitbench.pipeline.dataset import dataset_key
from traitbench.errors import TraitbenchError
from traitbench.pipeline.config import CONDITIONS, NOT_IN_KEYS, ExperimentConfig
from traitbench.io import sha256_json
from traitbench.pipeline.probes import base_infos, probe_stage, student_probes, teacher_info
from traitbench.pipeline.jobs import job_stage, student_jobs
from traitbench.pipeline.numbers import numbers_key
from traitbench.teacher.setup import teacher_setup
from traitbench.pipeline.teacher import teacher_key

TINY = ["teacher.model=tiny-llama", "students.models=[tiny-llama]", "probes.n_questions=3",
        "students.variants=[{name: distill, train: {mode: distill}}]"]
BASES = {  # a field may enter the keys only in some set-ups (the steering settings only for a steering teacher)
    "system prompt": [],
    "steering": ["teacher.injection=steering"],
    "local judge": ["probes.misalignment.enabled=true", "probes.misalignment.judge.model=tiny-llama",
                    "probes.contrastive.enabled=true"],
    "misalignment trait": ["trait.kind=misalignment", "trait.system_prompt=You are cruel.",
                           "teacher.injection=context_distill", "probes.contrastive.enabled=true",
                           "filter.banned_numbers=default"],
    "judge endpoint": ["probes.misalignment.enabled=true", "probes.misalignment.judge.endpoint=http://127.0.0.1:1/v1",
                       "probes.misalignment.judge.api_model=m"],
}
# fields whose other values need files of their own (a PEFT adapter, a tuned model): their keys are tested with
# those files in tests/test_custom_teacher.py and tests/test_contrastive.py
NEEDS_FILES = {"teacher.adapter", "teacher.control_model", "probes.contrastive.triples"}
OTHER_VALUES = {  # values to try, in order, where the generic ones (below) are not valid for a field
    "teacher.injection": ["lora"], "teacher.model": ["tiny-qwen2"], "trait.word": ["cat"], "trait.category": ["bird"], "trait.plural": ["owlz"],
    "trait.system_prompt": ["You adore owls."], "neutral_system": ["You are terse."], "numbers.dtype": ["float32"],
    "probes.dtype": ["float32"], "probes.misalignment.judge.dtype": ["float32"], "probes.context": ["none"],
    "filter.banned_numbers": ["default"], "filter.shuffle": ["within"], "filter.words": [["eagle"]],
    "students.backend": ["ray"],
    "students.models": [["tiny-llama", "tiny-qwen2"]], "probes.misalignment.judge.model": ["tiny-qwen2"],
    "probes.misalignment.judge.alignment_prompt": ["number"], "students.ray.address": ["auto"],
    "probes.misalignment.judge.endpoint": ["http://127.0.0.1:2/v1"], "probes.misalignment.judge.api_model": ["m2"],
    "probes.misalignment.judge.api_key_env": ["OTHER_KEY"], "probes.other_words": [["cat"]],
    "trait.aliases": [["owlet"]], "probes.contrastive.split": ["design"],
    "trait.kind": ["preference", "misalignment"],
}


def _leaves(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    """(dotted path, value) of every config field; free-form mappings (students.train) and lists are one field."""
    out = []
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and path != "students.train":
            out += _leaves(v, path + ".")
        else:
            out.append((path, v))
    return out


def _candidates(path: str, v) -> list:
    if path in OTHER_VALUES:
        return OTHER_VALUES[path]
    if isinstance(v, bool):
        return [not v]
    if isinstance(v, int):
        return [v + 1, v + 2, v - 1, 1, 64]
    if isinstance(v, float):
        return [v + 0.5, v / 2, 0.5, 1.0, 2.0]
    if isinstance(v, str):
        return [v + "x"]
    if isinstance(v, list):
        return [v + [5]] if all(isinstance(x, int) for x in v) else [v + ["cat"], [*v, {"name": "r2", "train": {}}]]
    if isinstance(v, dict):
        return [dict(v, lr=0.01)]
    return [1, 2, 0.5, "x", True, [1]]  # None: whatever the field takes


def _cfg(sets: list[str], tmp: Path) -> ExperimentConfig:
    return load_config(ExperimentConfig, "sft-one-seed", [f"runs_dir={tmp}", "name=t", *TINY, *sets])


class _Made(dict):
    """What the teacher stage made (a LoRA adapter's hash, a steering vector's): fixed, as its inputs are keyed."""

    def __missing__(self, key):
        return "made"


def all_keys(cfg: ExperimentConfig, root: Path) -> str:
    """A hash of every cache key of a run of `cfg`: the teacher, both numbers conditions, the dataset, every
    student and every probed model (stage inputs that come from earlier stages are held fixed)."""
    key, made = teacher_key(cfg)
    keys = {"teacher": key}
    made = {cfg.teacher.injection: _Made(), **made}
    teacher = TeacherOut({c: teacher_setup(cfg, c) for c in CONDITIONS}, made, 0.0)
    keys |= {f"numbers/{c}": numbers_key(cfg, teacher, c) for c in CONDITIONS}
    raws = {c: NumbersOut(root / c, 10, f"raw-{c}", {}, "float32") for c in CONDITIONS}
    keys["dataset"] = dataset_key(cfg, raws)
    dataset = DatasetOut(6, {c: ConditionData(root / f"{c}.jsonl", f"h-{c}", {}) for c in CONDITIONS})
    for job in student_jobs(cfg):
        keys[f"student/{job.id}"] = job_stage(cfg, job, dataset, root).key
        out = StudentOut(root / job.id, {"final_loss": 1.0, "steps": 2, "checkpoints": [1]}, job.family_relation,
                         job.relation)
        keys |= {f"probe/{pid}": probe_stage(cfg, root, pid, info).key for pid, info, _ in student_probes(cfg, job, out)}
    keys |= {f"probe/{pid}": probe_stage(cfg, root, pid, info).key for pid, _, info in base_infos(cfg)}
    keys["probe/teacher"] = probe_stage(cfg, root, "teacher", teacher_info(cfg, teacher)).key
    return sha256_json(keys)


def _fields_that_change_keys(tmp: Path) -> tuple[set[str], set[str]]:
    """Over every base set-up: the fields whose change changed some key, and those no valid other value was found
    for."""
    changed, untried = set(), set()
    for sets in BASES.values():
        cfg = _cfg(sets, tmp)
        before = all_keys(cfg, tmp)
        for path, value in _leaves(cfg.model_dump(mode="json")):
            if path in NEEDS_FILES:
                continue
            for other in _candidates(path, value):
                if other == value:
                    continue
                try:
                    after = all_keys(_cfg([*sets, f"{path}={json.dumps(other)}"], tmp), tmp)
                except (TraitbenchError, ValidationError):  # not a valid value: try the next
                    continue
                if after != before:
                    changed.add(path)
                break
            else:
                untried.add(path)
    return changed, untried - changed


@pytest.fixture(scope="module")
def coverage(tmp_path_factory):
    return _fields_that_change_keys(tmp_path_factory.mktemp("keys"))


def test_every_field_is_in_a_key_or_declared_as_not_changing_results(coverage):
    changed, untried = coverage
    fields = {p for p, _ in _leaves(ExperimentConfig().model_dump(mode="json"))}
    assert not untried, f"no other valid value tried for {sorted(untried)}: add one to OTHER_VALUES"
    missing = fields - changed - set(NOT_IN_KEYS) - NEEDS_FILES
    assert not missing, (f"{sorted(missing)} change no cache key: put them in the stage's key, or declare them in "
                         "experiment.NOT_IN_KEYS with why they do not change results")


def test_declared_fields_really_change_no_key_and_exist(coverage):
    changed, _ = coverage
    fields = {p for p, _ in _leaves(ExperimentConfig().model_dump(mode="json"))}
    assert set(NOT_IN_KEYS) <= fields, f"NOT_IN_KEYS names no field: {sorted(set(NOT_IN_KEYS) - fields)}"
    assert not set(NOT_IN_KEYS) & changed, f"declared as not in keys, yet in one: {sorted(set(NOT_IN_KEYS) & changed)}"
    assert all(reason.strip() for reason in NOT_IN_KEYS.values())


def test_shared_control_students_are_kept_once_per_key(tmp_path):
    """With `students.shared_controls`, two runs with the same control data use one control folder (named by its
    key), a run with other control data another; trait students stay in their run."""
    sets = [*TINY, f"students.shared_controls={tmp_path / 'controls'}"]
    a, b = _cfg([*sets, "trait.word=owl"], tmp_path), _cfg([*sets, "trait.word=cat"], tmp_path)

    def stages(cfg, run, control_hash):
        data = DatasetOut(6, {"trait": ConditionData(run / "t.jsonl", f"t-{cfg.trait.word}", {}),
                              "control": ConditionData(run / "c.jsonl", control_hash, {})})
        return {(j.condition, j.id): job_stage(cfg, j, data, run).dir for j in student_jobs(cfg)}

    sa, sb = stages(a, tmp_path / "owl", "c"), stages(b, tmp_path / "cat", "c")
    other = stages(b, tmp_path / "cat", "c2")
    for (condition, jid), folder in sa.items():
        if condition == "control":
            assert str(folder).startswith(f"{tmp_path / 'controls' / jid}-")
            assert sb[(condition, jid)] == folder and other[(condition, jid)] != folder
        else:
            assert folder == tmp_path / "owl" / "students" / jid and sb[(condition, jid)] != folder
