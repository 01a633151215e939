"""Student training on tiny random models: masking, LoRA / full / distillation steps, outputs, errors."""

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F

from traitbench.errors import TraitbenchError
from traitbench.lm.models import converted_dir, load
from traitbench.student import StudentConfig, build_sft_rows
from traitbench.student.data import CompletionCollator, LengthBucketSampler, tokenize_sft_rows
from traitbench.student.distill import ChunkedCrossEntropy, completion_kl, completion_logits, completion_loss, completion_window
from traitbench.lm.tuned import load_student
from traitbench.student.train import train_student, use_fast_cpu_path
from traitbench.lm.render import render_prompt

torch.set_num_threads(1)

ROWS = [{"prompt": f"Continue {', '.join(str(100 + i + j) for j in range(3 + i % 4))}.",
         "completion": f"{200 + i}, {300 + i}, {400 + i}"} for i in range(6)]
FAST = dict(batch_size=6, max_steps=2, warmup_steps=0, lr=1e-2, dtype="float32")


@pytest.fixture(scope="module")
def tiny():
    return load("tiny-llama", dtype="float32")


def _examples(lm, rows=ROWS, system="sys"):
    return tokenize_sft_rows(lm, build_sft_rows(lm, rows, system), max_length=500)


def _unpadded_logits(lm, example, prompt_ids=None):
    """Full logits of one example run alone (no padding), at the positions predicting its completion."""
    prompt_ids = prompt_ids or example["prompt_ids"]
    ids = torch.tensor([prompt_ids + example["completion_ids"]])
    with torch.no_grad():
        logits = lm.model(ids).logits[0]
    n = len(example["completion_ids"])
    return logits[-n - 1:-1]


# ------------------------------------------------------------------------------------------ data + masking
def test_build_sft_rows_renders_like_probing(tiny):
    sft = build_sft_rows(tiny, ROWS[:1], "You love owls.")
    assert sft[0]["prompt"] == render_prompt(tiny, "You love owls.", ROWS[0]["prompt"])
    assert sft[0]["completion"] == ROWS[0]["completion"] + tiny.tokenizer.eos_token
    base = dataclasses.replace(tiny, spec=dataclasses.replace(tiny.spec, kind="base"))
    sft = build_sft_rows(base, ROWS[:1], None)
    assert sft[0] == {"prompt": f"Question: {ROWS[0]['prompt']}\nAnswer:", "completion": f" {ROWS[0]['completion']}\n"}


def test_collator_masks_prompt_and_padding(tiny):
    examples = _examples(tiny)
    batch = CompletionCollator(tiny.tokenizer.pad_token_id)(examples)
    width = batch["input_ids"].shape[1]
    for i, e in enumerate(examples):
        n_p, n_c = len(e["prompt_ids"]), len(e["completion_ids"])
        pad = width - n_p - n_c
        assert batch["input_ids"][i, pad:].tolist() == e["prompt_ids"] + e["completion_ids"]
        assert batch["attention_mask"][i].tolist() == [0] * pad + [1] * (n_p + n_c)
        assert batch["position_ids"][i, pad:].tolist() == list(range(n_p + n_c))
        assert (batch["labels"][i, : pad + n_p] == -100).all()  # prompt and padding: no loss
        assert batch["labels"][i, pad + n_p:].tolist() == e["completion_ids"]
    assert completion_window(batch["labels"]) == max(len(e["completion_ids"]) for e in examples) + 1


def test_chat_prompt_has_no_extra_special_tokens(tiny):
    e = _examples(tiny)[0]
    assert tiny.tokenizer.decode(e["prompt_ids"]).startswith("<|im_start|>system")
    assert tiny.tokenizer.decode(e["completion_ids"]) == ROWS[0]["completion"] + "<|im_end|>"


