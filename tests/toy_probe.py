"""A toy probe: the mean length, in characters, of the model's answers to two fixed prompts. Registered with
one line: `PROBES["toy"] = PROBE` (tests/test_probe_registry.py)."""

from traitbench.lm.render import render_prompt
from traitbench.lm.sampling import sample_answers
from traitbench.probes.registry import Probe
from traitbench.probes.run import ProbeContext

PROMPTS = ["Describe the sea.", "Name a colour."]


def mean_answer_chars(ctx: ProbeContext) -> tuple[dict, list[dict]]:
    """One sampled answer per prompt; their mean length."""
    rendered = [render_prompt(ctx.lm, ctx.system, p) for p in PROMPTS]
    answers = sample_answers(ctx.lm, rendered, 8, ctx.cfg.batch_size, ctx.seed + 10)
    rows = [{"variant": "toy", "prompt": p, "answer": a} for p, a in zip(PROMPTS, answers)]
    return {"mean_chars": sum(map(len, answers)) / len(answers), "n": len(answers)}, rows


PROBE = Probe("toy_probe:mean_answer_chars", enabled=lambda cfg: True,
              summarize=lambda r, b: {"toy": {"mean_chars": r["mean_chars"],
                                              "change_vs_base": r["mean_chars"] - b["mean_chars"]}},
              figures=lambda r: {"mean_chars": r["mean_chars"]}, rows_file="toy.jsonl")
