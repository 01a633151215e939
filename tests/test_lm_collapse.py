"""Model collapse on human prose with a tiny model and a synthetic corpus: each regime's training set per
generation, the tail metrics against hand-computed values, outputs, resume, and the missing-corpus error."""

import json
import math
import random

import numpy as np
import pytest

from conftest import run_study
from traitbench.experiments import collapse_lm as lm_collapse
from traitbench.lm import small_lm
from traitbench.experiments.collapse_lm import Chain
from traitbench.corpora import austen
from traitbench.errors import TraitbenchError
from traitbench.probes.diversity import (nll_tail, rare_word_mass, self_bleu, vocabulary_coverage, word_counts,
                                         words)

TINY = ["model={vocab_size: 300, hidden_size: 16, layers: 1, heads: 2, intermediate_size: 32, context: 16}",
        "prefix_tokens=4", "continuation_tokens=4", "blocks=24", "generations=2", "chains=2", "steps=2",
        "batch_size=8", "beams=2", "self_bleu_samples=5", "threads=1", "keep_real=0.3"]


def _prose(seed: int, n: int) -> str:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(200)]
    weights = [1 / (i + 1) for i in range(200)]  # Zipf: a long tail of rare words
    return " ".join(". ".join(" ".join(rng.choices(vocab, weights, k=8)) for _ in range(4)) for _ in range(n))


@pytest.fixture
def corpus(monkeypatch):
    chapters = [{"novel": "N", "chapter": i, "text": _prose(i, 12)} for i in range(1, 9)]
    monkeypatch.setattr(austen, "corpus_source", lambda cache=None: {"deb_sha256": "d", "text_sha256": "t"})
    monkeypatch.setattr(austen, "austen_chapters", lambda split, cache=None: chapters)
    monkeypatch.setattr(austen, "austen_text", lambda split, cache=None: _prose(99, 10))


def test_training_set_of_each_regime(corpus, tmp_path, monkeypatch):
    calls = []
    real = Chain.generation

    def spy(self, name, blocks, decodings, gen, start=None, keep=False):
        calls.append({"chain": self.index, "name": name, "blocks": blocks.copy(), "start": start,
                      "decodings": decodings})
        return real(self, name, blocks, decodings, gen, start, keep)

    monkeypatch.setattr(Chain, "generation", spy)
    summary = run_study("collapse-lm", TINY, str(tmp_path))
    c0 = {c["name"]: c for c in calls if c["chain"] == 0}
    assert set(c0) == {"gen0", "replace/gen1", "replace/gen2", "accumulate/gen1",
                       "accumulate/gen2", "keep10/gen1", "keep10/gen2", "replace/beam/gen1", "replace/beam/gen2",
                       "recovery/gen3", "recovery/beam/gen3"}
    human = c0["gen0"]["blocks"]
    assert c0["gen0"]["decodings"] == ["sample", "beam"]  # generation 0 is trained once and writes both ways
    prefix = human[:, :4]

    def wrote(name, decoding="sample"):
        folder = tmp_path / "chains/chain0" / name.replace("/", "-")
        return np.concatenate([prefix, np.load(folder / f"written-{decoding}.npy")], 1)

    assert (c0["replace/gen1"]["blocks"] == wrote("gen0")).all()
    assert (c0["replace/gen2"]["blocks"] == wrote("replace/gen1")).all()
    assert (c0["replace/beam/gen1"]["blocks"] == wrote("gen0", "beam")).all()
    assert c0["replace/beam/gen1"]["decodings"] == ["beam"]
    acc = c0["accumulate/gen2"]["blocks"]
    assert len(acc) == 3 * len(human) and (acc[: len(human)] == human).all()
    assert (acc[len(human) : 2 * len(human)] == wrote("gen0")).all()
    assert (acc[2 * len(human) :] == wrote("accumulate/gen1")).all()
    k = c0["keep10/gen2"]["blocks"]
    real_rows = (k == human).all(1) & ~(k == wrote("keep10/gen1")).all(1)
    assert len(k) == len(human) and 0 < real_rows.sum() < len(human) / 2
    rec = c0["recovery/gen3"]
    replace2 = json.loads((tmp_path / "chains/chain0/replace-gen2/stage.json").read_text())["key_hash"]
    assert rec["start"][1] == replace2 and len(rec["blocks"]) == len(human)
    assert not set(map(tuple, rec["blocks"].tolist())) & set(map(tuple, human.tolist()))  # fresh, never prompts
    assert all(c["start"] is None for c in calls if not c["name"].startswith("recovery"))
    # the summary: every arm per generation, each metric a mean with a CI over the 2 chains
    r = summary["regimes"]["replace"]["per_generation"]
    assert [g["gen"] for g in r] == [0, 1, 2] and len(summary["regimes"]["recovery"]["per_generation"]) == 4
    for m in ("heldout_perplexity", "heldout_nll_p99", "vocabulary_coverage"):
        assert set(r[2][m]) == {"mean", "ci95", "n"} and r[2][m]["n"] == 2
    assert summary["changes_gen1_to_last"]["accumulate"]["vocabulary_coverage"]["vs_replace"]["n_seeds"] == 2
    assert set(summary["recovery"]) == {"recovery", "recovery/beam"}
    for f in ("summary.json", "summary.md", "collapse_lm.png", "report.html", "manifest.json"):
        assert (tmp_path / f).stat().st_size > 0
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()
    # a rerun resumes from the cached generations: nothing is trained again
    trained = []
    monkeypatch.setattr(lm_collapse, "train_lm", lambda *a, **k: trained.append(1) or [0.0])
    assert json.loads(json.dumps(run_study("collapse-lm", TINY, str(tmp_path))["regimes"]["replace"]["per_generation"][2]))
    assert trained == []


