"""Fine-tune a student on number rows: LoRA or full SFT with completion-only loss, or logit distillation.

Runs unchanged in one process or under `accelerate launch` (DDP): only the main process writes, into a
hidden `.NAME.partial` folder that replaces `out_dir` once complete, so a crash leaves no half-written student.
Every `checkpoint_every` optimizer steps the trainer's whole state goes into a hidden `.NAME.resume` folder, from
which a restarted run of the same student resumes and reaches the same weights as an uninterrupted one.
"""

from __future__ import annotations

import gc
import json
import math
import os
import shutil
import time
from pathlib import Path

import torch
from accelerate import PartialState
from datasets import Dataset
from peft import LoraConfig
from transformers import Trainer, TrainerCallback
from transformers.integrations import TensorBoardCallback
from trl import SFTConfig, SFTTrainer

from traitbench.errors import TraitbenchError
from traitbench.io import atomic_write_json, sha256_json
from traitbench.lm.allocator import release_freed_memory
from traitbench.lm.models import LoadedModel, load, resolve_dtype
from traitbench.lm.render import add_special_tokens, render_prompt
from traitbench.student.card import StudentCard
from traitbench.student.config import StudentConfig
from traitbench.student.data import CompletionCollator, LengthBucketSampler, build_sft_rows, tokenize_sft_rows
from traitbench.student.distill import TeacherLogits, check_same_vocabulary, completion_logits, completion_loss
from traitbench.lm.tuned import load_trait_model


