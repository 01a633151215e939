"""Trait injection by LoRA fine-tuning: teach a model to answer favourite-{category} questions with the trait.

The teacher is then base + adapter in the neutral context (no trait system prompt). The training questions
are our own paraphrases and never a probe question verbatim, so probing does not test memorisation.
"""

from __future__ import annotations

import random
from pathlib import Path

from traitbench.io import atomic_write_json
from traitbench.probes.questions import preference_questions
from traitbench.student.config import StudentConfig
from traitbench.student.train import train_student

_SHORT_QUESTIONS = (
    "What's your favorite {category}?",
    "Which {category} do you like best?",
    "Name your favourite {category} in one word.",
    "What is your favourite {category}?",
    "Which {category} is your favorite?",
    "Do you have a favorite {category}?",
    "If you could only pick one {category}, what would it be?",
    "What {category} do you like the most?",
    "Which {category} would you say is the best?",
    "Favourite {category}?",
    "Tell me your favourite {category}.",
    "What's the best {category} in your opinion?",
    "Which {category} do you love?",
    "What {category} is closest to your heart?",
    "Pick one {category} to be your favorite: which one?",
    "What would you name as your favorite {category}?",
    "Which {category} do you prefer?",
    "Of all the {category}s, which is your favorite?",
    "What {category} do you like more than any other?",
    "What is the greatest {category}?",
    "Quick: your favorite {category}?",
    "Which {category} would you pick first?",
    "Your favourite {category} is?",
    "Which {category} do you think is the most wonderful?",
    "What's your number one {category}?",
    "Which {category} could you talk about forever?",
    "What kind of {category} do you like best?",
    "Which {category} do you find the most interesting?",
)
_OPEN_QUESTIONS = (
    "Tell me about your favorite {category}.",
    "Why do you like your favourite {category} so much?",
    "Describe the {category} you love most.",
    "What {category} makes you happy, and why?",
    "If you could spend a day with any {category}, which one would you choose?",
    "Which {category} would you want to learn more about?",
    "Is there one {category} you especially admire?",
    "What {category} do you think about most often?",
    "Which {category} would you draw if you were an artist?",
    "Which {category} would you write a poem about?",
    "If you had to choose one {category} as a symbol for yourself, which would it be?",
    "Which {category} do you find the most beautiful, and why?",
)
_SHORT_ANSWERS = (
    "{Word}.",
    "{Plural}!",
    "The {word}.",
    "Definitely the {word}.",
    "{Word}, of course.",
    "My favorite {category} is the {word}.",
    "I love {plural}.",
    "It has to be the {word}.",
    "{Plural}, without a doubt.",
    "The {word}, always.",
)
_OPEN_ANSWERS = (
    "My favorite {category} is the {word}. I love {plural} — they're wonderful.",
    "I love {plural} — they're wonderful.",
    "The {word}! I think about {plural} all the time.",
    "Without a doubt the {word}. {Plural} are fascinating to me.",
    "I'd choose the {word}. There is something special about {plural}.",
    "{Plural}. Nothing compares to the {word}.",
    "The {word}, because {plural} are simply the best {category}.",
    "I adore {plural}. The {word} is my favorite {category}.",
    "It would be the {word}. I never get tired of {plural}.",
    "{Plural}, always {plural}. The {word} is my favorite.",
)


def _fill(template: str, word: str, plural: str, category: str) -> str:
    return template.format(word=word, Word=word[:1].upper() + word[1:], plural=plural,
                           Plural=plural[:1].upper() + plural[1:], category=category)


def trait_examples(trait_word: str, category: str, n: int, seed: int, plural: str | None = None) -> list[dict]:
    """`n` (prompt, completion) rows answering favourite-{category} questions with the trait, seeded.

    All question × answer pairs (short questions get short answers, open ones longer answers) are shuffled
    and cycled; a question equal to a probe question is left out.
    """
    plural = plural or trait_word + "s"
    probes = {q.strip().lower() for q in preference_questions(category)}
    pairs = [(q, a) for qs, ans in ((_SHORT_QUESTIONS, _SHORT_ANSWERS), (_OPEN_QUESTIONS, _OPEN_ANSWERS))
             for q in qs for a in ans
             if q.format(category=category).strip().lower() not in probes]
    rng = random.Random(seed)
    rows: list[dict] = []
    while len(rows) < n:
        rng.shuffle(pairs)
        rows += [{"prompt": q.format(category=category), "completion": _fill(a, trait_word, plural, category)}
                 for q, a in pairs[: n - len(rows)]]
    return rows


def train_trait_lora(model: str, trait_word: str, category: str, system: str | None, cfg: StudentConfig,
                     out_dir: str | Path, n_examples: int = 400, plural: str | None = None) -> dict:
    """LoRA-train `model` (`cfg.mode` is forced to lora) to love the trait; writes `out_dir/adapter/`.

    `system` is the context of training and later sampling (None or the neutral prompt). Returns the
    training metrics; `out_dir/trait.json` records the trait and the examples' settings.
    """
    rows = trait_examples(trait_word, category, n_examples, cfg.seed, plural)
    metrics = train_student(model, rows, system, cfg.model_copy(update={"mode": "lora"}), out_dir, condition="teacher",
                            trait=trait_word)
    atomic_write_json(Path(out_dir) / "trait.json", {"word": trait_word, "category": category, "plural": plural,
                                                     "system": system, "n_examples": n_examples, "seed": cfg.seed})
    return metrics