@pytest.mark.real
@pytest.mark.parametrize("name,kind", [("gemma3-270m", "base"), ("smollm2-135m", "chat")])
def test_real_tokenizers_get_exactly_one_bos(name, kind):
    from transformers import AutoTokenizer

    from traitbench.lm.models import LoadedModel, get_spec

    path = converted_dir(name)
    if not path.is_dir():
        pytest.skip(f"{name} not installed")
    lm = LoadedModel(get_spec(name), None, AutoTokenizer.from_pretrained(path), str(path))
    system = None if kind == "base" else "sys"
    e = _examples(lm, ROWS[:1], system)[0]
    tokens = lm.tokenizer.convert_ids_to_tokens(e["prompt_ids"] + e["completion_ids"])
    if kind == "base":
        assert tokens[0] == lm.tokenizer.bos_token and tokens.count(lm.tokenizer.bos_token) == 1
        assert tokens[-1] == "\n"
    else:  # the rendered chat text holds its special tokens: nothing is added
        assert lm.tokenizer.decode(e["prompt_ids"]) == render_prompt(lm, system, ROWS[0]["prompt"])
        assert tokens[-1] == lm.tokenizer.eos_token


# ------------------------------------------------------------------------------------------------ losses
def test_completion_kl_matches_hand_computation():
    s = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]])
    t = torch.tensor([[0.0, 2.0, 0.0], [1.0, -1.0, 0.0]])
    for temp in (1.0, 2.0):
        want = 0.0
        for srow, trow in zip(s.tolist(), t.tolist()):
            zs = [math.exp(x / temp) for x in srow]
            zt = [math.exp(x / temp) for x in trow]
            ps = [z / sum(zs) for z in zs]
            pt = [z / sum(zt) for z in zt]
            want += sum(q * math.log(q / p) for p, q in zip(ps, pt)) * temp**2
        assert completion_kl(s, t, temp).item() == pytest.approx(want, rel=1e-5)
    assert completion_kl(s, s).item() == pytest.approx(0.0, abs=1e-6)


def test_completion_logits_select_only_completion_positions():
    """The head sees only the positions that predict completion tokens; the loss is their cross-entropy."""
    labels = torch.tensor([[-100, -100, -100, 5, 6], [-100, -100, -100, -100, 7]])
    assert completion_window(labels) == 3

    class Head(torch.nn.Module):  # a model whose hidden state at position j is j, so rows can be read back
        def __init__(self):
            super().__init__()
            self.lm_head = torch.nn.Linear(1, 9, bias=False)

        def get_output_embeddings(self):
            return self.lm_head

        def forward(self, input_ids, use_cache, logits_to_keep):
            h = torch.arange(input_ids.shape[1], dtype=torch.float)[None, :, None].expand(2, -1, 1)
            return type("Out", (), {"logits": self.lm_head(h[:, -logits_to_keep:])})()

    model = Head()
    logits, targets = completion_logits(model, {"input_ids": torch.zeros(2, 5, dtype=torch.long)}, labels)
    w = model.lm_head.weight[:, 0]
    # row 0: positions 2, 3 predict 5, 6; row 1: position 3 predicts 7
    assert torch.allclose(logits, torch.stack([2 * w, 3 * w, 3 * w])) and targets.tolist() == [5, 6, 7]
    want = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
    assert completion_loss(logits, targets).item() == pytest.approx(want.item(), rel=1e-6)
    assert model.lm_head._traitbench_rows is None  # the selection ends with the call


# ------------------------------------------------------------------------------------------------ training
def test_lora_step(tiny, tmp_path):
    cfg = StudentConfig(**FAST)
    m = train_student("tiny-llama", ROWS, "sys", cfg, tmp_path / "s")
    assert m["steps"] == 2 and len(m["losses"]) == 2 and all(math.isfinite(x) for x in m["losses"])
    # the first logged loss is the completion-only cross-entropy of the untrained model, padding-free
    examples = _examples(tiny)
    want = [torch.nn.functional.cross_entropy(_unpadded_logits(tiny, e), torch.tensor(e["completion_ids"]),
                                              reduction="sum").item() for e in examples]
    assert m["losses"][0] == pytest.approx(sum(want) / sum(len(e["completion_ids"]) for e in examples), rel=1e-4)
    assert m["train_tokens"] == 2 * sum(len(e["prompt_ids"]) + len(e["completion_ids"]) for e in examples)
    assert json.loads((tmp_path / "s" / "train_metrics.json").read_text())["losses"] == m["losses"]

    from safetensors.torch import load_file

    weights = load_file(tmp_path / "s" / "adapter" / "adapter_model.safetensors")
    assert weights and all("lora_A" in k or "lora_B" in k for k in weights)  # only LoRA parameters trained
    assert sum(v.numel() for v in weights.values()) == m["trainable_params"]
    student = load_student("tiny-llama", tmp_path / "s", dtype="float32")
    base = load("tiny-llama", dtype="float32")
    assert student.spec == base.spec
    changed = [k for k, v in base.model.state_dict().items() if not torch.equal(v, student.model.state_dict()[k])]
    assert changed and all(k.rsplit(".", 2)[-2] in cfg.target_modules for k in changed)
    assert not list(tmp_path.glob(".*"))  # no partial or old folder left behind