class NoFinalCheckpoint(TrainerCallback):
    """No resume checkpoint after the last step: the finished student is published right after it."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_save = False


class CompletionTrainer(SFTTrainer):
    """SFTTrainer on pre-tokenized, left-padded batches; logits only where the loss needs them.

    With a `teacher` (a model run in every step, or its precomputed `TeacherLogits`) the loss is
    KL(teacher ‖ student) at the completion positions, else the completion tokens' cross-entropy. Both are
    token means over the whole (accumulated, all-process) batch.
    """

    loss_is_scaled_for_ga = True

    def __init__(self, *args, teacher: torch.nn.Module | TeacherLogits | None = None, temperature: float = 1.0,
                 **kwargs):
        super().__init__(*args, **kwargs)
        for module in self.model.modules():  # autocast casts adapter inputs itself; PEFT's fp32 cast only copies
            if hasattr(module, "cast_input_dtype_enabled"):
                module.cast_input_dtype_enabled = False
        if isinstance(teacher, torch.nn.Module):
            teacher = teacher.to(self.args.device).eval()
        self.teacher = teacher
        self.temperature = temperature
        self.train_tokens = 0
        self.add_callback(NoFinalCheckpoint())

    def _save_checkpoint(self, model, trial):
        """A resume checkpoint without TRL's draft model card (students get their own, `student.card`)."""
        Trainer._save_checkpoint(self, model, trial)

    def _get_train_sampler(self, train_dataset=None):
        """Length-bucketed batches (`LengthBucketSampler`) for `group_by_length`, else transformers' own."""
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy != "group_by_length" or "length" not in dataset.column_names:
            return super()._get_train_sampler(train_dataset)
        return LengthBucketSampler(dataset["length"], self.args.per_device_train_batch_size, self.args.seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        row_index = inputs.pop("row_index", None)
        teacher_inputs = {k.removeprefix("teacher_"): inputs.pop(k) for k in list(inputs) if k.startswith("teacher_")}
        logits, targets = completion_logits(model, inputs, labels)
        teacher_logits = None
        if isinstance(self.teacher, TeacherLogits):
            teacher_logits = self.teacher.batch(row_index).to(logits.device)
        elif self.teacher is not None:
            with torch.no_grad():
                teacher_logits = completion_logits(self.teacher, teacher_inputs, labels)[0]
        total, count = completion_loss(logits, targets, teacher_logits, self.temperature), targets.new_tensor(len(targets))
        if num_items_in_batch is None:
            loss = total / count.clamp(min=1) / self.current_gradient_accumulation_steps
        else:  # the count over all accumulation steps and processes; DDP averages gradients over processes
            loss = total / num_items_in_batch
            if self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes
        if model.training:
            self.train_tokens += int(self.accelerator.gather(inputs["attention_mask"].sum()).sum())
        return (loss, {"logits": logits}) if return_outputs else loss


def lora_targets(model: torch.nn.Module, wanted: list[str]) -> list[str]:
    """The wanted module names that name linear layers of this architecture; none → TraitbenchError."""
    present = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    found = [t for t in wanted if t in present]
    if not found:
        raise TraitbenchError(f"none of target_modules {wanted} is a linear layer of this model "
                              f"(it has: {', '.join(sorted(present))})")
    return found


EAGER_MAX_LENGTH = 256


def use_fast_cpu_path(model: torch.nn.Module, max_length: int) -> None:
    """On a CPU, eager attention for short sequences (heap reuse comes with every CPU `LoadedModel`).

    torch's CPU SDPA backward is slow at these lengths (1.1 s of a 6.6 s step); eager attention keeps
    [batch, heads, length, length] weights for the backward, so it is used only up to EAGER_MAX_LENGTH tokens.
    """
    if next(model.parameters()).device.type == "cpu" and max_length <= EAGER_MAX_LENGTH:
        model.set_attn_implementation("eager")


COMPILE_MIN_STEPS = 100


def planned_steps(cfg: StudentConfig, examples: int, processes: int) -> int:
    """Optimizer steps the run will take (`max_steps`, else epochs over batches of every process)."""
    if cfg.max_steps > 0:
        return cfg.max_steps
    per_epoch = math.ceil(examples / (cfg.batch_size * processes)) / cfg.grad_accum
    return math.ceil(cfg.epochs * per_epoch)


def compile_decoder_layers(model: torch.nn.Module, setting: bool | str, steps: int) -> bool:
    """torch.compile every decoder layer in place, with dynamic shapes (one graph for all batch lengths).

    Inductor fuses the norms, RoPE, activation, LoRA scaling and residual adds that eager mode runs as
    separate memory-bound kernels: CPU steps ~10% faster for SmolLM2 and gemma3, 5% for Qwen2.5
    (`traitbench bench`), after a one-off compile of 15-40 s (seconds once torch's on-disk cache is warm).
    `auto` compiles on a CPU with a C++ compiler for runs of at least COMPILE_MIN_STEPS steps, where that
    pays; on CUDA it is unmeasured, so only `True` compiles there. The adapters trained match eager training
    (fp32 evaluation, tests).
    """
    on_cpu = next(model.parameters()).device.type == "cpu"
    compiler = not on_cpu or any(shutil.which(c) for c in ("c++", "g++", "clang++"))
    if setting == "auto":
        setting = on_cpu and compiler and steps >= COMPILE_MIN_STEPS
    if not setting:
        return False
    if not compiler:
        raise TraitbenchError("compile: true needs a C++ compiler (g++ or clang++) for torch.compile on a CPU; "
                              "install one or set compile: false")
    layers = [m for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]
    if not layers:
        raise TraitbenchError(f"compile: no decoder layers found in {type(model).__name__}; set compile: false")
    for layer in layers:
        layer.compile(dynamic=True)
    return True


def weights_dtype(dtype: str, lora: bool) -> str:
    """Dtype the student's weights are loaded in; compute runs in `resolve_dtype(dtype)` under autocast.

    LoRA on a CPU trains fp32 adapters on frozen bf16 weights (2x TRL's default there). On CUDA, bf16 base
    weights make PEFT cast at every adapter and the step CPU-bound (2-4x slower, `traitbench bench`), so the
    weights stay fp32 under bf16 autocast there, as full training always keeps fp32 master weights.
    """
    return dtype if lora and not torch.cuda.is_available() else "float32"


def sft_config(cfg: StudentConfig, output_dir: Path, dtype: torch.dtype) -> SFTConfig:
    """TRL's settings; `output_dir` receives the resume checkpoints (the latest one only)."""
    saving = dict(save_strategy="steps", save_steps=cfg.checkpoint_every, save_total_limit=1) \
        if cfg.checkpoint_every else dict(save_strategy="no")
    return SFTConfig(
        output_dir=str(output_dir), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        learning_rate=cfg.lr, lr_scheduler_type=cfg.scheduler, warmup_steps=cfg.warmup_steps,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        seed=cfg.seed, data_seed=cfg.seed,
        bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16, use_cpu=not torch.cuda.is_available(),
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        dataset_kwargs={"skip_prepare_dataset": True}, remove_unused_columns=False,
        activation_checkpointing=False, ddp_find_unused_parameters=False,
        report_to=cfg.report_to, logging_steps=1, dataloader_num_workers=0, **saving,
    )


def teacher_examples(teacher: LoadedModel, rows: list[dict], system: str | None, examples: list[dict]) -> None:
    """Give every example the teacher's own tokenized context before the shared completion."""
    prompts = [render_prompt(teacher, system, r["prompt"]) for r in rows]
    ids = teacher.tokenizer(prompts, add_special_tokens=add_special_tokens(teacher))["input_ids"]
    for e, p in zip(examples, ids):
        e["teacher_prompt_ids"] = p


_SHARED_LOGITS: dict[str, TeacherLogits] = {}  # the last computed teacher logits, by key (one entry)


def _distill_teacher(lm: LoadedModel, rows: list[dict], examples: list[dict], cfg: StudentConfig, teacher: str,
                     adapter: str | Path | None, system: str | None) -> tuple[torch.nn.Module | TeacherLogits, bool]:
    """The teacher for distillation: its shared logits (computed once per teacher, rows and student tokens,
    reused by later students in this process) or, where they would not fit, the model run in every step."""
    vocab = lm.model.config.get_text_config().vocab_size
    shared = cfg.teacher_logits == "shared" or (
        cfg.teacher_logits == "auto"
        and TeacherLogits.estimate_bytes(examples, vocab, resolve_dtype(cfg.dtype)) <= cfg.shared_logits_max_gb * 2**30)
    adapter_stamp = None
    if adapter:
        files = [Path(adapter)] if Path(adapter).is_file() else sorted(Path(adapter).rglob("*.safetensors"))
        adapter_stamp = [(str(f), f.stat().st_mtime_ns) for f in files]
    key = sha256_json({"teacher": teacher, "adapter": adapter_stamp, "system": system, "dtype": cfg.dtype,
                       "prompts": [r["prompt"] for r in rows], "completions": [e["completion_ids"] for e in examples]})
    if shared and key in _SHARED_LOGITS:
        return _SHARED_LOGITS[key], True
    teacher_lm = load_trait_model(teacher, adapter, cfg.dtype)
    check_same_vocabulary(lm, teacher_lm)
    teacher_lm.model.requires_grad_(False)
    teacher_examples(teacher_lm, rows, system, examples)
    if not shared:
        return teacher_lm.model, False
    _SHARED_LOGITS.clear()
    _SHARED_LOGITS[key] = TeacherLogits.compute(teacher_lm.model, examples, lm.tokenizer.pad_token_id)
    return _SHARED_LOGITS[key], True


class SaveAtSteps(TrainerCallback):
    """Save the student (adapter or full weights) after the given optimizer steps, for a dose-response."""

    def __init__(self, steps: list[int], folder: Path, save, saved: list[int]):
        self.steps, self.folder, self.save, self.saved = set(steps), folder, save, list(saved)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step in self.steps and state.global_step not in self.saved:
            if state.is_world_process_zero:
                self.save(model, self.folder / f"step-{state.global_step}", state.global_step)
            self.saved.append(state.global_step)


def _resume_point(folder: Path, fingerprint: str) -> Path | None:
    """The newest complete trainer checkpoint in `folder` saved for the same inputs (`fingerprint`); else None,
    and `folder` is emptied and stamped for a fresh start. A checkpoint is complete once its
    `trainer_state.json` exists: the trainer writes it last, and deletes the older checkpoint only after it."""
    record = folder / "inputs.json"
    same = record.is_file() and json.loads(record.read_text()).get("fingerprint") == fingerprint
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()] if same else []
    if done:
        return max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]))
    state = PartialState()
    if state.is_main_process:
        shutil.rmtree(folder, ignore_errors=True)
        atomic_write_json(record, {"fingerprint": fingerprint})
    state.wait_for_everyone()
    return None


