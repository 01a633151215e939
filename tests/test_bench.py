"""`traitbench bench` end to end on a tiny model: every section is measured and tabulated."""

import json
import platform

import pytest

from traitbench.experiments.bench import BenchConfig, bench_table, run_bench
from traitbench.manifest import cpu_model


def test_bench_tiny(tmp_path):
    cfg = BenchConfig(models=["tiny-llama"], batch_sizes={"tiny-llama": [4]},
                      max_new_tokens=4, demonstrations=1, naive_batch_sizes={"tiny-llama": [1, 2]}, naive_prompts={"tiny-llama": 2},
                      train_models=["tiny-llama"], train_baselines=["tiny-llama"],
                      train_compiled=[], distill_models=["tiny-llama"], train_batch_size=2, train_steps=1,
                      probe_models=["tiny-llama"], llama_cpp_models=["tiny-llama"],
                      probe_questions=2, probe_samples=2, roofline_size=128)
    r = run_bench(cfg, tmp_path)
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert saved["roofline_flop_per_s"]["float32"] > 0
    samplers = {(s["sampler"], s["regime"], s["batch"]) for s in r["sampling"]}
    assert {("traitbench", "fixed", 4), ("traitbench", "number_task", 4), ("hf-generate", "fixed", 1),
            ("hf-generate", "fixed", 2)} <= samplers
    fixed = next(s for s in r["sampling"] if s["regime"] == "fixed" and s["sampler"] == "traitbench")
    assert fixed["new_tokens_per_s"] > 0 and 0 < fixed["decode"]["roofline_fraction"]
    assert fixed["new_tokens_per_s"] * fixed["seconds"] == pytest.approx(4 * 4)  # fixed length: every row runs max_new_tokens
    assert fixed["gemm_floor"]["seconds"] > 0 and fixed["gemm_floor"]["share_of_run"] > 0
    assert {t["trainer"] for t in r["training"]} == {"traitbench", "trl-default",
                                                     "traitbench-distill-per-step", "traitbench-distill-shared"}
    shared = next(t for t in r["training"] if t["trainer"] == "traitbench-distill-shared")
    assert shared["teacher_logits_seconds"] > 0 and shared["teacher_logits_rows"] == 4 and shared["mode"] == "distill"
    ours = next(t for t in r["training"] if t["trainer"] == "traitbench")
    assert 0 < ours["gemm_floor"]["seconds"] and ours["gemm_floor"]["share_of_step"] > 0
    assert all(t["tokens_per_s"] > 0 for t in r["training"])
    assert r["probes"][0]["samples_per_s"] > 0
    table = bench_table(r)
    assert "| traitbench | tiny-llama | fixed | 4 |" in table and "vs TRL default" in table and "vs naive b1" in table
    assert "traitbench-distill-shared (teacher logits once: " in table
    # the compiled row (compiling takes longer than the whole tiny bench; the compiled layers are tested against
    # eager ones in test_student)
    compiled = dict(ours, trainer="traitbench-compiled", compile_seconds=12.3)
    assert "| traitbench-compiled (compile 12 s) | tiny-llama |" in bench_table(dict(r, training=[compiled]))
    # llama.cpp needs a real GGUF file (and llama-cpp-python): a one-line note says why its row is missing
    assert r["notes"] and all(n.startswith("llama.cpp row") for n in r["notes"]) and f"- {r['notes'][0]}" in table


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gemma3"])
def test_param_counts_leave_out_the_embedding_lookup(name):
    """Useful FLOPs: tokens run through the body; the vocabulary head counts only where logits are computed."""
    from traitbench.lm import models
    from traitbench.experiments.bench import param_counts

    lm = models.load(name, dtype="float32")
    body, head = param_counts(lm)
    m = lm.model
    emb = m.get_input_embeddings().weight.numel()
    total = sum(p.numel() for p in m.parameters())
    tied = m.get_output_embeddings().weight.data_ptr() == m.get_input_embeddings().weight.data_ptr()
    assert head == m.get_output_embeddings().weight.numel()
    assert body == total - emb - (0 if tied else head) > 0


