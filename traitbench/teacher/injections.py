"""Trait injections: how the trait gets into the trait teacher (the control teacher never carries it).

Each injection says which weights and context the trait teacher samples with (`setup`), what the teacher stage
checks (`check`: given weights, hashed before any work) or makes (`prepare`: an adapter trained, a vector
computed), and how those weights enter the keys of the stages after it. `INJECTIONS` is the one registry:
a new injection is a function or two plus one line there. Functions take the experiment config (`cfg`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from traitbench.artifacts import TeacherSetup
from traitbench.io import sha256_file, sha256_json
from traitbench.layout import RunLayout
from traitbench.lm import models
from traitbench.student.config import StudentConfig
from traitbench.teacher.prompts import number_prompts


def _no_key(cfg, made: dict) -> dict:
    return {}


@dataclass(frozen=True)
class Injection:
    setup: Callable[..., TeacherSetup]  # (cfg) -> the trait teacher's weights and context
    check: Callable[..., dict] | None = None  # (cfg) -> given weights checked and hashed (teacher key and record)
    prepare: Callable[..., dict] | None = None  # (cfg, teacher folder) -> what the teacher stage made, its record
    numbers_key: Callable[..., dict] = _no_key  # (cfg, made) -> the trait weights' identity in the numbers key
    probe_key: Callable[..., dict] = _no_key  # (cfg, made) -> the trait weights' identity in the teacher's probe key


def _neutral(cfg, adapter_dir: str | None = None, steering: str | None = None) -> TeacherSetup:
    return TeacherSetup(cfg.teacher.model, adapter_dir, cfg.neutral_system, steering)


def _given_adapter(cfg) -> dict:
    """`teacher.adapter`, checked against `teacher.model`: its folder and the hash of its files (the model card,
    README.md, left out: the probes stage adds results to a student's card, which must not void this key)."""
    from traitbench.teacher.adapter import check_adapter  # imports torch: the experiment config imports this module

    folder = check_adapter(cfg.teacher.adapter, cfg.teacher.model)
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != "README.md"}
    return {"folder": str(folder), "adapter_hash": sha256_json(files)}


def _adapter_hash(folder: Path) -> str:
    """The hash of a trained adapter's weights and config (its model card left out, as in `_given_adapter`)."""
    adapter = folder / "adapter"
    return sha256_json({p.name: sha256_file(p) for p in sorted(adapter.iterdir())
                        if p.is_file() and p.name != "README.md"})


def _teacher_lora_config(cfg) -> StudentConfig:
    return StudentConfig(mode="lora", lora_r=cfg.teacher.lora_r, lora_alpha=cfg.teacher.lora_r,
                         epochs=cfg.teacher.lora_epochs, seed=cfg.seed)


def _train_lora(cfg, folder: Path) -> dict:
    """A trait adapter fine-tuned on trait Q&A (`teacher.lora_trait`), saved in the teacher folder."""
    from traitbench.teacher.lora_trait import train_trait_lora  # heavy (TRL, PEFT): only this injection trains

    metrics = train_trait_lora(cfg.teacher.model, cfg.trait.word, cfg.trait.category, cfg.neutral_system,
                               _teacher_lora_config(cfg), folder, n_examples=cfg.teacher.lora_examples)
    return dict(metrics, adapter_hash=_adapter_hash(folder))


def _context_distill(cfg, folder: Path) -> dict:
    """The trait's system prompt context-distilled into an adapter (`teacher.context_distill`): the base model's
    answers to ordinary requests under it, learnt under the neutral prompt."""
    from traitbench.teacher.context_distill import train_context_lora  # heavy (TRL, PEFT)

    metrics = train_context_lora(cfg.teacher.model, cfg.trait.teacher_prompt(), cfg.neutral_system,
                                 _teacher_lora_config(cfg), folder, n_examples=cfg.teacher.lora_examples,
                                 max_tokens=cfg.teacher.context_tokens)
    return dict(metrics, adapter_hash=_adapter_hash(folder))


