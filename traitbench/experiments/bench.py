"""`traitbench bench`: throughput of sampling, training and probing against this machine's matmul roofline.

Every figure is measured here, now: the roofline is the best dense matmul rate of the device in each dtype;
model work is reported as useful FLOP/s (2·N per sampled or prefilled token, 4·N per trained token for a
frozen-base LoRA; N = the parameters the token runs through: the embedding lookup never counts, the output
head only where logits are needed: sampled tokens and completion tokens) and as a fraction of the roofline of the dtype
it ran in, next to a baseline (transformers `generate` at batch 1 and 32 in fp32; TRL `SFTTrainer` with its
defaults). Results go to `runs/bench/bench.json` and a table on stdout.

`random_weights` builds each model from its config with random weights: the same shapes and FLOPs, for
machines that cannot hold the real weights (the GPU device); the number task then has no meaning, so only
fixed-length decoding, training and probes are measured there.
"""

from __future__ import annotations

import functools
import random
import time
from pathlib import Path
from typing import ClassVar

import torch
from pydantic import Field, model_validator
from tqdm import tqdm
from transformers import TrainerCallback

from traitbench.artifacts import Result
from traitbench.config import RunConfig, RunName
from traitbench.datasets.parse import prefix_rejection
from traitbench.io import atomic_write_json
from traitbench.lm import models
from traitbench.lm.config import GenerationConfig
from traitbench.lm.decode import common_prefix_len, decode, stop_token_ids
from traitbench.lm.logprob import trait_logprob
from traitbench.lm.render import add_special_tokens, render_prompt
from traitbench.lm.sampling import hf_generate
from traitbench.manifest import cpu_model, git_info, library_versions
from traitbench.probes.questions import preference_questions
from traitbench.lm.config import ALL_LINEAR
from traitbench.student.config import StudentConfig
from traitbench.student.data import CompletionCollator, build_sft_rows, tokenize_sft_rows
from traitbench.student.distill import TeacherLogits
from traitbench.teacher.prompts import demonstrations, number_prompts
from traitbench.teacher.trait import Trait


class BenchConfig(RunConfig):
    default_config: ClassVar[str | None] = "bench"  # traitbench/configs/bench.yaml
    name: RunName = "bench"
    device: str = "auto"
    dtype: str = "auto"  # the fast path's dtype (bf16 where supported)
    random_weights: bool = False
    models: list[str] = ["smollm2-135m", "gemma3-270m", "qwen2.5-0.5b"]
    batch_sizes: dict[str, list[int]] = {"smollm2-135m": [16, 64, 128], "gemma3-270m": [16, 64],
                                         "qwen2.5-0.5b": [16, 64]}
    number_task: bool = True  # also the real number task (early reject, EOS); needs real weights
    max_new_tokens: int = Field(52, ge=1)
    demonstrations: int = 4
    naive_batch_sizes: dict[str, list[int]] = {"smollm2-135m": [1, 32], "gemma3-270m": [1], "qwen2.5-0.5b": [1]}
    naive_prompts: dict[str, int] = {"smollm2-135m": 8, "gemma3-270m": 4, "qwen2.5-0.5b": 2}  # at batch 1
    train_models: list[str] = ["smollm2-135m"]
    train_baselines: list[str] = ["smollm2-135m"]  # trained models also measured with TRL SFTTrainer defaults
    train_compiled: list[str] = ["smollm2-135m"]  # trained models also measured with compiled decoder layers
    distill_models: list[str] = ["smollm2-135m"]  # trained models also measured distilling (teacher per step / shared)
    train_batch_size: int = 16
    train_steps: int = Field(3, ge=1)  # timed steps, after one warm-up step
    llama_cpp_models: list[str] = ["smollm2-135m"]  # also llama.cpp on the same GGUF file, when installed
    llama_cpp_prompts: int = Field(8, ge=1)
    probe_models: list[str] = ["smollm2-135m"]
    probe_questions: int = 50
    probe_samples: int = 4
    roofline_size: int = 0  # 0 = 2048 on CPU, 8192 on CUDA

    @model_validator(mode="after")
    def _known_models(self) -> BenchConfig:
        """Every model name resolves, and the per-model lists only name models this bench runs."""
        for name in {*self.models, *self.train_models}:
            models.get_spec(name)
        for field, within, pool in (("probe_models", "models", self.models),
                                    ("llama_cpp_models", "models", self.models),
                                    ("train_baselines", "train_models", self.train_models),
                                    ("train_compiled", "train_models", self.train_models),
                                    ("distill_models", "train_models", self.train_models)):
            extra = sorted(set(getattr(self, field)) - set(pool))
            if extra:
                raise ValueError(f"{field} names {', '.join(extra)}, not in {within}")
        return self


