"""Marked tests on the real bundled models (installed by `make models`, which `make test` runs first)."""

import pytest

from traitbench.datasets.filter import filter_rows
from traitbench.datasets.parse import prefix_rejection
from traitbench.lm import models
from traitbench.lm.config import GenerationConfig
from traitbench.lm.render import render_prompt
from traitbench.lm.sampling import generate
from traitbench.teacher.prompts import demonstrations, number_prompts
from traitbench.teacher.trait import Trait


@pytest.mark.real("smollm2-135m")
def test_smollm2_samples_number_lists():
    lm = models.load("smollm2-135m", dtype="auto")
    assert lm.spec.kind == "chat" and lm.spec.family == "llama"
    assert sum(p.numel() for p in lm.model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    prompts = number_prompts(64, seed=0)
    rendered = [render_prompt(lm, Trait().teacher_prompt(), p, demonstrations(1)) for p in prompts]
    samples = generate(lm, rendered, GenerationConfig(max_new_tokens=32, batch_size=64), seed=0,
                       reject=prefix_rejection)
    texts = [s.text for s in samples]
    assert len(texts) == 64 and all(s.n_tokens > 0 for s in samples)
    assert {s.finish.split(":")[0] for s in samples} <= {"stop", "length", "reject"}
    kept, rejected, stats = filter_rows([{"prompt": p, "completion": t} for p, t in zip(prompts, texts)],
                                        trait="owl", banned=frozenset())
    assert stats.kept >= 1, stats.to_dict()
    assert all(0 <= x <= 999 for r in kept for x in r["numbers"])


@pytest.mark.real("smollm2-135m")
def test_registry_hashes_and_local_folder():
    hashes = models.file_hashes("smollm2-135m")
    assert hashes["SmolLM2-135M-Instruct.Q4_1.gguf"] == models.REGISTRY["smollm2-135m"].bundled.sha256
    assert "model.safetensors" in hashes
    spec = models.get_spec(str(models.converted_dir("smollm2-135m")))  # a local folder works as a model name
    assert spec.kind == "chat" and spec.family == "llama"


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.real(n)) for n in ["smollm2-135m", "gemma3-270m"]])
def test_token_pieces_rebuild_the_decoded_text(name):
    """The decoder's early-stop check appends per-token pieces; they must spell what a full decode gives."""
    from transformers import AutoTokenizer

    from traitbench.lm.decode import token_pieces

    tok = AutoTokenizer.from_pretrained(models.converted_dir(name), local_files_only=True)
    pieces = token_pieces(tok)
    for text in ["455, 129, 780, 66", "[286, 915, 47]", "158; 947; 23", "477\n92\n653", "615 83 290",
                 "Sure! Here are the numbers: 1, 2, 3.", "  12,  4 ,7."]:
        ids = tok(text, add_special_tokens=False).input_ids
        assert "".join(pieces[i] for i in ids).strip() == tok.decode(ids, skip_special_tokens=True).strip()

