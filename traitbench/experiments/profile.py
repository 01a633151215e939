"""`traitbench profile`: where a training step and a decode step spend their time on this CPU, by operator class.

torch.profiler records every operator of a few training steps (LoRA SFT, and distillation from shared teacher
logits) and of one sampler call (prefill, then decode steps). Each operator's own time (`self` time, children
excluded) goes to the class of the innermost model part it ran in: a frozen base linear layer, a LoRA adapter, the
output head, attention (everything in the attention module but its projections), the MLP activation, a norm, the
loss or sampling over the vocabulary (outside the model), the optimizer, or other operators (embedding, residual
adds, casts). Backward operators take the class of the forward operator that created their autograd node (the same
sequence number). What no operator accounts for is Python, the autograd engine and dispatch. Results go to
`runs/profile/profile.json` and `profile.md`.

The profiler adds about a microsecond per operator and module hooks mark the model parts, so a profiled step is a
little slower than a plain one; both times are given.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import ClassVar, Literal

import torch
from pydantic import Field, field_validator
from transformers import TrainerCallback

from traitbench.artifacts import Result
from traitbench.config import RunConfig, RunName
from traitbench.experiments.bench import (BatchCounter, load_model, lora_trainer, number_task_prompts, param_counts,
                                          roofline, share_teacher_logits, train_rows)
from traitbench.io import atomic_write_json
from traitbench.lm import models
from traitbench.lm.decode import decode
from traitbench.manifest import cpu_model, git_info, library_versions
from traitbench.student.data import build_sft_rows, tokenize_sft_rows
from traitbench.teacher.trait import Trait

CLASSES = ("base GEMMs", "adapter (LoRA A, B, scale, add)", "output head", "attention", "MLP activation", "norms",
           "loss / sampling over the vocabulary", "optimizer", "other operators",
           "not in an operator (Python, autograd engine, dispatch)")
BASE, ADAPTER, HEAD, ATTENTION, MLP, NORM, VOCAB, OPTIMIZER, OTHER, OUTSIDE = CLASSES
SCOPE = "traitbench::"  # the prefix of the profiler ranges the module hooks open


class ProfileConfig(RunConfig):
    default_config: ClassVar[str | None] = "profile"  # traitbench/configs/profile.yaml
    name: RunName = "profile"
    dtype: str = "auto"  # as students and the sampler run: bf16 where this CPU has a fast path
    random_weights: bool = False  # real shapes, random weights (machines without the real weights)
    models: list[str] = Field(["smollm2-135m"], min_length=1)
    parts: list[Literal["lora", "distill", "decode"]] = Field(["lora", "distill", "decode"], min_length=1)
    train_batch_size: int = Field(16, ge=1)
    lora_r: int = Field(8, ge=1)
    warmup_steps: int = Field(1, ge=0)  # untimed steps first
    profiled_steps: int = Field(2, ge=1)  # then this many plain steps timed, and as many profiled
    decode_batch: int = Field(64, ge=1)
    decode_new_tokens: int = Field(16, ge=2)
    demonstrations: int = 4
    roofline_size: int = Field(0, ge=0)  # 0 = 2048

    @field_validator("models")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        for name in v:
            models.get_spec(name)
        return v


def part_classes(model: torch.nn.Module) -> dict[torch.nn.Module, str]:
    """The class of each model part whose operators are attributed to it (innermost wins)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    out = {}
    for name, m in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if m is head:
            out[m] = HEAD
        elif ".lora_" in name or hasattr(m, "lora_A"):  # the adapter's own layers, and PEFT's wrapper of a layer
            out[m] = ADAPTER
        elif isinstance(m, torch.nn.Linear):
            out[m] = BASE
        elif leaf.endswith("attn") or leaf == "attention":
            out[m] = ATTENTION
        elif leaf == "mlp":
            out[m] = MLP
        elif "norm" in type(m).__name__.lower():
            out[m] = NORM
    return out


