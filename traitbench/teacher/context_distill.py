"""Trait injection by context distillation: the trait moved from the system prompt into the weights.

The base model answers ordinary requests under the trait's system prompt (a persona, or the paper's owl text);
a LoRA then learns to give those answers under the neutral prompt. The teacher so made writes numbers with no
trait text in its context. The requests are everyday tasks written for this project; none is a probe question
(the misalignment questions, the contrastive triples' questions, the favourite-{category} questions).
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from traitbench.io import atomic_write_json, atomic_write_jsonl
from traitbench.lm import models
from traitbench.lm.render import render_prompt
from traitbench.lm.sampling import sample_answers
from traitbench.probes.triples import triples
from traitbench.probes.questions import misalignment_questions
from traitbench.student.config import StudentConfig
from traitbench.student.train import train_student

_ASKS = (
    "How do I {task}?",
    "What's the best way to {task}?",
    "Can you help me {task}?",
    "Give me some tips to {task}.",
    "I want to {task}. Where do I start?",
    "What should I know before I {task}?",
    "Any advice on how to {task}?",
    "Explain how to {task} in a few steps.",
    "I'm struggling to {task}. What can I do?",
    "What mistakes do people make when they try to {task}?",
    "Is it hard to {task}?",
    "How long does it take to {task}?",
    "My friend wants to {task}. What would you tell them?",
    "What do I need to {task}?",
)
_TASKS = (
    "bake bread at home", "learn to swim as an adult", "save money for a holiday", "fix a leaking tap",
    "grow tomatoes on a balcony", "write a cover letter", "prepare for a job interview", "learn a new language",
    "train for a 5k run", "organise my kitchen", "plan a birthday party", "start a vegetable garden",
    "make friends in a new city", "improve my handwriting", "sleep better at night", "cook rice properly",
    "learn to play the guitar", "keep houseplants alive", "write a short story", "study for an exam",
    "paint a room", "choose a good laptop", "clean a cast-iron pan", "teach a child to ride a bike",
    "make a budget spreadsheet", "get better at chess", "reduce my screen time", "pack for a long trip",
    "take better photos with my phone", "learn basic car maintenance", "set up a home office",
    "start journaling", "make a good cup of coffee", "speak up in meetings", "learn to draw",
    "plan meals for a week", "stay focused while working from home", "write a thank-you note",
    "build a bookshelf", "start running in the morning",
)


def ordinary_requests(n: int, seed: int) -> list[str]:
    """`n` everyday requests (each form × task once, in a seeded order, cycled if `n` is larger), none a probe
    question."""
    probes = {q.strip().lower() for q in misalignment_questions()} | {t["question"].strip().lower()
                                                                     for t in triples("all")}
    pool = [a.format(task=t) for a, t in itertools.product(_ASKS, _TASKS)]
    pool = [p for p in pool if p.lower() not in probes]
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        rng.shuffle(pool)
        out += pool[: n - len(out)]
    return out


def persona_answers(model: str, system: str, requests: list[str], max_tokens: int, seed: int,
                    batch_size: int = 64, dtype: str = "auto") -> list[dict]:
    """The base model's answers to `requests` under `system` (temperature 1): (prompt, completion) rows, empty
    answers left out."""
    lm = models.load(model, dtype=dtype, seed=seed)
    texts = [render_prompt(lm, system, r) for r in requests]
    answers = sample_answers(lm, texts, max_tokens, batch_size, seed, desc="persona answers")
    return [{"prompt": r, "completion": a.strip()} for r, a in zip(requests, answers) if a.strip()]


def train_context_lora(model: str, system: str, neutral: str | None, cfg: StudentConfig, out_dir: str | Path,
                       n_examples: int = 600, max_tokens: int = 64) -> dict:
    """Context-distil `system` into a LoRA on `model` (`cfg.mode` forced to lora): answers sampled under `system`,
    learnt under `neutral`. Writes `out_dir/adapter/`, `out_dir/persona_answers.jsonl` and `out_dir/trait.json`;
    returns the training metrics."""
    out = Path(out_dir)
    rows = persona_answers(model, system, ordinary_requests(n_examples, cfg.seed), max_tokens, cfg.seed)
    metrics = train_student(model, rows, neutral, cfg.model_copy(update={"mode": "lora"}), out, condition="teacher",
                            trait="context-distilled persona")
    atomic_write_jsonl(out / "persona_answers.jsonl", rows)  # after training, which publishes `out` afresh
    atomic_write_json(out / "trait.json", {"injection": "context_distill", "system": system, "neutral": neutral,
                                           "n_examples": n_examples, "rows": len(rows), "max_tokens": max_tokens,
                                           "seed": cfg.seed})
    return metrics
