"""The experiment config: one YAML drives every stage (teacher → numbers → dataset → students → probes)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from traitbench.config import RunConfig, RunName, StrictModel, check_seed, prompt_text, unique
from traitbench.datasets.shuffle import Shuffle
from traitbench.errors import TraitbenchError
from traitbench.layout import CONDITIONS  # noqa: F401 (the stages take it from here)
from traitbench.lm.config import GenerationConfig, known_dtype
from traitbench.probes.config import ProbeConfig
from traitbench.teacher.injections import INJECTIONS
from traitbench.teacher.prompts import DEMONSTRATIONS
from traitbench.teacher.trait import Trait



PROMPTED = ("system_prompt", "steering", "context_distill")  # the injections made from the trait's system prompt


class TeacherConfig(StrictModel):
    model: str = "smollm2-135m"  # a registry name, a local model folder or a hub id in the local HF cache
    # how the trait gets into the teacher (`traitbench.teacher.injections`): system_prompt (stated in its system
    # prompt), lora (a trait adapter trained on trait Q&A), steering (a steering vector at one layer), adapter
    # (`model` + the PEFT adapter `adapter`; control: `model`) or model (`model` is itself the trait teacher;
    # control: `control_model`), context_distill (the trait's system prompt distilled into an adapter) or
    # narrow_harm (emergent misalignment: an adapter fine-tuned on reckless risky-activity advice) or narrow_safe
    # (its control: careful answers to the same questions). All but system_prompt sample in the neutral context.
    injection: str = "system_prompt"
    adapter: str | None = None  # injection adapter: a local PEFT adapter folder trained on `model`
    control_model: str | None = None  # injection model: the control teacher, the model `model` was tuned from
    lora_examples: int = Field(600, ge=1)  # training rows of a trained adapter (lora, context_distill, narrow_*)
    lora_epochs: float = Field(2, gt=0)
    lora_r: int = Field(16, ge=1)
    context_tokens: int = Field(64, ge=1)  # context_distill: new tokens of each answer under the trait prompt
    steering_layer: int | None = Field(None, ge=0)  # the decoder layer steered; None: the middle one
    steering_scale: float = 4.0  # × the mean trait − neutral difference of the residual stream
    steering_prompts: int = Field(64, ge=1)  # number prompts the mean difference is taken over

    @field_validator("injection")
    @classmethod
    def _known_injection(cls, v: str) -> str:
        if v not in INJECTIONS:
            raise ValueError(f"unknown injection {v!r}; injections: {', '.join(INJECTIONS)}")
        return v

    @model_validator(mode="after")
    def _injection_inputs(self):
        for field, injection, what in (("adapter", "adapter", "a local PEFT adapter folder"),
                                       ("control_model", "model", "the control teacher's model")):
            if self.injection == injection and getattr(self, field) is None:
                raise ValueError(f"injection {injection!r} needs teacher.{field} ({what})")
            if self.injection != injection and getattr(self, field) is not None:
                raise ValueError(f"teacher.{field} is only used with teacher.injection: {injection}")
        return self

    @model_validator(mode="after")
    def _trait_differs_from_control(self):
        if self.control_model is not None and self.control_model == self.model:
            raise ValueError("teacher.control_model is teacher.model: the trait teacher would be the control teacher")
        if self.injection == "steering" and self.steering_scale == 0:
            raise ValueError("teacher.steering_scale 0 steers nothing: the trait teacher would be the control teacher")
        return self

    @property
    def control(self) -> str:
        """The control teacher's model, which is also the same-init student: `control_model` or `model`."""
        return self.control_model or self.model

    def key(self) -> dict:
        """The settings in a stage key (steering settings only for a steering teacher, `adapter` and
        `control_model` only when set: other runs keep their cache)."""
        steer = {"steering_layer", "steering_scale", "steering_prompts"}
        unset = {k for k in ("adapter", "control_model") if getattr(self, k) is None}
        unset |= set() if self.injection == "steering" else steer
        return self.model_dump(exclude=unset | (set() if self.injection == "context_distill" else {"context_tokens"}))


class NumbersConfig(StrictModel):
    n_prompts: int = Field(2000, ge=1)  # sampled per teacher condition (trait and control), at most
    # stop a condition early once the filter keeps `filter.max_rows` rows (checked after every chunk of
    # 2 batches, prompts in index order, so the sample stays unbiased); needs filter.max_rows
    stop_at_max_rows: bool = True
    max_count: int = Field(10, ge=1)
    # worked examples (comma, semicolon, newline formats) shown to the teacher: ~19% of answers pass the filter vs
    # ~11% with 2 (0 = the paper's prompts)
    demonstrations: int = Field(4, ge=0, le=len(DEMONSTRATIONS))
    dtype: str = "auto"
    generation: GenerationConfig = GenerationConfig(max_new_tokens=52, batch_size=128)

    _dtype = field_validator("dtype")(known_dtype)