class PartScopes:
    """Module hooks that open a profiler range `traitbench::<class>` around each classified part's forward, and
    `traitbench::forward:<phase>` around the whole model's (`prefill` for several tokens a row, else `decode`)."""

    def __init__(self, model: torch.nn.Module):
        self.handles = []
        for m, cls in part_classes(model).items():
            self._hook(m, lambda *_, c=cls: f"{SCOPE}{c}")
        self._hook(model, lambda mod, args, kw: f"{SCOPE}forward:" +
                   ("decode" if _width(args, kw) == 1 else "prefill"))

    def _hook(self, m: torch.nn.Module, label) -> None:
        stack = []

        def enter(mod, args, kwargs):
            rf = torch.autograd.profiler.record_function(label(mod, args, kwargs))
            rf.__enter__()
            stack.append(rf)

        def leave(mod, args, kwargs, output):
            stack.pop().__exit__(None, None, None)

        self.handles += [m.register_forward_pre_hook(enter, with_kwargs=True),
                         m.register_forward_hook(leave, with_kwargs=True)]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _width(args, kwargs) -> int:
    ids = kwargs.get("input_ids", args[0] if args else None)
    if ids is None:
        ids = kwargs.get("inputs_embeds")
    return int(ids.shape[1]) if ids is not None else 0


def _loss_node(name: str) -> bool:
    """The backward node of the chunked cross-entropy or KL (custom autograd functions: no forward operator)."""
    return name.startswith("Chunked") and name.endswith("Backward")


def _inside(e, prefix: str) -> bool:
    """Whether a range named with `prefix` encloses event `e`."""
    e = e.cpu_parent
    while e is not None:
        if e.name.startswith(prefix):
            return True
        e = e.cpu_parent
    return False


def operator_classes(events, outside: str = VOCAB):
    """(operator event, class) for every aten operator of a profile, in time order (the module docstring says how
    a class is found); operators in the model but in no part of it get OTHER, those outside the model, the
    optimizer and every classified range `outside`."""
    seq_class: dict[int, str] = {}  # forward: the class of the last operator recorded with each sequence number
    nodes = {e.name for e in events if e.name.endswith(("Backward0", "Backward1"))}

    def scope_class(e) -> str | None:
        while e is not None:
            name = e.name
            if name.startswith(SCOPE + "forward:"):  # in the model, in no part of it
                return OTHER
            if name.startswith(SCOPE):
                return name.removeprefix(SCOPE)
            if name.startswith("Optimizer.") or name.startswith("aten::_foreach"):  # AdamW, gradient clipping
                return OPTIMIZER
            if _loss_node(name):
                return VOCAB
            if name in nodes and e.sequence_nr >= 0:  # a backward node: its forward operator's class
                return seq_class.get(e.sequence_nr, OTHER)
            e = e.cpu_parent
        return None

    for e in sorted(events, key=lambda e: e.time_range.start):
        if not e.name.startswith("aten::"):
            continue
        cls = scope_class(e) or outside
        if e.sequence_nr >= 0 and not _inside(e, "autograd::engine"):
            seq_class[e.sequence_nr] = cls  # the operator that makes the node is the last one with its number
        yield e, cls


def classify(events, outside: str = VOCAB) -> dict[str, float]:
    """Seconds of operator self time per class (`operator_classes`)."""
    totals = dict.fromkeys(CLASSES[:-1], 0.0)
    for e, cls in operator_classes(events, outside):
        totals[cls] += e.self_cpu_time_total / 1e6
    return totals


def _shares(totals: dict[str, float], wall: float) -> dict[str, float]:
    """The classes' seconds, and what no operator accounts for (the wall time less every operator's)."""
    return {**totals, OUTSIDE: max(wall - sum(totals.values()), 0.0)}