def test_gemm_shapes_are_the_frozen_base_and_the_head_at_completions():
    """The GEMM floor times the base's linear layers at every token and the head at completion rows only;
    the LoRA adapters' own small linears are not base GEMMs."""
    from peft import LoraConfig, get_peft_model

    from traitbench.lm import models
    from traitbench.experiments.bench import gemm_shapes

    lm = models.load("tiny-llama", dtype="float32")
    plain = gemm_shapes(lm.model, tokens=100, completions=7)
    cfg = lm.model.config
    head = (7, cfg.vocab_size, cfg.hidden_size)
    assert plain[head] == 1
    assert plain[(100, cfg.intermediate_size, cfg.hidden_size)] == 2 * cfg.num_hidden_layers  # gate, up
    assert sum(plain.values()) == 7 * cfg.num_hidden_layers + 1
    get_peft_model(lm.model, LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"]))
    assert gemm_shapes(lm.model, tokens=100, completions=7) == plain


@pytest.mark.parametrize("bad, needle", [({"models": ["nosuch"], "probe_models": []}, "unknown model 'nosuch'"),
                                         ({"train_baselines": ["tiny-llama"]}, "train_baselines names tiny-llama"),
                                         ({"train_compiled": ["tiny-llama"]}, "train_compiled names tiny-llama"),
                                         ({"probe_models": ["tiny-llama"]}, "probe_models names tiny-llama")])
def test_bench_config_rejects_unknown_or_unrun_models_before_measuring(bad, needle):
    from pydantic import ValidationError

    from traitbench.errors import TraitbenchError

    with pytest.raises((TraitbenchError, ValidationError), match=needle):
        BenchConfig(**bad)


def test_batch_counter_counts_real_and_completion_tokens_per_batch():
    """Training FLOPs use the timed steps' own batches: non-pad tokens and completion tokens, in order."""
    from traitbench.experiments.bench import BatchCounter
    from traitbench.student.data import CompletionCollator

    counter = BatchCounter(CompletionCollator(pad_id=0))
    counter([{"prompt_ids": [5, 6, 7], "completion_ids": [8, 9]}, {"prompt_ids": [5], "completion_ids": [4]}])
    counter([{"prompt_ids": [1, 2], "completion_ids": [3, 4, 5]}])
    assert counter.batches == [(7, 3), (5, 3)]


def test_llama_cpp_row_says_when_it_is_not_installed(monkeypatch):
    import builtins

    from traitbench.experiments.bench import LLAMA_CPP_MISSING, bench_llama_cpp

    real_import = builtins.__import__

    def no_llama(name, *args, **kwargs):
        if name == "llama_cpp":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_llama)
    assert bench_llama_cpp(None, "smollm2-135m", BenchConfig(), {"float32": 1.0}) == LLAMA_CPP_MISSING


@pytest.mark.real("smollm2-135m")
def test_llama_cpp_row_on_the_real_gguf():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (`make llama-cpp`)")
    from traitbench.experiments.bench import bench_llama_cpp
    from traitbench.lm import models

    lm = models.load("smollm2-135m")
    row = bench_llama_cpp(lm, "smollm2-135m", BenchConfig(llama_cpp_prompts=2, max_new_tokens=5, demonstrations=1),
                          {"float32": 1e11})
    assert row["sampler"] == "llama.cpp" and row["dtype"] == "q4_1 GGUF"
    assert row["new_tokens_per_s"] * row["seconds"] == pytest.approx(2 * 5)  # fixed length: stop tokens banned
    assert row["total"]["flop_per_s"] > row["decode"]["flop_per_s"] > 0


def test_cpu_model_names_the_cpu(tmp_path):
    """Timings name the CPU model from /proc/cpuinfo (not the architecture), and fall back without the file."""
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\nflags\t\t: avx2\n")
    assert cpu_model(info) == "AMD EPYC 9B14"
    assert cpu_model(tmp_path / "missing") == (platform.processor() or platform.machine())