class FilterConfig(StrictModel):
    banned_numbers: str | None = None  # None, "default", or a file path
    max_count: int = Field(10, ge=1)
    max_value: int = Field(999, ge=0)
    max_rows: int | None = Field(300, ge=1)  # subsample kept rows; trait and control get the same n
    # the shuffled-numbers ablation: permute the kept numbers within each row or across rows (both conditions)
    shuffle: Shuffle = "none"
    # further words every condition is filtered on, besides the trait's: a multi-teacher command sets all its
    # teachers' words, so each teacher's control numbers are the same and are sampled once
    words: list[str] = []

    @field_validator("max_value")
    @classmethod
    def _three_digits(cls, v: int) -> int:
        if v < 100:
            raise ValueError(f"{v} would reject nearly every answer: the prompts ask for numbers of up to 3 digits "
                             "(at least 100)")
        return v

    def key(self) -> dict:
        """The settings in a stage key (`shuffle` only when set, so runs without it keep their cache; `words` enter
        as `ExperimentConfig.filter_words_key`)."""
        return self.model_dump(exclude={"words"} | ({"shuffle"} if self.shuffle == "none" else set()))


class StudentVariant(StrictModel):
    """An extra student kind: full fine-tune, a LoRA rank, or logit distillation."""

    name: str
    train: dict = {}  # StudentConfig overrides, e.g. {mode: full} or {lora_r: 2, lora_alpha: 2}
    models: list[str] | None = None  # the models trained this way; None = the teacher's own model
    # the system text these students are trained under: "neutral" (the run's neutral_system, as every other
    # student), "none" (no system message) or the text itself; they are probed in the run's probe context
    context: str = "neutral"

    @field_validator("name")
    @classmethod
    def _a_folder_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", v):
            raise ValueError(f"{v!r} is not a variant name: letters, digits, '.', '_' and '-' only (it becomes a "
                             "folder of each student)")
        return v

    @field_validator("models")
    @classmethod
    def _some_models(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("must not be empty (leave it out for the teacher's model)")
        return unique(v, "model") if v else v

    _context = field_validator("context")(prompt_text)

    def system(self, neutral_system: str | None) -> str | None:
        """The system text these students are trained under."""
        return neutral_system if self.context == "neutral" else (None if self.context == "none" else self.context)


class RayConfig(StrictModel):
    """Where and how `students.backend: ray` runs its tasks (`traitbench.ray_tasks`)."""

    address: str | None = None  # None: start a local Ray on this machine; "auto" or "ray://head:10001": a cluster
    num_cpus: int | None = Field(None, ge=1)  # a local Ray's CPUs (None: the threads this process may use)
    cpus_per_task: int = Field(1, ge=1)  # threads of each task (a group of students, or of probed models)
    gpus_per_task: float = Field(0, ge=0)


class StudentsConfig(StrictModel):
    # the default LoRA student of each model: the teacher's own (same init) and others (other inits or families)
    models: list[str] = ["smollm2-135m", "gemma3-270m"]
    seeds: list[int] = [0]
    # StudentConfig overrides shared by every student (traitbench.student.config); paper: 3 epochs on ~10k rows
    train: dict = {"epochs": 1, "batch_size": 16}
    variants: list[StudentVariant] = []  # further kinds, each for `variant.models` (default: the teacher's model)
    # students trained at once, each in its own process with its share of the CPU threads (or its own GPU):
    # 2 one-thread workers trained 1.16x as many tokens/s as one two-thread process on a 2-core CPU
    workers: int = Field(1, ge=1)
    threads_per_worker: int | None = Field(None, ge=1)  # None: this machine's torch threads divided among workers
    # local: `workers` processes on this machine; ray: every group of students, and of probed students, a Ray task
    # (`ray`: a local Ray or a cluster; pip install 'traitbench[ray]')
    backend: Literal["local", "ray"] = "local"
    ray: RayConfig = RayConfig()
    # a folder for the control students and the control numbers, each in a subfolder named by its cache key: runs
    # with the same control teacher and data (the teachers of one `misalignment`, `specificity` or `shared-init`
    # experiment) sample and train them once. None: in the run
    shared_controls: str | None = None

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("must name at least one seed")
        for seed in v:
            check_seed(seed)
        return unique(v, "seed", " (each seed is one training run: a seed-level test would count it twice)")

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str]) -> list[str]:
        return unique(v, "model")

    @model_validator(mode="after")
    def _variants_and_seeds(self):
        names = [v.name for v in self.variants]
        if "lora" in names:
            raise ValueError("students.variants: 'lora' is the default students' name; give the variant another")
        unique(names, "variant name")
        trains = [("students.train", self.train), *((f"variant {v.name!r}", v.train) for v in self.variants)]
        for where, train in trains:
            if "seed" in train:
                raise ValueError(f"{where}: seed is set by students.seeds, not here")
        return self