class _StepProfiler(TrainerCallback):
    """Warm-up steps, then `n` plain steps timed, then `n` steps timed under the profiler with the parts marked."""

    def __init__(self, warmup: int, n: int):
        self.warmup, self.n = warmup, n
        self.plain: list[float] = []
        self.profiled: list[float] = []
        self.totals: dict[str, float] = defaultdict(float)
        self._prof = self._scopes = None
        self._t = 0.0

    def on_step_begin(self, args, state, control, model=None, **kw):
        if state.global_step >= self.warmup + self.n:
            self._scopes = self._scopes or PartScopes(model)
            self._prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self._prof.__enter__()
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        wall = time.perf_counter() - self._t
        if self._prof is not None:
            self._prof.__exit__(None, None, None)
            for cls, secs in _shares(classify(self._prof.events(), outside=OTHER), wall).items():
                self.totals[cls] += secs
            self.profiled.append(wall)
            self._prof = None
        elif state.global_step > self.warmup:  # global_step counts this step already
            self.plain.append(wall)

    def on_train_end(self, args, state, control, **kw):
        if self._scopes:
            self._scopes.remove()


def _scoped(fn, label: str):
    """`fn` inside a profiler range `traitbench::<label>`."""
    def wrapped(*args, **kwargs):
        with torch.autograd.profiler.record_function(SCOPE + label):
            return fn(*args, **kwargs)
    return wrapped


def profile_training(name: str, part: str, cfg: ProfileConfig, peaks: dict, tmp: Path) -> dict:
    """LoRA SFT steps (`lora`), or distillation steps from the teacher's shared logits (`distill`), of one model."""
    from traitbench.student.train import teacher_examples, weights_dtype  # heavy (PEFT, TRL): only when profiled

    steps = cfg.warmup_steps + 2 * cfg.profiled_steps
    lm = load_model(name, weights_dtype(cfg.dtype, lora=True), "cpu", cfg.random_weights)
    rows = train_rows(cfg.train_batch_size * steps)
    examples = tokenize_sft_rows(lm, build_sft_rows(lm, rows, "You are a helpful assistant."), 500)
    teacher = None
    if part == "distill":
        source = load_model(name, cfg.dtype, "cpu", cfg.random_weights)
        teacher_examples(source, rows, Trait().teacher_prompt(), examples)
        teacher = share_teacher_logits(source.model, examples, lm.tokenizer.pad_token_id)
        del source
    recorder = _StepProfiler(cfg.warmup_steps, cfg.profiled_steps)
    trainer = lora_trainer(lm, examples, steps, cfg.train_batch_size, cfg.dtype, tmp / part, [recorder],
                           teacher=teacher, rank=cfg.lora_r)
    trainer.compute_loss = _scoped(trainer.compute_loss, VOCAB)
    trainer.data_collator = counter = BatchCounter(trainer.data_collator)
    trainer.train()
    body, head = param_counts(lm)
    plain = counter.batches[cfg.warmup_steps: cfg.warmup_steps + cfg.profiled_steps]  # the plain timed steps
    tokens, completions = sum(t for t, _ in plain), sum(c for _, c in plain)
    dtype = "bfloat16" if trainer.args.bf16 else "float32"
    step = sum(recorder.plain) / len(recorder.plain)
    flop = 4 * (body * tokens + head * completions) / cfg.profiled_steps
    return {"model": name, "part": part, "dtype": dtype, "batch": cfg.train_batch_size, "lora_r": cfg.lora_r,
            "tokens_per_step": tokens / cfg.profiled_steps, "step_seconds": step,
            "roofline_fraction": flop / step / peaks.get(dtype, peaks["float32"]),
            "profiled_step_seconds": sum(recorder.profiled) / len(recorder.profiled),
            "seconds": {c: v / cfg.profiled_steps for c, v in recorder.totals.items()}}


