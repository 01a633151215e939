"""`traitbench distill-conditions` on tiny models: distilled kinds side by side (LoRA ranks, every weight, another
training context), the other trait's students beside them, the rank curvature over seeds, and chosen kinds probed
under further contexts."""

import json

import numpy as np
import pytest

from conftest import trait_datasets
from traitbench.config import load_config
from traitbench.experiments import distill_conditions as dc
from traitbench.experiments.registry import EXPERIMENTS

OTHER = "You are terse."


def test_distill_conditions_on_tiny_models(tmp_path, monkeypatch, capsys):
    trait_datasets(monkeypatch, tmp_path)
    train = "max_steps: 2, batch_size: 2, warmup_steps: 0, dtype: float32"
    sets = [f"runs_dir={tmp_path}", "other_trait={word: cat}",
            "kinds=[{name: r1, train: {mode: distill, lora_r: 1, lora_alpha: 1, lr: 0.05}}, "
            "{name: r2, train: {mode: distill, lora_r: 2, lora_alpha: 2, lr: 0.05}}, "
            "{name: r4, train: {mode: distill, lora_r: 4, lora_alpha: 4, lr: 0.05}}, "
            "{name: full, train: {mode: distill, distill_params: full, lr: 0.01}}, "
            f"{{name: r4-terse, train: {{mode: distill, lora_r: 4, lora_alpha: 4, lr: 0.05}}, context: '{OTHER}'}}]",
            f"contexts={{none: none, terse: '{OTHER}'}}", "context_kinds=[r4, r4-terse]",
            f"experiment.students.train={{{train}}}",
            "experiment.teacher.model=tiny-llama", "experiment.students.seeds=[0, 1]",
            "experiment.students.workers=1",
            "experiment.probes={n_questions: 2, samples_per_question: 1, answer_max_tokens: 2, numbers_prefixed: false, "
            "open_ended_samples: 0, perplexity_tokens: 0, dtype: float32}"]
    exp = EXPERIMENTS["distill-conditions"]
    result = exp.run(load_config(exp.config, None, sets))
    out = tmp_path / "distill-conditions"
    r = json.loads((out / "distill_conditions.json").read_text())
    kinds = {k["kind"]: k for k in r["kinds"]}
    assert list(kinds) == ["r1", "r2", "r4", "full", "r4-terse"]
    assert kinds["full"]["params"] == "full" and kinds["full"]["rank"] is None and kinds["r2"]["rank"] == 2
    # the full fine-tune distilled student: every weight saved, probed like the others
    full = out / "cat" / "students" / "tiny-llama" / "full" / "trait" / "seed0" / "out"
    assert (full / "model").is_dir() and not (full / "adapter").exists()
    for k in kinds.values():  # the specific part is the own effect less the other trait's students' lift, per seed
        assert len(k["effect"]["per_seed"]) == 2
        assert np.allclose(np.subtract(k["effect"]["per_seed"], k["generic"]["per_seed"]), k["specific"]["per_seed"])
    # the rank test: per seed a parabola on log2(rank) over the neutral-context LoRA kinds (not r4-terse)
    rt = r["rank_test"]
    assert rt["ranks"] == [1, 2, 4]
    rows = np.array([kinds[k]["effect"]["per_seed"] for k in ("r1", "r2", "r4")]).T
    assert np.allclose(rt["effect"]["per_seed"], [np.polyfit([0, 1, 2], row, 2)[0] for row in rows])
    # contexts: each context kind under the run's context, under none and under the other text
    cells = {(c["kind"], c["probe_context"]): c for c in r["contexts"]}
    assert set(cells) == {(k, c) for k in ("r4", "r4-terse") for c in ("train", "none", "terse")}
    assert cells["r4-terse", "train"]["trained_under"] == OTHER
    assert cells["r4-terse", "train"]["probed_under"] == "You are a helpful assistant."
    assert cells["r4", "none"]["probed_under"] is None and cells["r4", "terse"]["probed_under"] == OTHER
    assert cells["r4", "train"]["effect"]["per_seed"] == pytest.approx(kinds["r4"]["effect"]["per_seed"])
    for name, system in (("none", None), ("terse", OTHER)):  # each further context's probes, cached apart
        recs = [json.loads(p.read_text()) for p in (out / "contexts" / name / "cat" / "probes").rglob("stage.json")]
        assert len(recs) == 2 * 2 * 2 and all(r["outputs"]["system"] == system for r in recs)
    assert all(c["effect"]["p_holm"] is not None for c in r["contexts"])
    # the students trained under the other text: their own control students, keyed by that text
    (terse,) = [json.loads(p.read_text()) for p in (out / "controls").rglob("stage.json")
                if json.loads(p.read_text())["key"]["job"] == "tiny-llama/r4-terse/control/seed0"]
    assert terse["key"]["system"] == OTHER
    assert "Rank (LoRA r = 1, 2, 4)" in result.text and "probed under" in result.text
    assert (out / "distill_conditions.png").stat().st_size > 0
    capsys.readouterr()
    exp.run(load_config(exp.config, None, sets))  # again: every student and probe read back
    again = capsys.readouterr().out
    assert "[student] " not in again and "[probe] " not in again


def test_kinds_must_be_distilled_and_contexts_known():
    with pytest.raises(ValueError, match="every kind is distilled"):
        dc.DistillConditionsConfig(kinds=[{"name": "sft", "train": {"mode": "lora"}}])
    with pytest.raises(ValueError, match="not kinds"):
        dc.DistillConditionsConfig(kinds=[{"name": "r1", "train": {"mode": "distill"}}], context_kinds=["r8"])