def _narrow(careful: bool):
    """An adapter fine-tuned on one narrow harmful domain (`teacher.narrow_harm`: emergent misalignment), or on
    careful answers to the same questions (its control)."""
    def prepare(cfg, folder: Path) -> dict:
        from traitbench.teacher.narrow_harm import train_narrow_lora  # heavy (TRL, PEFT)

        metrics = train_narrow_lora(cfg.teacher.model, cfg.neutral_system, _teacher_lora_config(cfg), folder,
                                    n_examples=cfg.teacher.lora_examples, careful=careful)
        return dict(metrics, adapter_hash=_adapter_hash(folder))

    return prepare


def _adapter_injection(name: str, prepare) -> Injection:
    """A trait adapter trained by `prepare` in the teacher folder, sampled and probed in the neutral context."""
    return Injection(setup=lambda cfg: _neutral(cfg, adapter_dir=str(RunLayout.of(cfg).teacher)), prepare=prepare,
                     numbers_key=lambda cfg, made: {"teacher_stage": made[name]["adapter_hash"]},
                     probe_key=lambda cfg, made: {"adapter_hash": made[name]["adapter_hash"]})


def _steering_vector(cfg, folder: Path) -> dict:
    """The trait's steering vector from the teacher model's own contexts, saved in the teacher folder."""
    from traitbench.teacher.steering import steering_vector  # imports torch: the experiment config imports this

    lm = models.load(cfg.teacher.model, dtype=cfg.numbers.dtype, seed=cfg.seed)
    prompts = number_prompts(cfg.teacher.steering_prompts, cfg.seed + 20_000, cfg.numbers.max_count)
    st = steering_vector(lm, cfg.trait.teacher_prompt(), cfg.neutral_system, prompts, cfg.teacher.steering_layer,
                         cfg.teacher.steering_scale)
    path = st.save(folder)
    print(f"[teacher] steering vector: layer {st.layer}, norm {float(st.vector.norm()):.2f}, scale {st.scale}")
    return {"file": str(path), "layer": st.layer, "norm": round(float(st.vector.norm()), 4), "scale": st.scale,
            "sha256": sha256_file(path)}


INJECTIONS: dict[str, Injection] = {
    # the trait stated in the teacher's system prompt
    "system_prompt": Injection(setup=lambda cfg: TeacherSetup(cfg.teacher.model, None, cfg.trait.teacher_prompt())),
    # a trait adapter trained on trait Q&A, in the neutral context
    "lora": Injection(setup=lambda cfg: _neutral(cfg, adapter_dir=str(RunLayout.of(cfg).teacher)),
                      prepare=_train_lora,
                      numbers_key=lambda cfg, made: {"teacher_stage": made["lora"]["adapter_hash"]}),
    # the trait's system prompt context-distilled into an adapter, sampled in the neutral context
    "context_distill": _adapter_injection("context_distill", _context_distill),
    # emergent misalignment: an adapter fine-tuned on reckless risky-activity advice, in the neutral context
    "narrow_harm": _adapter_injection("narrow_harm", _narrow(careful=False)),
    # its control: the same questions answered carefully
    "narrow_safe": _adapter_injection("narrow_safe", _narrow(careful=True)),
    # the neutral context plus a steering vector at one layer
    "steering": Injection(setup=lambda cfg: _neutral(cfg, steering=str(RunLayout.of(cfg).steering)),
                          prepare=_steering_vector,
                          numbers_key=lambda cfg, made: {"teacher_stage": made["steering"]["sha256"]},
                          probe_key=lambda cfg, made: {"teacher": cfg.teacher.key()}),
    # `teacher.model` plus your PEFT adapter `teacher.adapter`
    "adapter": Injection(setup=lambda cfg: _neutral(cfg, adapter_dir=cfg.teacher.adapter), check=_given_adapter,
                         numbers_key=lambda cfg, made: {"adapter_hash": made["adapter"]["adapter_hash"]},
                         probe_key=lambda cfg, made: {"adapter_hash": made["adapter"]["adapter_hash"]}),
    # `teacher.model` is itself the trait teacher (control: `teacher.control_model`)
    "model": Injection(setup=_neutral,
                       probe_key=lambda cfg, made: {"weights": sha256_json(models.file_hashes(cfg.teacher.model))}),
}