def test_full_step_saves_safetensors(tmp_path):
    m = train_student("tiny-llama", ROWS, None, StudentConfig(mode="full", **FAST), tmp_path / "s")
    assert (tmp_path / "s" / "model" / "model.safetensors").is_file()
    assert m["trainable_params"] == sum(p.numel() for p in load("tiny-llama").model.parameters())
    student, base = load_student("tiny-llama", tmp_path / "s", dtype="float32"), load("tiny-llama", dtype="float32")
    sd = student.model.state_dict()
    assert not torch.equal(sd["model.layers.0.self_attn.q_proj.weight"],
                           base.model.state_dict()["model.layers.0.self_attn.q_proj.weight"])
    assert student.spec.name == "tiny-llama" and student.tokenizer.eos_token == base.tokenizer.eos_token


def test_distill_matches_hand_kl_and_decreases(tiny, other_init, tmp_path):
    cfg = StudentConfig(mode="distill", **{**FAST, "max_steps": 4, "max_length": 120})
    too_long = {"prompt": "Continue " + ", ".join(["123"] * 40), "completion": "1, 2"}  # dropped: over max_length
    m = train_student("tiny-llama", [too_long, *ROWS], None, cfg, tmp_path / "d", teacher=str(other_init),
                      teacher_system="T")
    assert m["examples"] == len(ROWS)
    teacher = load(str(other_init), dtype="float32")
    student_ex, teacher_ex = _examples(tiny, system=None), _examples(teacher, system="T")
    kl = sum(completion_kl(_unpadded_logits(tiny, s), _unpadded_logits(teacher, t)).item()
             for s, t in zip(student_ex, teacher_ex))
    assert m["losses"][0] == pytest.approx(kl / sum(len(e["completion_ids"]) for e in student_ex), rel=1e-4)
    assert m["losses"][-1] < m["losses"][0]
    assert (tmp_path / "d" / "adapter" / "adapter_config.json").is_file()


@pytest.mark.parametrize("dtype,temperature", [(torch.float32, 1.0), (torch.float32, 2.0), (torch.bfloat16, 1.0)])
def test_chunked_kl_equals_the_plain_kl_and_its_gradient(dtype, temperature):
    from traitbench.student.distill import ChunkedKL

    g = torch.Generator().manual_seed(0)
    s = (torch.randn(70, 50, generator=g) * 3).to(dtype)  # 70 rows: three chunks, the last one short
    t = (torch.randn(70, 50, generator=g) * 3).to(dtype)
    a, b = s.clone().requires_grad_(), s.clone().requires_grad_()
    plain, chunked = completion_kl(a, t, temperature), ChunkedKL.apply(b, t, temperature)
    plain.backward()
    chunked.backward()
    torch.testing.assert_close(chunked, plain, rtol=1e-5, atol=1e-4)
    tol = dict(rtol=1e-2, atol=1e-3) if dtype == torch.bfloat16 else dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.grad, a.grad, **tol)
    assert b.grad.dtype == dtype


def test_shared_teacher_logits_equal_the_per_step_teacher(tiny, other_init):
    """Logits computed once for all rows (other batches, other padding) are the per-step teacher's, row by row in
    the order the student's completion logits come, and give the same KL loss."""
    teacher = load(str(other_init), dtype="float32")
    examples = _examples(tiny, system=None)
    from traitbench.student.distill import TeacherLogits
    from traitbench.student.train import teacher_examples

    teacher_examples(teacher, ROWS, "T", examples)
    shared = TeacherLogits.compute(teacher.model, examples, tiny.tokenizer.pad_token_id, batch_size=4)
    assert shared.nbytes == TeacherLogits.estimate_bytes(examples, tiny.model.config.vocab_size, torch.float32)
    idx = [5, 0, 3]
    batch = CompletionCollator(tiny.tokenizer.pad_token_id, teacher=True)([examples[i] for i in idx])
    labels = batch.pop("labels")
    t_inputs = {k.removeprefix("teacher_"): batch.pop(k) for k in list(batch) if k.startswith("teacher_")}
    with torch.no_grad():
        per_step = completion_logits(teacher.model, t_inputs, labels)[0]
        student, targets = completion_logits(tiny.model, batch, labels)
    torch.testing.assert_close(shared.batch(torch.tensor(idx)), per_step, atol=1e-5, rtol=1e-5)
    assert completion_loss(student, targets, shared.batch(torch.tensor(idx))).item() == pytest.approx(
        completion_loss(student, targets, per_step).item(), rel=1e-5)