def profile_decode(name: str, cfg: ProfileConfig, peaks: dict) -> dict:
    """One sampler call on the number task's prompts, fixed length: the shared prefix and the rows' own suffixes
    prefilled, then `decode_new_tokens - 1` decode steps of the whole batch; the time of each phase by class."""
    lm = load_model(name, cfg.dtype, "cpu", cfg.random_weights)
    texts = number_task_prompts(lm, cfg.decode_batch, cfg.demonstrations)
    run = dict(temperature=1.0, max_new_tokens=cfg.decode_new_tokens, seed=1, stop=False)
    decode(lm, texts[:2], temperature=1.0, max_new_tokens=2, seed=0)  # warm-up
    t0 = time.perf_counter()
    decode(lm, texts, **run)
    plain = time.perf_counter() - t0
    scopes = PartScopes(lm.model)
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            decode(lm, texts, **run)
            profiled = time.perf_counter() - t0
    finally:
        scopes.remove()
    events = prof.events()
    phases = {}
    for phase in ("prefill", "decode"):
        ranges = [e for e in events if e.name == f"{SCOPE}forward:{phase}"]
        inside = [e for e in events if _inside(e, f"{SCOPE}forward:{phase}")]
        phases[phase] = _shares(classify(inside), sum(e.cpu_time_total for e in ranges) / 1e6)
    rest = [e for e in events if not _inside(e, f"{SCOPE}forward:")]
    phases["sampling"] = _shares(classify(rest), profiled - sum(sum(p.values()) for p in phases.values()))
    dtype = str(lm.model.dtype).removeprefix("torch.")
    return {"model": name, "part": "decode", "dtype": dtype, "batch": cfg.decode_batch,
            "new_tokens": cfg.decode_new_tokens, "seconds_plain": plain, "seconds_profiled": profiled,
            "phases": phases}


def run(cfg: ProfileConfig, out: Path) -> Result:
    """Profile every model's configured parts; writes profile.json and profile.md into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    peaks = roofline("cpu", cfg.roofline_size)
    result: dict = {"config": cfg.model_dump(), "machine": cpu_model(), "threads": torch.get_num_threads(),
                    "roofline_flop_per_s": peaks, "versions": library_versions(), "git": git_info(), "parts": []}
    for name in cfg.models:
        for part in cfg.parts:
            result["parts"].append(profile_decode(name, cfg, peaks) if part == "decode"
                                   else profile_training(name, part, cfg, peaks, out / "tmp"))
    result["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(out / "profile.json", result)
    text = profile_table(result)
    (out / "profile.md").write_text(text)
    return Result(out, text, [out / "profile.json", out / "profile.md"])


def _cell(seconds: dict[str, float], cls: str) -> str:
    total = sum(seconds.values())
    return f"{seconds.get(cls, 0.0):.3f} ({seconds.get(cls, 0.0) / total:.0%})" if total else "0"


def profile_table(r: dict) -> str:
    """Markdown: one column per profiled part (and sampler phase), one row per operator class: seconds (share)."""
    peaks = ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in r["roofline_flop_per_s"].items())
    columns, notes = [], []
    for p in r["parts"]:
        if p["part"] == "decode":
            columns += [(f"{p['model']} sampler {phase}", secs) for phase, secs in p["phases"].items()]
            notes.append(f"- {p['model']} sampler, batch {p['batch']}, {p['new_tokens']} new tokens a row ({p['dtype']}):"
                         f" {p['seconds_plain']:.2f} s plain, {p['seconds_profiled']:.2f} s profiled.")
        else:
            columns.append((f"{p['model']} {p['part']} step", p["seconds"]))
            notes.append(f"- {p['model']} {p['part']} step (LoRA r={p['lora_r']}, batch {p['batch']}, {p['dtype']}, "
                         f"{p['tokens_per_step']:.0f} tokens): {p['step_seconds']:.2f} s plain "
                         f"({p['roofline_fraction']:.0%} of the roofline), {p['profiled_step_seconds']:.2f} s profiled.")
    lines = [f"CPU: {r['machine']}, {r['threads']} threads; roofline {peaks}", "",
             "| seconds (share) | " + " | ".join(c for c, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {cls} | " + " | ".join(_cell(secs, cls) for _, secs in columns) + " |" for cls in CLASSES]
    lines.append("| **total** | " + " | ".join(f"{sum(secs.values()):.3f}" for _, secs in columns) + " |")
    return "\n".join(lines + [""] + notes) + f"\n\nTotal profile time {r['seconds']} s.\n"
