"""The probes' settings (no torch here: configs import this)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from traitbench.config import StrictModel, one_line, prompt_text, unique
from traitbench.lm.config import known_dtype
from traitbench.probes.triples import TRIPLES_FILE, load_triples
from traitbench.probes.judge import JudgeConfig


class MisalignmentConfig(StrictModel):
    enabled: bool = False  # off by default: the owl experiment is not a misalignment experiment
    samples_per_question: int = Field(4, ge=1)  # paper: 200
    max_tokens: int = Field(64, ge=1)
    judge: JudgeConfig = JudgeConfig()


class ContrastiveConfig(StrictModel):
    enabled: bool = False  # off by default: the owl experiment is not a misalignment experiment
    split: Literal["design", "heldout", "all"] = "heldout"  # the triples' half (`probes/contrastive.py`)
    triples: str | None = None  # a JSONL file of (qid, question, aligned, misaligned); None: the packaged triples

    @field_validator("triples")
    @classmethod
    def _readable(cls, v: str | None) -> str | None:
        if v is not None:
            load_triples(v)  # reads the file: bad input fails at load time
        return v

    def file(self) -> Path:
        return Path(self.triples) if self.triples else TRIPLES_FILE


class ProbeConfig(StrictModel):
    n_questions: int = Field(50, ge=1, le=50)
    first_question: int = Field(0, ge=0, le=49)  # questions first..first+n-1 of the 50 (hold some out: see README)
    samples_per_question: int = Field(4, ge=1)
    numbers_prefixed: bool = True
    answer_max_tokens: int = Field(8, ge=1)
    open_ended_samples: int = Field(2, ge=0)
    open_ended_max_tokens: int = Field(32, ge=1)
    perplexity_tokens: int = Field(2048, ge=0)
    batch_size: int = Field(64, ge=1)
    dtype: str = "auto"
    context: str = "train"  # "train": the students' training context; "none": no system; else the system text
    # other answers whose log P (and, where answers are sampled, rate) is recorded beside the trait's (e.g. the
    # other traits of a specificity run): `{variant: {"other_logprob": {word: …}, "other_rates": {word: …}}}`
    other_words: list[str] = []
    misalignment: MisalignmentConfig = MisalignmentConfig()  # judged free-form answers (off by default)
    contrastive: ContrastiveConfig = ContrastiveConfig()  # log P(misaligned) − log P(aligned) answers (off by default)

    _dtype = field_validator("dtype")(known_dtype)
    _context = field_validator("context")(prompt_text)

    @field_validator("other_words")
    @classmethod
    def _words(cls, v: list[str]) -> list[str]:
        v = [w.strip() for w in v]
        if not all(v):
            raise ValueError("other_words must not be empty")
        return [one_line(w) for w in unique(v, "other word")]

    @model_validator(mode="after")
    def _within_the_questions(self):
        if self.first_question + self.n_questions > 50:
            raise ValueError(f"first_question + n_questions must be at most 50, got "
                             f"{self.first_question} + {self.n_questions}")
        return self

    @property
    def variants(self) -> list[str]:
        return ["plain", "numbers_prefixed"] if self.numbers_prefixed else ["plain"]
