"""`traitbench shared-init` on tiny models: starts made once, distilled students of each, the effect against the
distance with its seed-level trend test, and the other trait's students beside it."""

import json

import pytest

from conftest import stub_steps, trait_datasets
from traitbench.artifacts import ConditionData, DatasetOut
from traitbench.config import load_config
from traitbench.errors import TraitbenchError
from traitbench.experiments import shared_init
from traitbench.experiments.registry import EXPERIMENTS
from traitbench.lm import models

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune. " * 40
TINY = ["pretrain={batch_size: 2, block_tokens: 16, warmup_steps: 1, lr: 0.01, heldout_tokens: 32}",
        "student={mode: distill, lora_r: 4, lora_alpha: 4, max_steps: 2, batch_size: 2, warmup_steps: 0, "
        "dtype: float32, lr: 0.05}", "experiment.teacher.model=tiny-llama", "experiment.students.workers=1",
        "experiment.probes={n_questions: 2, samples_per_question: 1, answer_max_tokens: 2, numbers_prefixed: false, "
        "open_ended_samples: 0, perplexity_tokens: 0, dtype: float32}"]  # tiny starts, students and probes


def test_shared_init_on_tiny_models(tmp_path, monkeypatch, capsys):
    trait_datasets(monkeypatch, tmp_path)
    monkeypatch.setattr(shared_init, "_corpus", lambda: (TEXT, TEXT[:400], "corpus-sha"))
    monkeypatch.setattr(models, "cache_dir", lambda: tmp_path / "cache")
    sets = [f"runs_dir={tmp_path}", "steps=[0, 3]", "other_trait={word: cat}", "data_draws=one",
            "experiment.students.seeds=[0, 1, 2]", *TINY]
    exp = EXPERIMENTS["shared-init"]
    result = exp.run(load_config(exp.config, None, sets))
    r = json.loads((tmp_path / "shared-init" / "shared_init.json").read_text())
    assert [s["steps"] for s in r["starts"]] == [0, 3] and r["starts"][0]["model"] == "tiny-llama"
    assert r["starts"][0]["distance"] == 0 and r["starts"][1]["distance"] > 0
    assert all(len(s["effect"]["per_seed"]) == 3 and len(s["generic"]["per_seed"]) == 3 for s in r["starts"])
    for s in r["starts"]:  # the specific part is the own effect less the other trait's students' lift, per seed
        assert [round(a - b, 9) for a, b in zip(s["effect"]["per_seed"], s["generic"]["per_seed"])] == \
            [round(x, 9) for x in s["specific"]["per_seed"]]
    assert len(r["trend"]["per_seed"]) == 3 and r["trend"]["p_value"] == r["trend"]["p_value"]  # a number
    assert "specific_trend" in r and (tmp_path / "shared-init" / "shared_init.png").stat().st_size > 0
    assert "Trend of the effect on the distance" in result.text
    starts = list((tmp_path / "cache" / "starts").iterdir())
    assert len(starts) == 2
    exp.run(load_config(exp.config, None, sets))  # again: the starts and the runs are read back
    assert "[start tiny-llama k=3] cached" in capsys.readouterr().out


def test_shared_init_with_a_draw_per_seed(tmp_path, monkeypatch):
    """data_draws: per_seed: every seed's students train on the data of a run seeded with `experiment.seed` + their
    seed (the numbers stage samples and subsamples with it), and the effects pair each seed's trait and control
    students across the draws."""
    drawn = []

    def dataset(cfg, teacher, numbers):  # a random tiny teacher writes no clean list: rows that name their run seed
        drawn.append(cfg.seed)
        conditions = {}
        for c, offset in (("trait", 0), ("control", 500)):
            rows = [{"prompt": f"Continue: {i}, {i + 1}", "completion": f"{offset + cfg.seed + 3 * i}, {7 * i}",
                     "numbers": [offset + cfg.seed + 3 * i, 7 * i]} for i in range(4)]
            path = tmp_path / f"{cfg.trait.word}-{c}-{cfg.seed}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            conditions[c] = ConditionData(path, f"{cfg.trait.word}-{c}-{cfg.seed}",
                                          {"total": 4, "kept": 4, "pass_rate": 1.0, "counts": {}})
        return DatasetOut(4, conditions)

    stub_steps(monkeypatch, numbers=lambda cfg, teacher: {}, dataset=dataset)
    monkeypatch.setattr(shared_init, "_corpus", lambda: (TEXT, TEXT[:400], "corpus-sha"))
    monkeypatch.setattr(models, "cache_dir", lambda: tmp_path / "cache")
    sets = [f"runs_dir={tmp_path}", "steps=[0, 2]", "other_trait=null", "data_draws=per_seed",
            "experiment.students.seeds=[0, 1]", "experiment.seed=3", *TINY]
    exp = EXPERIMENTS["shared-init"]
    result = exp.run(load_config(exp.config, None, sets))
    run = tmp_path / "shared-init"
    r = json.loads((run / "shared_init.json").read_text())
    assert r["data_draws"] == "per_seed" and "each seed on its own draw" in result.text
    assert sorted(drawn) == [3, 4]  # one dataset per seed, seeded with experiment.seed + the student seed
    for s in (0, 1):  # each draw: its manifest, and its students (trait and control, both starts) of that seed only
        draw = run / "owl" / "draws" / f"seed{s}"
        manifest = json.loads((draw / "manifest.json").read_text())
        assert manifest["config"]["seed"] == 3 + s and manifest["config"]["students"]["seeds"] == [s]
        keys = [json.loads(p.read_text()) for p in [*(draw / "students").rglob("stage.key.json"),
                                                    *(run / "controls").rglob(f"seed{s}-*/stage.key.json")]]
        assert len(keys) == 4 and {k["key"]["dataset"] for k in keys} == {f"owl-trait-{3 + s}", f"owl-control-{3 + s}"}
    assert all(len(s["effect"]["per_seed"]) == 2 and s["effect"]["p_holm"] is not None for s in r["starts"])


def test_a_draw_per_seed_needs_a_teacher_the_run_does_not_make():
    exp = EXPERIMENTS["shared-init"]
    with pytest.raises(TraitbenchError, match="per_seed needs a teacher the run does not train or fit"):
        load_config(exp.config, None, ["data_draws=per_seed", "experiment.teacher.injection=lora"])


def test_both_teachers_runs_filter_alike(tmp_path):
    """The trait's and the other trait's runs filter on both words, so their control numbers share one key (sampled
    once, in the shared controls folder)."""
    exp = EXPERIMENTS["shared-init"]
    cfg = load_config(exp.config, None, [])
    own, other = (shared_init.run_config(cfg, tmp_path, t, ["smollm2-135m"])
                  for t in (cfg.experiment.trait, cfg.other_trait))
    assert own.filter == other.filter and own.filter_words_key() == other.filter_words_key()
    assert {"owl", "eagle"} <= set(own.filter_words())
    assert own.students.shared_controls == other.students.shared_controls == str(tmp_path / "controls")