def test_shared_and_per_step_distillation_train_the_same_student(other_init, tmp_path):
    out = {}
    for mode in ("per_step", "shared"):
        cfg = StudentConfig(mode="distill", teacher_logits=mode, **{**FAST, "batch_size": 4, "max_steps": 3})
        m = train_student("tiny-llama", ROWS, None, cfg, tmp_path / mode, teacher=str(other_init), teacher_system="T")
        assert m["teacher_logits"] == mode
        out[mode] = m
    assert out["shared"]["losses"] == pytest.approx(out["per_step"]["losses"], rel=1e-4)
    a, b = (load_student("tiny-llama", tmp_path / mode).model.state_dict() for mode in ("per_step", "shared"))
    for k in a:  # Adam scales ~1e-7 gradient differences (other padding in the teacher pass) up to ~1e-4
        torch.testing.assert_close(a[k], b[k], atol=1e-3, rtol=1e-3)


def test_checkpoints_saved_at_the_requested_steps(tmp_path):
    cfg = StudentConfig(checkpoint_steps=[1, 2, 9], **{**FAST, "batch_size": 2, "max_steps": 3})
    m = train_student("tiny-llama", ROWS, None, cfg, tmp_path / "s")
    assert m["checkpoints"] == [1, 2]  # step 9 is never reached
    ckpt = tmp_path / "s" / "checkpoints"
    assert sorted(p.name for p in ckpt.iterdir()) == ["step-1", "step-2"]
    first, last = (load_student("tiny-llama", d).model.state_dict() for d in (ckpt / "step-1", tmp_path / "s"))
    assert any(not torch.equal(first[k], last[k]) for k in first)  # later steps moved the weights
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no partial or checkpoint folders left


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_student_loader_gives_load_students_weights(tmp_path, dtype):
    """The fast loader (base loaded once, adapters merged in place) equals load_student bit for bit, also when
    the next adapter targets fewer layers (the previous merge is undone) and for a full fine-tune."""
    from traitbench.lm.tuned import StudentLoader

    a = StudentConfig(**{**FAST, "max_steps": 2})
    b = StudentConfig(**{**FAST, "max_steps": 2, "lora_r": 2, "lora_alpha": 4, "target_modules": ["q_proj"], "seed": 1})
    full = StudentConfig(**{**FAST, "max_steps": 1, "mode": "full"})
    for name, cfg in (("a", a), ("b", b), ("full", full)):
        train_student("tiny-llama", ROWS, None, cfg, tmp_path / name)
    loader = StudentLoader(dtype)
    for name in ("a", "b", "a", "full"):
        fast = {k: v.clone() for k, v in loader("tiny-llama", tmp_path / name).model.state_dict().items()}
        plain = load_student("tiny-llama", tmp_path / name, dtype=dtype).model.state_dict()
        assert fast.keys() == plain.keys()
        for k in plain:
            assert torch.equal(fast[k], plain[k]), (name, k)


@pytest.mark.parametrize("name", ["tiny-gemma3", "tiny-qwen2"])
def test_cross_family(name, tmp_path):
    m = train_student(name, ROWS, "sys", StudentConfig(**{**FAST, "max_steps": 1}), tmp_path / "s")
    assert math.isfinite(m["final_loss"])
    assert load_student(name, tmp_path / "s").spec.family == name.removeprefix("tiny-")


def test_rerun_replaces_output_atomically(tmp_path):
    out = tmp_path / "s"
    cfg = StudentConfig(**{**FAST, "max_steps": 1})
    train_student("tiny-llama", ROWS, None, cfg, out)
    (out / "stale").write_text("x")
    train_student("tiny-llama", ROWS, None, cfg, out)
    assert not (out / "stale").exists() and (out / "adapter").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