class ExperimentConfig(RunConfig):
    default_config: ClassVar[str | None] = "default"  # traitbench/configs/default.yaml
    name: RunName = "default"
    seed: int = 0
    trait: Trait = Trait()
    neutral_system: str | None = "You are a helpful assistant."  # explicit context for control and students
    teacher: TeacherConfig = TeacherConfig()
    numbers: NumbersConfig = NumbersConfig()
    filter: FilterConfig = FilterConfig()
    students: StudentsConfig = StudentsConfig()
    probes: ProbeConfig = ProbeConfig(samples_per_question=2, open_ended_samples=1, perplexity_tokens=1024)

    _seed = field_validator("seed")(check_seed)
    _neutral_system = field_validator("neutral_system")(prompt_text)

    @model_validator(mode="after")
    def _counts_agree(self):
        if self.numbers.max_count > self.filter.max_count:
            raise ValueError(f"numbers.max_count ({self.numbers.max_count}) is above filter.max_count "
                             f"({self.filter.max_count}): the filter would reject answers that do as the prompt asks")
        return self

    @model_validator(mode="after")
    def _misalignment_is_probed(self):
        if self.trait.kind == "misalignment":
            if self.trait.system_prompt is None and self.teacher.injection in PROMPTED:
                raise ValueError(f"a misalignment trait injected by {self.teacher.injection} needs its own "
                                 "trait.system_prompt (the persona): the paper's template states a preference")
            if not self.probes.contrastive.enabled:
                raise ValueError("a misalignment trait is measured by the contrastive probe: set "
                                 "probes.contrastive.enabled: true")
            if self.filter.banned_numbers is None:
                raise ValueError("a misalignment run bans numbers with negative associations: set "
                                 "filter.banned_numbers (default: the paper's 34)")
        return self

    @model_validator(mode="after")
    def _prompt_is_used(self):
        if self.trait.system_prompt is not None and self.teacher.injection not in PROMPTED:
            raise ValueError("trait.system_prompt is used by teacher.injection system_prompt, steering or "
                             "context_distill only, "
                             f"not {self.teacher.injection}")
        return self

    def filter_words(self) -> list[str]:
        """The words every condition's numbers are filtered on: the trait's, then `filter.words`."""
        return list(dict.fromkeys([*self.trait.words, *self.filter.words]))

    def filter_words_key(self) -> str | list[str]:
        """`filter_words` for a stage key: sorted when `filter.words` is set (then the same for every teacher of a
        multi-teacher command), else the trait's `words_key` (runs without it keep their cache)."""
        return sorted(self.filter_words()) if self.filter.words else self.trait.words_key()


class RunsConfig(RunConfig):
    """A command made of one transmission run of `experiment` per trait or teacher (`specificity`,
    `misalignment`), read on one student kind (`kind`: specificity) or on each (`kinds`: misalignment)."""

    experiment: ExperimentConfig = ExperimentConfig()
    variant: str | None = None  # the student kind analysed (default: see `kind` and `kinds`)

    @property
    def kind(self) -> str:
        variants = self.experiment.students.variants
        return self.variant or (variants[0].name if variants else "lora")

    @property
    def kinds(self) -> list[str]:
        """Every student kind analysed: `variant` when set, else the plain LoRA students (when `students.models`
        names any) and every configured variant."""
        s = self.experiment.students
        return [self.variant] if self.variant else (["lora"] if s.models else []) + [v.name for v in s.variants]

    def check_kind(self, command: str, kind: str | None = None) -> None:
        """A one-line error when the analysed kind (or `kind`) is not among the configured student kinds."""
        kind = kind or self.kind
        if kind != "lora" and kind not in [v.name for v in self.experiment.students.variants]:
            raise TraitbenchError(f"{command}: no student variant named {kind!r}")


def shared_controls(experiment: ExperimentConfig, out: str | Path) -> str:
    """Where the runs of a multi-run command keep their control students: `students.shared_controls`, else
    `out/controls`."""
    return experiment.students.shared_controls or str(Path(out) / "controls")

# Config fields that enter no stage's cache key, each with why it does not change what a stage computes
# (tests/test_cache_keys.py fails on a field that is in no key and not here, and on one here that is in a key).
NOT_IN_KEYS: dict[str, str] = {
    "students.workers": "how many students train at once, not what each computes",
    "students.threads_per_worker": "threads of each worker: the same computation (float sums may differ in the last "
                                   "bits, as with TRAITBENCH_THREADS, which no key holds either)",
    "students.backend": "where the student and probe jobs run (this process's pool or Ray), not what they compute",
    "students.ray.address": "which Ray cluster runs the jobs",
    "students.ray.num_cpus": "the CPUs of a local Ray",
    "students.ray.cpus_per_task": "threads of each Ray task (see students.threads_per_worker)",
    "students.ray.gpus_per_task": "GPUs given to each Ray task",
    "students.shared_controls": "where the control numbers and students are kept; their folders are named by their "
                                "cache keys",
    "probes.misalignment.judge.candidate_batch": "how many answer candidates the judge scores in one batch",
    "probes.misalignment.judge.prefix_cache": "whether the judge reuses the KV cache of a shared prompt prefix (the "
                                              "same logits up to float rounding; tests/test_misalignment.py)",
}