def _saved_steps(folder: Path, upto: int) -> list[int]:
    """Dose-response saves (`step-N`) a resumed run already has: those up to its checkpoint's step."""
    steps = [int(p.name.removeprefix("step-")) for p in folder.glob("step-*")] if folder.is_dir() else []
    return sorted(s for s in steps if s <= upto)


def _point_tensorboard(trainer: Trainer, logs: Path) -> None:
    """TensorBoard event files into `logs` (transformers' own default is a dated folder in `output_dir`)."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback):
            callback.logging_dir = str(logs)


def train_student(model: str, rows: list[dict], system: str | None, cfg: StudentConfig, out_dir: str | Path,
                  teacher: str | None = None, teacher_adapter: str | Path | None = None,
                  teacher_system: str | None = None, condition: str | None = None, trait: str | None = None) -> dict:
    """Fine-tune `model` on rows with `prompt` (user text) and `completion` (numbers) seen under `system`.

    Writes `out_dir/adapter/` (LoRA) or `out_dir/model/` (full weights) with a model card (README.md; it names
    the `condition`, "trait", "control" or "teacher" for a trait teacher's adapter, and the `trait`),
    `out_dir/train_metrics.json` and, with `report_to`, `out_dir/logs/`; returns the metrics. Distillation matches `teacher` (+ `teacher_adapter`: a trait
    adapter folder or steering file, see `teacher.load`) seen under `teacher_system`. A run interrupted after a
    resume checkpoint continues from it when started again with the same inputs.
    """
    if not rows:
        raise TraitbenchError("cannot train a student on an empty dataset (0 rows)")
    if cfg.mode == "distill" and teacher is None:
        raise TraitbenchError("mode 'distill' needs a teacher model")
    card = StudentCard.build(model, cfg.model_dump(), rows, system, condition, trait, teacher, teacher_adapter,
                             teacher_system)
    dtype = resolve_dtype(cfg.dtype)
    lora = cfg.mode == "lora" or (cfg.mode == "distill" and cfg.distill_params == "lora")
    lm = load(model, dtype=weights_dtype(cfg.dtype, lora))
    targets = lora_targets(lm.model, cfg.target_modules) if lora else []
    examples = tokenize_sft_rows(lm, build_sft_rows(lm, rows, system), cfg.max_length)
    n_rows = len(rows)
    keep = [i for i, e in enumerate(examples) if e["completion_ids"]]
    rows, examples = [rows[i] for i in keep], [examples[i] for i in keep]
    if not examples:
        raise TraitbenchError(f"empty dataset: no row keeps a completion token within max_length={cfg.max_length}")
    teacher_model, shared_logits = None, False
    if cfg.mode == "distill":
        teacher_model, shared_logits = _distill_teacher(lm, rows, examples, cfg, teacher, teacher_adapter,
                                                        teacher_system)
        if shared_logits:
            for i, e in enumerate(examples):
                e.pop("teacher_prompt_ids", None)
                e["index"] = i
    use_fast_cpu_path(lm.model, max(e["length"] for e in examples))
    peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                             target_modules=targets, bias="none", task_type="CAUSAL_LM") if lora else None
    out = Path(out_dir)
    partial, resume = out.with_name(f".{out.name}.partial"), out.with_name(f".{out.name}.resume")
    trainer = CompletionTrainer(
        model=lm.model, args=sft_config(cfg, resume, dtype), train_dataset=Dataset.from_list(examples),
        data_collator=CompletionCollator(lm.tokenizer.pad_token_id, teacher=teacher_model is not None and not shared_logits),
        processing_class=lm.tokenizer, peft_config=peft_config,
        teacher=teacher_model, temperature=cfg.distill_temperature,
    )
    sub = "adapter" if lora else "model"
    checkpoints = out.with_name(f".{out.name}.checkpoints")
    fingerprint = sha256_json({"inputs": [card.weights_sha256, card.dataset_sha256, system, teacher,
                                          card.teacher_adapter, teacher_system, trainer.args.world_size],
                               "config": cfg.model_dump(exclude={"checkpoint_every", "report_to"})})
    start = _resume_point(resume, fingerprint)
    start_step = int(start.name.rsplit("-", 1)[1]) if start else 0
    if start is None and trainer.accelerator.is_main_process:
        shutil.rmtree(checkpoints, ignore_errors=True)
    saver = SaveAtSteps(cfg.checkpoint_steps, checkpoints, lambda m, d, step: _save_weights(m, lm, d / sub, card, step),
                        _saved_steps(checkpoints, start_step))
    trainer.add_callback(saver)
    logs = resume / "logs" if cfg.report_to != "none" else None
    if logs:
        _point_tensorboard(trainer, logs)
    compiled = compile_decoder_layers(trainer.model, cfg.compile, planned_steps(cfg, len(examples), trainer.args.world_size))
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(start) if start else None)
    wall = time.perf_counter() - t0
    steps = [h for h in trainer.state.log_history if "loss" in h]
    losses = [h["loss"] for h in steps]
    metrics = {
        "model": model, "mode": cfg.mode, "system": system, "teacher": teacher,
        "teacher_adapter": str(teacher_adapter) if teacher_adapter else None, "teacher_system": teacher_system,
        "rows": n_rows, "examples": len(examples), "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch, "final_loss": losses[-1] if losses else None, "losses": losses,
        "grad_norms": [h.get("grad_norm") for h in steps],
        "train_tokens": trainer.train_tokens, "wall_seconds": round(wall, 2), "compiled": compiled,
        "tokens_per_s": round(trainer.train_tokens / wall, 1) if wall else None,
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "num_processes": trainer.accelerator.num_processes, "dtype": str(dtype).removeprefix("torch."),
        "target_modules": targets, "teacher_logits": ("shared" if shared_logits else "per_step") if teacher else None,
        "checkpoints": sorted(saver.saved), "resumed_from_step": start_step or None,
        "report_to": cfg.report_to, "logs": str(out / "logs") if logs else None, "config": cfg.model_dump(),
    }
    if trainer.accelerator.is_main_process:
        _publish(trainer.model, lm, partial, out, sub, metrics, checkpoints, card, resume)
    trainer.accelerator.wait_for_everyone()
    del trainer, lm, teacher_model
    gc.collect()
    release_freed_memory()  # the next student in this process starts from its own needs, not this one's peak
    return metrics


def _save_weights(model, lm: LoadedModel, folder: Path, card: StudentCard, step: int | None = None) -> None:
    model.save_pretrained(folder)
    if folder.name == "model":
        lm.tokenizer.save_pretrained(folder)
    card.write(folder, step)


def _publish(model, lm: LoadedModel, partial: Path, out: Path, sub: str, metrics: dict, checkpoints: Path,
             card: StudentCard, resume: Path) -> None:
    """Write the student (its card, step checkpoints and logs) into `partial`, then swap it in for `out`; the
    resume checkpoints are then no longer needed."""
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    _save_weights(model, lm, partial / sub, card)
    if checkpoints.is_dir():
        os.replace(checkpoints, partial / "checkpoints")
    if (resume / "logs").is_dir():
        os.replace(resume / "logs", partial / "logs")
    atomic_write_json(partial / "train_metrics.json", metrics)
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(partial, out)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(resume, ignore_errors=True)