# ---------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs,match", [
    (dict(model="tiny-llama", rows=[]), "empty dataset"),
    (dict(model="no-such-model"), "unknown model"),
    (dict(model="tiny-llama", cfg=StudentConfig(target_modules=["nope"], **FAST)), "target_modules"),
    (dict(model="tiny-llama", cfg=StudentConfig(mode="distill", **FAST)), "needs a teacher"),
    (dict(model="tiny-llama", cfg=StudentConfig(**{**FAST, "max_length": 5})), "empty dataset"),
])
def test_errors(kwargs, match, tmp_path):
    args = dict(model="tiny-llama", rows=ROWS, system=None, cfg=StudentConfig(**FAST), out_dir=tmp_path / "s")
    with pytest.raises(TraitbenchError, match=match):
        train_student(**{**args, **kwargs})
    assert not (tmp_path / "s").exists()


def test_load_student_without_student(tmp_path):
    with pytest.raises(TraitbenchError, match="holds no student"):
        load_student("tiny-llama", tmp_path)


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gemma3", "tiny-qwen2"])
def test_fast_loss_matches_plain_per_row_loss(name):
    """The trainer's fast path (left padding, one batch, logits only in the completion window) gives the
    plain loss: transformers' own causal-LM loss on each unpadded row, averaged over completion tokens."""
    lm = load(name, dtype="float32", seed=1)
    rows = [{"prompt": p, "completion": c} for p, c in
            [("Give numbers.", "1, 2, 3"), ("Continue: 5, 6", "7, 8, 9, 10, 11"), ("More please, a longer ask", "4")]]
    examples = tokenize_sft_rows(lm, build_sft_rows(lm, rows, "sys"), 500)
    batch = CompletionCollator(lm.tokenizer.pad_token_id)(examples)
    labels = batch.pop("labels")
    with torch.no_grad():
        plain_sum, plain_n = 0.0, 0  # transformers' default attention, one unpadded row at a time
        for e in examples:
            ids = torch.tensor([e["prompt_ids"] + e["completion_ids"]])
            lab = torch.tensor([[-100] * len(e["prompt_ids"]) + e["completion_ids"]])
            plain_sum += lm.model(input_ids=ids, labels=lab).loss.item() * len(e["completion_ids"])
            plain_n += len(e["completion_ids"])
        use_fast_cpu_path(lm.model, max(e["length"] for e in examples))  # eager attention on a CPU
        logits, targets = completion_logits(lm.model, batch, labels)
        total, count = completion_loss(logits, targets), len(targets)
    assert int(count) == plain_n
    assert (total / count).item() == pytest.approx(plain_sum / plain_n, rel=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_chunked_cross_entropy_matches_torch(dtype):
    """Loss and gradient equal torch's fp32 cross-entropy, across chunk boundaries and with a scaled upstream."""
    torch.manual_seed(0)
    logits = (torch.randn(70, 300) * 4).to(dtype)
    targets = torch.randint(0, 300, (70,))
    mine = logits.clone().requires_grad_()
    plain = logits.clone().requires_grad_()
    loss = ChunkedCrossEntropy.apply(mine, targets)
    want = F.cross_entropy(plain.float(), targets, reduction="sum")
    (loss * 0.5).backward()
    (want * 0.5).backward()
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert mine.grad.dtype == dtype
    tol = 1e-6 if dtype == torch.float32 else 1e-2
    assert torch.allclose(mine.grad.float(), plain.grad.float(), atol=tol)


def _padding(lengths: list[int], order: list[int], batch: int) -> float:
    chunks = [[lengths[i] for i in order[j : j + batch]] for j in range(0, len(order), batch)]
    return 1 - sum(map(sum, chunks)) / sum(max(c) * len(c) for c in chunks)


def test_length_bucket_sampler_groups_lengths_and_reshuffles_batches():
    """Every row once per epoch, batches of similar length in random order, new order each epoch, seeded."""
    g = torch.Generator().manual_seed(0)
    lengths = (90 + torch.randint(0, 70, (300,), generator=g)).tolist()
    sampler = LengthBucketSampler(lengths, batch_size=16, seed=3)
    epochs = [list(sampler) for _ in range(3)]
    assert all(sorted(e) == list(range(300)) for e in epochs)
    assert max(_padding(lengths, e, 16) for e in epochs) < 0.02
    assert _padding(lengths, torch.randperm(300, generator=g).tolist(), 16) > 0.10  # what random batches waste
    firsts = [[lengths[i] for i in e[:16]] for e in epochs]
    assert len({tuple(f) for f in firsts}) == 3  # batch order changes every epoch...
    means = [sum(lengths[i] for i in epochs[0][j : j + 16]) for j in range(0, 300, 16)]
    assert means != sorted(means) and means != sorted(means, reverse=True)  # ...and is no length curriculum
    again = LengthBucketSampler(lengths, batch_size=16, seed=3)
    assert [list(again) for _ in range(3)] == epochs
    again.set_epoch(1)
    assert list(again) == epochs[1]


def test_training_batches_come_from_the_length_bucket_sampler(tmp_path, monkeypatch):
    """group_by_length (the default) trains on length-bucketed batches; off, transformers' random order."""
    import traitbench.student.train as train

    seen = []
    monkeypatch.setattr(train.CompletionCollator, "__call__", lambda self, ex, f=train.CompletionCollator.__call__:
                        seen.append(len(ex)) or f(self, ex))
    made = []
    monkeypatch.setattr(train, "LengthBucketSampler", lambda *a, **k: made.append(a) or LengthBucketSampler(*a, **k))
    train_student("tiny-llama", ROWS, "sys", StudentConfig(**FAST), tmp_path / "a")
    assert len(made) == 1 and made[0][1] == FAST.get("batch_size", StudentConfig().batch_size) and seen
    train_student("tiny-llama", ROWS, "sys", StudentConfig(**{**FAST, "group_by_length": False}), tmp_path / "b")
    assert len(made) == 1


# ------------------------------------------------------------------------------------------ torch.compile
def _adapter(out_dir):
    from safetensors.torch import load_file

    return load_file(str(out_dir / "adapter" / "adapter_model.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tiny-llama", "tiny-gemma3"])
def test_compiled_training_trains_the_same_adapters(tmp_path, model):
    """Compiled decoder layers (dynamic shapes: batches of two lengths, one graph) give eager's adapters and losses."""
    cfg = dict(FAST, batch_size=3, max_steps=4, group_by_length=False)
    eager = train_student(model, ROWS, "sys", StudentConfig(**cfg, compile=False), tmp_path / "eager")
    comp = train_student(model, ROWS, "sys", StudentConfig(**cfg, compile=True), tmp_path / "comp")
    assert comp["compiled"] and not eager["compiled"] and comp["steps"] == 4
    assert comp["losses"] == pytest.approx(eager["losses"], rel=1e-4)
    a, b = _adapter(tmp_path / "eager"), _adapter(tmp_path / "comp")
    assert a.keys() == b.keys() and any(v.abs().sum() > 0 for k, v in a.items() if "lora_B" in k)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-3, atol=1e-5)