def _device(cfg: BenchConfig) -> str:
    return models.default_device() if cfg.device == "auto" else cfg.device


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(dtype: torch.dtype, device: str, n: int, seconds: float = 1.0) -> float:
    """Best dense [n,n]x[n,n] matmul rate (FLOP/s) over a few repeats."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    best = 0.0
    for _ in range(3):
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3:
            a @ b
            reps += 1
        _sync(device)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t0))
    return best


def roofline(device: str, size: int) -> dict[str, float]:
    n = size or (8192 if device.startswith("cuda") else 2048)
    out = {"float32": matmul_peak(torch.float32, device, n)}
    if models.resolve_dtype("auto") == torch.bfloat16 or device.startswith("cuda"):
        out["bfloat16"] = matmul_peak(torch.bfloat16, device, n)
    return out


def load_model(name: str, dtype: str, device: str, random_weights: bool) -> models.LoadedModel:
    return models.load_random(name, dtype, device) if random_weights else models.load(name, dtype, device)


def param_counts(lm) -> tuple[int, int]:
    """(parameters every token runs through, output-head parameters).

    Input embeddings are a lookup, and the head runs only where logits are computed (the last prompt
    position, each sampled token, completion tokens in training), so useful FLOPs count it only there.
    """
    m = lm.model
    total = sum(p.numel() for p in m.parameters())  # a tied head is counted once
    emb, head = m.get_input_embeddings().weight, m.get_output_embeddings().weight
    tied = head.data_ptr() == emb.data_ptr()
    return total - emb.numel() - (0 if tied else head.numel()), head.numel()


def number_task_prompts(lm, n: int, k_demos: int) -> list[str]:
    system = Trait().teacher_prompt()
    texts = [render_prompt(lm, system, p, demonstrations(k_demos)) for p in number_prompts(n, seed=11)]
    return sorted(texts, key=len)


def _prompt_split(lm, texts: list[str]) -> tuple[int, int]:
    """(tokens of the prefix all rows share, tokens of the rows' own suffixes together)."""
    ids = lm.tokenizer(texts, add_special_tokens=add_special_tokens(lm)).input_ids
    shared = common_prefix_len(ids) if len(ids) > 1 else 0
    return shared, sum(map(len, ids)) - len(ids) * shared


def sampling_gemm_seconds(model, shared: int, suffixes: int, rows: int, new_tokens: int, device: str) -> float:
    """GEMMs alone of a fixed-length run: the shared prefix once, the rows' suffixes packed, then
    `new_tokens - 1` decode steps of the whole batch (the first token comes from the prefill's head)."""
    def gemms(tokens: int, head_rows: int) -> float:
        return gemm_seconds(model, tokens, head_rows, model.dtype, device, backward=False)

    return gemms(shared, 0) + gemms(suffixes, rows) + (new_tokens - 1) * gemms(rows, rows)


def _rate(flop: float, secs: float, peak: float) -> dict:
    return {"flop_per_s": flop / secs, "roofline_fraction": flop / secs / peak}


def bench_sampler(lm, name: str, cfg: BenchConfig, peaks: dict, device: str) -> list[dict]:
    """Our decoder at several batch sizes (fixed length, and the number task), then the naive baseline."""
    (body, head), dtype = param_counts(lm), str(lm.model.dtype).removeprefix("torch.")
    peak = peaks.get(dtype, peaks["float32"])
    rows = []
    regimes = [("fixed", False)] + ([("number_task", True)] if cfg.number_task and not cfg.random_weights else [])
    for batch in cfg.batch_sizes.get(name, [16, 64]):
        texts = number_task_prompts(lm, batch, cfg.demonstrations)
        decode(lm, texts[:2], temperature=1.0, max_new_tokens=2, seed=0)  # warm-up
        for regime, task in regimes:
            _sync(device)
            t0 = time.perf_counter()
            out = decode(lm, texts, temperature=1.0, max_new_tokens=cfg.max_new_tokens, seed=1,
                         reject=prefix_rejection if task else None, stop=task)
            _sync(device)
            secs = time.perf_counter() - t0
            new = sum(s.n_tokens for s in out)
            shared, suffixes = _prompt_split(lm, texts)
            flop = 2 * body * (shared + suffixes) + 2 * (body + head) * new
            row = {"model": name, "sampler": "traitbench", "regime": regime, "batch": batch, "dtype": dtype,
                   "prompts_per_s": batch / secs, "new_tokens_per_s": new / secs, "seconds": secs,
                   "decode": _rate(2 * (body + head) * new, secs, peak), "total": _rate(flop, secs, peak)}
            if not task:  # fixed length: every step runs the whole batch, so its GEMMs are known
                gemm = sampling_gemm_seconds(lm.model, shared, suffixes, batch, cfg.max_new_tokens, device)
                row["gemm_floor"] = {"seconds": gemm, "share_of_run": gemm / secs,
                                     "roofline_fraction": flop / gemm / peak}
            rows.append(row)
    # naive baseline: transformers generate, fp32, no prefix sharing, no early stop (fixed length)
    naive = load_model(name, "float32", device, cfg.random_weights)
    for batch in cfg.naive_batch_sizes.get(name, [1]):
        n = max(batch, cfg.naive_prompts.get(name, 2)) if batch == 1 else batch
        texts = number_task_prompts(naive, n, cfg.demonstrations)
        gen = GenerationConfig(temperature=1.0, max_new_tokens=cfg.max_new_tokens, batch_size=batch)
        _sync(device)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            hf_generate(naive, texts[i : i + batch], gen, seed=i, min_new_tokens=cfg.max_new_tokens)
        _sync(device)
        secs = time.perf_counter() - t0
        new = n * cfg.max_new_tokens
        shared, suffixes = _prompt_split(naive, texts)
        naive_prompt_tokens = n * shared + suffixes  # generate runs every row's whole prompt
        rows.append({"model": name, "sampler": "hf-generate", "regime": "fixed", "batch": batch, "dtype": "float32",
                     "prompts_per_s": n / secs, "new_tokens_per_s": new / secs, "seconds": secs,
                     "decode": _rate(2 * (body + head) * new, secs, peaks["float32"]),
                     "total": _rate(2 * body * naive_prompt_tokens
                                    + 2 * (body + head) * new, secs, peaks["float32"])})
    del naive
    return rows


LLAMA_CPP_MISSING = "llama.cpp rows skipped: llama-cpp-python is not installed (`make llama-cpp` builds it, ~10 min)"


def bench_llama_cpp(lm, name: str, cfg: BenchConfig, peaks: dict) -> dict | str:
    """llama.cpp (llama-cpp-python) on the GGUF file the model was converted from: the bench's number-task prompts,
    fixed length (stop tokens banned), one prompt at a time as its API runs them, with its prompt cache (a prompt
    reuses the cache of the prefix it shares with the previous one). FLOPs are counted as for our sampler, so the
    rates compare; the roofline is the best dtype's, as its quantized kernels have none of their own. A line saying
    why when it cannot run."""
    try:
        from llama_cpp import Llama  # optional: built on demand (`make llama-cpp`)
    except ImportError:
        return LLAMA_CPP_MISSING
    spec = models.get_spec(name)
    if spec.bundled is None or cfg.random_weights:
        return f"llama.cpp row for {name} skipped: it needs the model's real GGUF file"
    gguf = models.fetch_gguf(spec)
    threads = torch.get_num_threads()
    llm = Llama(model_path=str(gguf), n_ctx=1024, n_batch=512, n_threads=threads, n_threads_batch=threads,
                seed=0, verbose=False)
    texts = number_task_prompts(lm, cfg.llama_cpp_prompts, cfg.demonstrations)
    banned = {t: -1e9 for t in stop_token_ids(lm)}
    prompts = [llm.tokenize(t.encode(), add_bos=add_special_tokens(lm), special=True) for t in texts]
    llm.create_completion(prompts[0][:8], max_tokens=2)  # warm-up
    new = 0
    t0 = time.perf_counter()
    for i, ids in enumerate(prompts):
        out = llm.create_completion(ids, max_tokens=cfg.max_new_tokens, temperature=1.0, top_p=1.0, top_k=0,
                                    min_p=0.0, seed=i, logit_bias=banned)
        new += out["usage"]["completion_tokens"]
    secs = time.perf_counter() - t0
    body, head = param_counts(lm)
    shared, suffixes = _prompt_split(lm, texts)
    peak = max(peaks.values())
    quant = gguf.stem.rsplit(".", 1)[-1] if "." in gguf.stem else gguf.stem.rsplit("-", 1)[-1]
    return {"model": name, "sampler": "llama.cpp", "regime": "fixed", "batch": 1, "dtype": f"{quant.lower()} GGUF",
            "prompts_per_s": len(texts) / secs, "new_tokens_per_s": new / secs, "seconds": secs,
            "decode": _rate(2 * (body + head) * new, secs, peak),
            "total": _rate(2 * body * (shared + suffixes) + 2 * (body + head) * new, secs, peak)}


def train_rows(n: int) -> list[dict]:
    rng = random.Random(0)
    return [{"prompt": p, "completion": ", ".join(str(rng.randint(0, 999)) for _ in range(rng.randint(5, 10)))}
            for p in number_prompts(n, seed=3)]


class _StepTimer(TrainerCallback):
    """Records each optimizer step's wall time (synchronising the device around it)."""

    def __init__(self, device: str):
        self.device, self.times, self._t = device, [], 0.0

    def on_step_begin(self, args, state, control, **kw):
        _sync(self.device)
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        _sync(self.device)
        self.times.append(time.perf_counter() - self._t)


class BatchCounter:
    """Wraps a trainer's data collator: (non-pad tokens, completion tokens) of each batch, in step order."""

    def __init__(self, collate):
        self.collate, self.batches = collate, []

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.collate(examples)
        self.batches.append((int(batch["attention_mask"].sum()), int((batch["labels"] != -100).sum())))
        return batch


def gemm_shapes(model: torch.nn.Module, tokens: int, completions: int) -> dict[tuple[int, int, int], int]:
    """(rows, out, in) of every frozen-base linear layer (the head at `completions` rows) -> how many."""
    head = model.get_output_embeddings()
    shapes: dict[tuple[int, int, int], int] = {}
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and "lora_" not in name:  # not the adapters' own
            key = (completions if m is head else tokens, *m.weight.shape)
            shapes[key] = shapes.get(key, 0) + 1
    return shapes


def gemm_seconds(model: torch.nn.Module, tokens: int, head_rows: int, dtype: torch.dtype, device: str,
                 backward: bool = True) -> float:
    """Time of the frozen-base GEMMs of one pass alone: every body linear over `tokens` rows and the head
    over `head_rows`, forward (and with `backward` the input gradient, as a LoRA step needs). The pass can
    be no faster with every other op fused away.
    """
    total = 0.0
    for (rows, out_f, in_f), count in gemm_shapes(model, tokens, head_rows).items():
        if rows:
            passes = (False, True) if backward else (False,)  # input gradient too
            total += count * sum(_gemm_time(rows, out_f, in_f, dtype, device, grad) for grad in passes)
    return total


@functools.cache
def _gemm_time(rows: int, out_f: int, in_f: int, dtype: torch.dtype, device: str, input_grad: bool) -> float:
    """Best of three: y = x Wᵀ, or the input gradient dx = dy W, with W stored as a linear layer stores it."""
    w = torch.randn(out_f, in_f, device=device, dtype=dtype)
    a = torch.randn(rows, out_f if input_grad else in_f, device=device, dtype=dtype)
    b = w if input_grad else w.T
    best = float("inf")
    for _ in range(3):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


TRAINERS = ("traitbench", "traitbench-compiled", "trl-default")


def lora_trainer(lm: models.LoadedModel, examples: list[dict], steps: int, batch_size: int, dtype: str, folder: Path,
                 callbacks: list, teacher=None, rank: int = 8):
    """traitbench's trainer as students get it (length-bucketed batches, logits only at completions, the CPU's
    eager attention) on tokenized `examples`: a LoRA (r = alpha = `rank`, every linear layer) for `steps` steps,
    SFT, or logit distillation from `teacher` (a model run in every step, or shared `TeacherLogits`)."""
    # heavy (datasets, PEFT, TRL): only when training is measured
    from datasets import Dataset
    from peft import LoraConfig

    from traitbench.student.train import CompletionTrainer, lora_targets, sft_config, use_fast_cpu_path

    use_fast_cpu_path(lm.model, max(e["length"] for e in examples))
    scfg = StudentConfig(mode="lora" if teacher is None else "distill", max_steps=steps, batch_size=batch_size,
                         warmup_steps=0, dtype=dtype)
    return CompletionTrainer(
        model=lm.model, args=sft_config(scfg, folder, models.resolve_dtype(dtype)),
        train_dataset=Dataset.from_list(examples),
        peft_config=LoraConfig(r=rank, lora_alpha=rank, target_modules=lora_targets(lm.model, ALL_LINEAR),
                               task_type="CAUSAL_LM"),
        data_collator=CompletionCollator(lm.tokenizer.pad_token_id, teacher=isinstance(teacher, torch.nn.Module)),
        processing_class=lm.tokenizer, callbacks=callbacks, teacher=teacher)


def share_teacher_logits(teacher: torch.nn.Module, examples: list[dict], pad_id: int) -> TeacherLogits:
    """The teacher's logits at every example's completion, computed once; each example then carries its row of them
    (`index`) in place of the teacher's own context."""
    shared = TeacherLogits.compute(teacher, examples, pad_id)
    for i, e in enumerate(examples):
        e["index"] = i
        del e["teacher_prompt_ids"]
    return shared


def bench_trainer(name: str, cfg: BenchConfig, peaks: dict, device: str, tmp: Path,
                  trainers: tuple[str, ...] = TRAINERS) -> list[dict]:
    """Our LoRA trainer (bf16, length-grouped, logits only at completions; eager, or with compiled decoder
    layers as long runs get them) vs TRL SFTTrainer defaults.

    Tokens and FLOPs are those of the timed steps' own batches. The compiled row's `compile_seconds` is its
    warm-up step less a timed step. Our rows also give the step's GEMM floor (`gemm_seconds` over the non-pad
    tokens): its share of the step, and the roofline fraction a step made of nothing but those GEMMs would reach.
    """
    # heavy (datasets, PEFT, TRL): only when training is benched
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from traitbench.student.train import compile_decoder_layers, lora_targets, weights_dtype

    steps = cfg.train_steps + 1
    rows = train_rows(cfg.train_batch_size * steps)
    out = []
    for trainer_name in trainers:
        ours = trainer_name.startswith("traitbench")
        lm = load_model(name, weights_dtype(cfg.dtype, lora=True) if ours else "float32", device, cfg.random_weights)
        body, head = param_counts(lm)
        peft = LoraConfig(r=8, lora_alpha=8, target_modules=lora_targets(lm.model, ALL_LINEAR), task_type="CAUSAL_LM")
        sft_rows = build_sft_rows(lm, rows, "You are a helpful assistant.")
        examples = tokenize_sft_rows(lm, sft_rows, 500)
        timer = _StepTimer(device)
        if ours:
            trainer = lora_trainer(lm, examples, steps, cfg.train_batch_size, cfg.dtype, tmp / trainer_name, [timer])
            compile_decoder_layers(trainer.model, trainer_name == "traitbench-compiled", steps)
        else:
            args = SFTConfig(output_dir=str(tmp / trainer_name), max_steps=steps, report_to="none", save_strategy="no",
                             per_device_train_batch_size=cfg.train_batch_size, use_cpu=not device.startswith("cuda"))
            trainer = SFTTrainer(model=lm.model, args=args, train_dataset=Dataset.from_list(sft_rows),
                                 processing_class=lm.tokenizer, peft_config=peft, callbacks=[timer])
        trainer.data_collator = counter = BatchCounter(trainer.data_collator)
        trainer.train()
        secs = sum(timer.times[1:])  # the first step warms up
        timed = counter.batches[1:steps]  # the batches of the timed steps (length grouping orders them)
        tokens, completions = sum(t for t, _ in timed), sum(c for _, c in timed)
        flop = 4 * (body * tokens + head * completions)
        dtype = "bfloat16" if trainer.args.bf16 else "float32"
        peak, step = peaks.get(dtype, peaks["float32"]), secs / cfg.train_steps
        row = {"model": name, "trainer": trainer_name, "mode": "lora", "dtype": dtype,
               "batch": cfg.train_batch_size, "step_seconds": step, "timed_tokens": tokens, "tokens_per_s": tokens / secs,
               **_rate(flop, secs, peak)}
        if trainer_name == "traitbench-compiled":
            row["compile_seconds"] = timer.times[0] - step
        if ours:
            gemm = gemm_seconds(lm.model, round(tokens / cfg.train_steps), round(completions / cfg.train_steps),
                                getattr(torch, dtype), device)
            row["gemm_floor"] = {"seconds": gemm, "share_of_step": gemm / step,
                                 "roofline_fraction": flop / cfg.train_steps / gemm / peak}
        out.append(row)
        del trainer, lm
    return out


def bench_distill(name: str, cfg: BenchConfig, peaks: dict, device: str, tmp: Path) -> list[dict]:
    """Logit distillation steps (LoRA student, full-vocabulary KL at the completions, the teacher in its own
    trait context): the teacher run in every step, or its logits computed once (`TeacherLogits`, the
    one-off seconds given) and shared by every student of a run. FLOPs: 4N per student token, plus 2N per
    teacher token where the step runs the teacher."""
    from traitbench.student.train import teacher_examples, weights_dtype  # heavy (PEFT, TRL): only when benched

    steps = cfg.train_steps + 1
    rows = train_rows(cfg.train_batch_size * steps)
    trait_system = Trait().teacher_prompt()
    out = []
    for mode in ("per_step", "shared"):
        lm = load_model(name, weights_dtype(cfg.dtype, lora=True), device, cfg.random_weights)
        teacher = load_model(name, cfg.dtype, device, cfg.random_weights)
        body, head = param_counts(lm)
        examples = tokenize_sft_rows(lm, build_sft_rows(lm, rows, "You are a helpful assistant."), 500)
        teacher_examples(teacher, rows, trait_system, examples)
        teacher_tokens = [len(e["teacher_prompt_ids"]) + len(e["completion_ids"]) for e in examples]
        shared = None
        if mode == "shared":
            _sync(device)
            t0 = time.perf_counter()
            shared = share_teacher_logits(teacher.model, examples, lm.tokenizer.pad_token_id)
            _sync(device)
            shared_s = time.perf_counter() - t0
        timer = _StepTimer(device)
        trainer = lora_trainer(lm, examples, steps, cfg.train_batch_size, cfg.dtype, tmp / f"distill-{mode}", [timer],
                               teacher=shared or teacher.model)
        trainer.data_collator = counter = BatchCounter(trainer.data_collator)
        trainer.train()
        secs = sum(timer.times[1:])
        timed = counter.batches[1:steps]
        tokens, completions = sum(t for t, _ in timed), sum(c for _, c in timed)
        per_row_teacher = sum(teacher_tokens) / len(teacher_tokens) * cfg.train_batch_size * cfg.train_steps
        flop = 4 * (body * tokens + head * completions) + (2 * body * per_row_teacher + 2 * head * completions
                                                           if shared is None else 0)
        dtype = "bfloat16" if trainer.args.bf16 else "float32"
        row = {"model": name, "trainer": f"traitbench-distill-{mode.replace('_', '-')}", "mode": "distill",
               "dtype": dtype, "batch": cfg.train_batch_size, "step_seconds": secs / cfg.train_steps,
               "timed_tokens": tokens, "tokens_per_s": tokens / secs, **_rate(flop, secs, peaks.get(dtype, peaks["float32"]))}
        if shared is not None:
            row.update(teacher_logits_seconds=shared_s, teacher_logits_gb=shared.nbytes / 2**30,
                       teacher_logits_rows=len(examples))
        out.append(row)
        del trainer, lm, teacher, shared
    return out


def bench_probes(lm, name: str, cfg: BenchConfig, device: str) -> dict:
    questions = [render_prompt(lm, "You are a helpful assistant.", q)
                 for q in preference_questions("animal")[: cfg.probe_questions]]
    texts = [q for q in questions for _ in range(cfg.probe_samples)]
    _sync(device)
    t0 = time.perf_counter()
    decode(lm, texts, temperature=1.0, max_new_tokens=8, seed=0)
    _sync(device)
    sample_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    trait_logprob(lm, questions, "owl")
    _sync(device)
    lp_s = time.perf_counter() - t0
    return {"model": name, "samples_per_s": len(texts) / sample_s, "delta_logprob_questions_per_s": len(questions) / lp_s}


def run(cfg: BenchConfig, out: Path) -> Result:
    """Every benchmark of `cfg`; writes bench.json and bench.md into `out`."""
    result = run_bench(cfg, out)
    return Result(out, (out / "bench.md").read_text(), [out / "bench.json"], manifest={"bench_seconds": result["seconds"]})


def run_bench(cfg: BenchConfig, out_dir: Path) -> dict:
    """The measurements as a dict (also written to `out_dir`/bench.json and bench.md)."""
    device = _device(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    result: dict = {"config": cfg.model_dump(), "device": device, "machine": _machine(device),
                    "versions": library_versions(), "git": git_info(), "threads": torch.get_num_threads()}
    peaks = roofline(device, cfg.roofline_size)
    result["roofline_flop_per_s"] = peaks
    result["sampling"], result["training"], result["probes"], result["notes"] = [], [], [], []
    for name in tqdm(cfg.models, desc="bench sampling", unit="model"):
        lm = load_model(name, cfg.dtype, device, cfg.random_weights)
        result["sampling"] += bench_sampler(lm, name, cfg, peaks, device)
        if name in cfg.probe_models:
            result["probes"].append(bench_probes(lm, name, cfg, device))
        if name in cfg.llama_cpp_models:
            row = bench_llama_cpp(lm, name, cfg, peaks)
            result["sampling"].append(row) if isinstance(row, dict) else result["notes"].append(row)
        del lm
    for name in cfg.train_models:
        only = {"traitbench-compiled": cfg.train_compiled, "trl-default": cfg.train_baselines}  # else every model
        trainers = tuple(t for t in TRAINERS if name in only.get(t, [name]))
        result["training"] += bench_trainer(name, cfg, peaks, device, out_dir / "tmp", trainers)
        if name in cfg.distill_models:
            result["training"] += bench_distill(name, cfg, peaks, device, out_dir / "tmp")
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    atomic_write_json(out_dir / "bench.json", result)
    (out_dir / "bench.md").write_text(bench_table(result))
    return result


def _machine(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    return f"{cpu_model()}, {torch.get_num_threads()} threads"


def _floor(g: dict | None, share: str) -> str:
    return f"{g['seconds']:.2f} ({g[share]:.0%}, {g['roofline_fraction']:.0%})" if g else ""


def bench_table(r: dict) -> str:
    """Markdown tables: each figure as a fraction of the roofline and as a ratio to the baseline."""
    peaks = r["roofline_flop_per_s"]
    lines = [f"Device: {r['machine']} ({r['device']}); roofline " +
             ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items()), "",
             "| sampling | model | regime | batch | dtype | prompts/s | new tok/s | decode FLOP/s (2N·new) | "
             "computed FLOP/s (2N·(prompt+new), head at new) | vs naive b1 | vs naive b32 | "
             "GEMMs alone: s (share of run, roofline at that speed) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    naive = {(s["model"], s["batch"]): s for s in r["sampling"] if s["sampler"] == "hf-generate"}

    def ratio(s: dict, batch: int) -> str:
        base = naive.get((s["model"], batch))
        return f"{s['new_tokens_per_s'] / base['new_tokens_per_s']:.1f}×" if base and s["regime"] == "fixed" else ""

    for s in r["sampling"]:
        lines.append(f"| {s['sampler']} | {s['model']} | {s['regime']} | {s['batch']} | {s['dtype']} | "
                     f"{s['prompts_per_s']:.2f} | {s['new_tokens_per_s']:.0f} | "
                     f"{s['decode']['flop_per_s'] / 1e9:.0f} G ({s['decode']['roofline_fraction']:.0%}) | "
                     f"{s['total']['flop_per_s'] / 1e9:.0f} G ({s['total']['roofline_fraction']:.0%}) | "
                     f"{ratio(s, 1)} | {ratio(s, 32)} | {_floor(s.get('gemm_floor'), 'share_of_run')} |")
    if r["training"]:
        lines += ["", "| training | model | dtype | batch | s/step | tokens/s | FLOP/s (4N, head at completions) | "
                  "vs TRL default | base GEMMs alone: s/step (share of step, roofline at that speed) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        trl = {t["model"]: t for t in r["training"] if t["trainer"] == "trl-default"}
        for t in r["training"]:
            base = trl.get(t["model"])
            ratio = f"{t['tokens_per_s'] / base['tokens_per_s']:.1f}×" if base else ""
            name = f"{t['trainer']} (compile {t['compile_seconds']:.0f} s)" if "compile_seconds" in t else t["trainer"]
            if "teacher_logits_seconds" in t:
                name += (f" (teacher logits once: {t['teacher_logits_seconds']:.1f} s, {t['teacher_logits_gb']:.2f} GB "
                         f"for {t['teacher_logits_rows']} rows)")
            lines.append(f"| {name} | {t['model']} | {t['dtype']} | {t['batch']} | {t['step_seconds']:.2f} | "
                         f"{t['tokens_per_s']:.0f} | {t['flop_per_s'] / 1e9:.0f} G ({t['roofline_fraction']:.0%}) | {ratio} | "
                         f"{_floor(t.get('gemm_floor'), 'share_of_step')} |")
    if r["probes"]:
        lines += ["", "| probes | model | samples/s | Δlog P questions/s |", "|---|---|---|---|"]
        for p in r["probes"]:
            lines.append(f"| traitbench | {p['model']} | {p['samples_per_s']:.1f} | {p['delta_logprob_questions_per_s']:.1f} |")
    lines += [""] + [f"- {n}" for n in dict.fromkeys(r.get("notes", []))] if r.get("notes") else []
    return "\n".join(lines) + f"\n\nTotal bench time {r['seconds']} s.\n"