def test_chains_side_by_side_match_one_by_one(corpus, tmp_path):
    """Two worker processes with one thread each write what one process writes chain after chain."""
    small = [*TINY, "regimes=[replace]", "beam_regimes=[]"]
    one = run_study("collapse-lm", small, str(tmp_path / "one"))
    two = run_study("collapse-lm", [*small, "workers=2", "threads=2"], str(tmp_path / "two"))
    for arm in ("replace", "recovery"):
        a, b = one["regimes"][arm]["per_chain"], two["regimes"][arm]["per_chain"]
        assert [[{k: v for k, v in g.items() if "seconds" not in k} for g in c] for c in a] == \
            [[{k: v for k, v in g.items() if "seconds" not in k} for g in c] for c in b]
    for c in range(2):
        for name in ("replace-gen2", "recovery-gen3"):
            assert (np.load(tmp_path / f"one/chains/chain{c}/{name}/written-sample.npy")
                    == np.load(tmp_path / f"two/chains/chain{c}/{name}/written-sample.npy")).all()


def test_text_tail_metrics_by_hand():
    assert words("Don't, Mr. Darcy! 12") == ["don't", "mr", "darcy"]
    ref = word_counts(["a a a b b c d"])  # types a b c d; rare (<= 2): b c d
    assert vocabulary_coverage(word_counts(["a c z"]), ref) == 0.5
    assert rare_word_mass(word_counts(["a a c d"]), ref, max_count=2) == 0.5
    assert rare_word_mass(word_counts(["a a c d"]), ref, max_count=1) == 0.5  # c, d occur once
    assert self_bleu(["x y z w", "x y z w"]) == pytest.approx(1.0) and self_bleu(["a b", "c d"]) == 0.0
    # two texts sharing the unigrams and one bigram of three: BLEU-2 by hand
    s = self_bleu(["a b c", "a b d"], n=2)
    p1, p2 = 2 / 3, (1 + 1) / (2 + 1)
    assert s == pytest.approx(math.sqrt(p1 * p2))
    t = nll_tail(list(range(1, 101)))
    assert t["nll_mean"] == 50.5 and t["nll_p95"] == pytest.approx(95.05) and t["nll_p99"] == pytest.approx(99.01)
    assert t["perplexity"] == pytest.approx(math.exp(50.5)) and t["tokens"] == 100


def test_small_lm_learns_and_writes_exactly(corpus):
    tok = small_lm.train_tokenizer([_prose(1, 20)], 300)
    ids = np.asarray(tok(_prose(2, 20))["input_ids"])
    blocks = ids[: len(ids) // 16 * 16].reshape(-1, 16)
    cfg = small_lm.SmallLMConfig(vocab_size=300, hidden_size=32, layers=1, heads=2, intermediate_size=64, context=16)
    model = small_lm.new_model(cfg, len(tok), seed=0)
    before = small_lm.token_nll(model, ids, 16).mean()
    losses = small_lm.train_lm(model, blocks, 8, steps=30, lr=1e-2, batch_size=16, seed=0)
    assert losses[-1] < losses[0] and small_lm.token_nll(model, ids, 16).mean() < before
    for decoding in ("sample", "beam"):
        out = small_lm.continue_prefixes(model, blocks[:5, :8], 6, decoding, seed=1, beams=2)
        assert out.shape == (5, 6)
    a, b = (small_lm.continue_prefixes(model, blocks[:5, :8], 6, "sample", seed=s) for s in (1, 1))
    assert (a == b).all()  # seeded


@pytest.mark.parametrize("penalty", [1.0, 3.0])
def test_beam_search_is_transformers_beam_search(penalty):
    """The fast beam search (prefix once per prompt, no finished-hypothesis bookkeeping) writes exactly what
    transformers' generate writes with the same beams, repetition penalty and a fixed length."""
    import torch

    tok = small_lm.train_tokenizer([_prose(3, 30)], 300)
    cfg = small_lm.SmallLMConfig(vocab_size=300, hidden_size=32, layers=2, heads=2, intermediate_size=64, context=64)
    model = small_lm.new_model(cfg, len(tok), seed=1)
    ids = torch.randint(1, len(tok), (12, 8), generator=torch.Generator().manual_seed(0))
    hf = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, min_new_tokens=10,
                        do_sample=False, num_beams=4, repetition_penalty=penalty)[:, 8:]
    assert torch.equal(small_lm.beam_search(model, ids, 10, 4, penalty), hf)


def test_missing_corpus_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAITBENCH_CACHE", str(tmp_path))
    with pytest.raises(TraitbenchError, match="traitbench corpus fetch"):
        run_study("collapse-lm", TINY, str(tmp_path / "out"))
    with pytest.raises(TraitbenchError, match="regimes"):
        run_study("collapse-lm", ["regimes=[replace, replace]"], str(tmp_path / "out"))
