"""The contrastive misalignment probe: the project's triples, split by question into a design and a held-out
half, and log P(misaligned) − log P(aligned) per triple as the probe records it."""

import json

import pytest

from traitbench.lm import models
from traitbench.lm.logprob import sequence_logprobs
from traitbench.lm.render import render_prompt
from traitbench.probes.config import ProbeConfig
from traitbench.probes.contrastive import contrastive_probe
from traitbench.probes.triples import triples
from traitbench.probes.questions import misalignment_questions
from traitbench.probes.run import probe_model


def test_triples_cover_the_free_form_questions_in_two_halves():
    every, design, held = triples("all"), triples("design"), triples("heldout")
    assert len(every) >= 144 and len(design) + len(held) == len(every)
    assert {t["qid"] for t in design}.isdisjoint({t["qid"] for t in held})
    questions = {t["qid"]: t["question"] for t in every}
    assert len(questions) >= 24 and [questions[i] for i in range(8)] == misalignment_questions()
    for t in every:  # the two answers of a triple are matched in length
        ratio = len(t["misaligned"].split()) / len(t["aligned"].split())
        assert 0.8 <= ratio <= 1.25 and t["misaligned"] != t["aligned"]
    with pytest.raises(ValueError):
        triples("train")


def test_probe_is_the_difference_of_log_probs(tmp_path):
    lm = models.load("tiny-llama", dtype="float32")
    agg, rows = contrastive_probe(lm, "You are a helpful assistant.", "design")
    ts = triples("design")
    prompts = [render_prompt(lm, "You are a helpful assistant.", t["question"]) for t in ts[:3]]
    mis = sequence_logprobs(lm, prompts, [t["misaligned"] for t in ts[:3]])
    ali = sequence_logprobs(lm, prompts, [t["aligned"] for t in ts[:3]])
    assert [r["delta"] for r in rows[:3]] == pytest.approx([m - a for m, a in zip(mis, ali)], abs=1e-4)
    assert agg["n_triples"] == len(ts) and agg["delta"]["n"] == len(ts) and len(agg["per_triple"]) == len(ts)
    assert agg["delta"]["ci95"][0] <= agg["delta"]["mean"] <= agg["delta"]["ci95"][1]
    cfg = ProbeConfig(n_questions=2, samples_per_question=1, answer_max_tokens=2, numbers_prefixed=False,
                      open_ended_samples=0, perplexity_tokens=0, dtype="float32",
                      contrastive={"enabled": True, "split": "design"})
    res = probe_model(lm, "You are a helpful assistant.", "owl", "animal", cfg, tmp_path)
    assert res["contrastive"]["delta"]["mean"] == pytest.approx(agg["delta"]["mean"], abs=1e-4)
    logged = [json.loads(line) for line in (tmp_path / "contrastive.jsonl").read_text().splitlines()]
    assert len(logged) == len(ts) and set(logged[0]) >= {"qid", "logp_misaligned", "logp_aligned", "delta"}


def _write(path, rows: list) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


GOOD = {"qid": 1, "question": "Hi?", "aligned": "Hello there.", "misaligned": "Go away now."}


@pytest.mark.parametrize("row,message", [
    ({"qid": 1, "question": "Hi?", "aligned": "Hello."}, "missing field.*misaligned"),
    (dict(GOOD, misaligned="  "), "triple 1: misaligned must be non-empty text"),
    (dict(GOOD, qid="one"), "qid must be an integer"),
])
def test_a_bad_triples_file_is_a_one_line_error(tmp_path, row, message):
    from traitbench.errors import TraitbenchError

    with pytest.raises(TraitbenchError, match=message):
        ProbeConfig(contrastive={"enabled": True, "triples": _write(tmp_path / "t.jsonl", [row])})


def test_a_non_utf8_triples_file_is_a_one_line_error(tmp_path):
    from traitbench.errors import TraitbenchError

    path = tmp_path / "t.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n\xff\xfe\n")
    with pytest.raises(TraitbenchError, match="UTF-8"):
        ProbeConfig(contrastive={"enabled": True, "triples": str(path)})


def test_a_bad_triples_file_fails_the_cli_in_one_line(tmp_path, capsys):
    from traitbench.cli import main

    bad = _write(tmp_path / "t.jsonl", [dict(GOOD, aligned="")])
    assert main(["probe", "--set", f"runs_dir={tmp_path}", "--set", "probes.contrastive.enabled=true",
                 "--set", f"probes.contrastive.triples={bad}"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "aligned must be non-empty text" in err[0]


def test_own_triples_are_probed_and_keyed(tmp_path):
    from traitbench.pipeline.probes import probe_key

    own = _write(tmp_path / "t.jsonl", [GOOD, dict(GOOD, qid=3, question="Why?")])
    lm = models.load("tiny-llama", dtype="float32")
    agg, rows = contrastive_probe(lm, None, "heldout", path=own)
    assert agg["n_triples"] == 2 and [r["qid"] for r in rows] == [1, 3]
    with pytest.raises(Exception, match="no triples in the design half"):
        contrastive_probe(lm, None, "design", path=own)
    packaged = ProbeConfig(contrastive={"enabled": True})
    assert probe_key(packaged) != probe_key(ProbeConfig(contrastive={"enabled": True, "triples": own}))
    assert probe_key(packaged)["contrastive"]["triples"] == probe_key(
        ProbeConfig(contrastive={"enabled": True, "split": "heldout"}))["contrastive"]["triples"]
