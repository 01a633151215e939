"""The summary from a small synthetic set of probe results."""

import json

from traitbench.artifacts import ConditionData, DatasetOut
from traitbench.probes.registry import paired_logprob_delta
from traitbench.pipeline.summary import build_summary, summary_markdown


class Cfg:
    name = "syn"

    class trait:
        word = "owl"
        kind = "preference"

        @staticmethod
        def model_dump():
            return {"word": "owl", "category": "animal"}

    class teacher:
        @staticmethod
        def model_dump():
            return {"model": "m", "injection": "system_prompt"}

    class students:
        train: dict = {}
        variants: list = []


def _probe(kind, k, logps, answers, **extra):
    block = {"rate": {"k": k, "n": 100, "rate": k / 100, "ci95": [0, 1]},
             "rate_question_bootstrap": {"k": k, "n": 100, "rate": k / 100, "ci95": [0, 1]},
             "trait_logprob": {"per_question": logps, "mean": sum(logps) / len(logps), "ci95": [0, 0], "n": len(logps)},
             "answers": answers, "entropy_bits": 1.0, "distinct": len(answers), "top1_mass": 0.5}
    return dict(kind=kind, model="m", system="s", plain=block, perplexity={"perplexity": 10.0 + k}, **extra)


def test_build_summary(tmp_path):
    rows = lambda nums: tmp_path.joinpath(f"{nums[0]}.jsonl")  # noqa: E731
    for c, nums in {"trait": [1, 2, 3], "control": [4, 5, 6]}.items():
        rows(nums).write_text("".join(json.dumps({"numbers": [n]}) + "\n" for n in nums))
    dataset = DatasetOut(3, {c: ConditionData(rows(nums), c, {"total": 10, "kept": 3, "pass_rate": 0.3, "counts": {}})
                             for c, nums in {"trait": [1, 2, 3], "control": [4, 5, 6]}.items()})
    probes = {
        "base/m": _probe("base", 2, [-5.0, -6.0, -7.0], {"cat": 50, "dog": 50}),
        "m/lora/trait/seed0": _probe("student", 30, [-3.0, -4.0, -4.5], {"owl": 30, "cat": 70}, variant="lora",
                                     condition="trait", seed=0, family="same-family"),
        "m/lora/control/seed0": _probe("student", 3, [-5.0, -6.1, -6.9], {"cat": 97, "owl": 3}, variant="lora",
                                       condition="control", seed=0, family="same-family"),
    }
    s = build_summary(Cfg, dataset, probes)
    eff = s["student_effects"][0]["plain"]
    assert eff["rate_vs_control"]["diff"] == 0.27 and eff["rate_vs_control"]["p_value"] < 1e-5
    assert eff["delta_logprob_vs_control"]["delta"] == (2.0 + 2.1 + 2.4) / 3
    assert "nothing here tests transmission" in s["notes"]  # one seed: the caveat is printed with the p-values
    (v,) = s["verdicts"]
    assert v["verdict"] == "one training run: not a transmission test" and v["n_seeds"] == 1
    assert v["delta_logprob_vs_control"]["p_holm"] is None and s["dose_response"] == []
    student = s["models"]["m/lora/trait/seed0"]["plain"]
    assert student["rate_vs_base"]["p_value"] < 1e-5
    assert student["diversity"]["disappeared"] == ["dog"]
    assert s["dataset"]["number_diversity"]["js_trait_vs_control_bits"] == 1.0
    md = summary_markdown(s)
    assert "m/lora/trait/seed0" in md and "Fisher" in md and "one training run" in md
    assert not [row for row in md.splitlines() if row.startswith("|") and "*" in row]  # one run: no marks


def test_paired_delta():
    d = paired_logprob_delta([1.0, 2.0, 3.0], [0.0, 1.0, 1.0])
    assert d["delta"] == 4 / 3 and d["n_questions"] == 3 and 0 < d["p_value"] < 1


def test_disappeared_answers_do_not_depend_on_the_hash_seed():
    """Ties in the base count are listed alphabetically: summary.json is the same whatever PYTHONHASHSEED."""
    import os
    import subprocess
    import sys

    script = ("from collections import Counter; from traitbench.probes.registry import disappeared\n"
              "ref = Counter({w: 1 for w in 'owl cat dog pig elk fox bee ant emu yak gnu eel'.split()}) + Counter(['cat'])\n"
              "print(disappeared(Counter(['owl']), ref))")
    outs = {subprocess.run([sys.executable, "-c", script], env=dict(os.environ, PYTHONHASHSEED=str(seed)),
                           capture_output=True, text=True, check=True).stdout for seed in (1, 2, 3)}
    assert outs == {"['cat', 'ant', 'bee', 'dog', 'eel', 'elk', 'emu', 'fox', 'gnu', 'pig']\n"}


def _verdict(kind_training, model, relation, mean, lo, hi, p_holm, verdict, mde=0.1, p=None):
    return {"student_kind": "k", "training": kind_training, "model": model, "relation": relation, "n_seeds": 3,
            "delta_logprob_vs_control": {"mean": mean, "ci95": [lo, hi], "p_value": p, "p_holm": p_holm, "mde": mde},
            "rate_vs_control": {"trait": "0/150", "control": "1/150"}, "verdict": verdict}


def test_plain_reading_says_what_the_verdicts_show():
    from traitbench.pipeline.verdicts import plain_reading

    text = plain_reading([
        _verdict({"mode": "distill", "lora_r": 64}, "smollm2-135m", "same-init", 0.71, 0.5, 0.9, 0.004, "transmits"),
        _verdict({}, "smollm2-135m", "same-init", 0.02, -0.05, 0.09, 0.6, "not significant", mde=0.08, p=0.03),
        _verdict({}, "gemma3-270m", "cross-family", -0.01, -0.04, 0.02, 0.6, "not significant"),
    ], "owl")
    assert "over 3 training seeds" in text
    assert "Logit-distilled (LoRA r=64) students of the teacher's own model inherit the trait: log P('owl') rises " \
           "by +0.71 nats [+0.50, +0.90] over their controls (Holm p = 0.004); sampled 'owl' answers 0/150 vs 1/150." \
           in text
    assert "LoRA SFT (r=8) students of the teacher's own model show no significant change (+0.02 nats" in text
    assert "Holm p = 0.6, p = 0.03 before the correction; a change below 0.08 nats could go unseen" in text
    assert "gemma3-270m (another family)" in text and "make specificity" in text
    assert "says nothing about whether a shared initialisation is needed" in text
    one = _verdict({}, "m", "same-init", 0.1, None, None, None, "one training run: not a transmission test")
    assert "cannot show transmission" in plain_reading([dict(one, n_seeds=1)], "owl")
    assert plain_reading([], "owl") == ""