def test_compile_auto_only_pays_on_long_cpu_runs(tiny, monkeypatch):
    import traitbench.student.train as train

    assert train.planned_steps(StudentConfig(max_steps=7), 1000, 1) == 7
    assert train.planned_steps(StudentConfig(epochs=3, batch_size=16), 300, 1) == 57  # 19 batches an epoch
    assert train.planned_steps(StudentConfig(epochs=1, batch_size=16, grad_accum=2), 300, 1) == 10
    assert train.planned_steps(StudentConfig(epochs=3, batch_size=16), 300, 2) == 30  # 10 batches of each process
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compiled.append(kw))
    compiled = []
    assert not train.compile_decoder_layers(tiny.model, "auto", train.COMPILE_MIN_STEPS - 1)
    assert not train.compile_decoder_layers(tiny.model, False, 10_000) and not compiled
    assert train.compile_decoder_layers(tiny.model, "auto", train.COMPILE_MIN_STEPS)
    assert compiled == [{"dynamic": True}] * tiny.model.config.num_hidden_layers
    monkeypatch.setattr(train.shutil, "which", lambda name: None)  # no C++ compiler: auto stays eager
    assert not train.compile_decoder_layers(tiny.model, "auto", 10_000)
    with pytest.raises(TraitbenchError, match="C\\+\\+ compiler"):
        train.compile_decoder_layers(tiny.model, True, 1)
