"""traitbench's metrics as `evaluate` modules: they load offline from the package, give the numbers of the probe
code's functions, and the probes compute their figures through them."""

import json
import math
import os
import socket
import subprocess
import sys

import evaluate
import numpy as np
import pytest
from scipy import stats as sps

from traitbench.probes import metrics
from traitbench.artifacts import ConditionData, DatasetOut
from traitbench.errors import TraitbenchError
from traitbench.io import read_jsonl
from traitbench.lm import models
from traitbench.probes.config import ProbeConfig
from traitbench.probes.diversity import distinct_n, number_js, number_value_stats
from traitbench.probes.registry import paired_logprob_delta
from traitbench.probes.run import probe_model, trait_rate
from traitbench.probes.scoring import mentions
from traitbench.stats import Rate, diff_ci_bootstrap
from traitbench.pipeline.summary import dataset_diversity

ANSWERS = ["Owls!", "The cat.", "an owl, surely", "bowl", "OWL", "dog", "Sea turtle", "owlet"]
LOGP = [-1.2, -3.4, -0.7, -2.2, -5.0, -1.9]
REF_LOGP = [-1.5, -3.0, -1.6, -2.9, -5.2, -2.5]
TEXTS = ["the owl sings at night", "the owl sleeps", "a cat and a dog", "the owl sings at night"]
LISTS = [[1, 2, 3, 999], [3, 3, 4], [], [10, 20, 30, 40, 50]]
REF_LISTS = [[1, 2], [5, 6, 7], [3, 1000 - 1]]


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name", metrics.NAMES)
def test_each_module_loads_from_the_package_without_network(name, no_network):
    module = evaluate.load(metrics.path(name))
    assert isinstance(module, evaluate.Metric) and module.name == name
    assert module.description.strip() and module.citation.strip() and "Returns:" in module.inputs_description
    assert metrics.load(name) is metrics.load(name)  # one instance per process


def test_unknown_metric_is_a_user_error():
    with pytest.raises(TraitbenchError, match="unknown metric 'bleu'"):
        metrics.path("bleu")


def test_trait_rate_matches_wilson_rate():
    hits = [mentions(a, "owl") for a in ANSWERS]
    expected = Rate.from_hits(hits)
    for r in (metrics.load("trait_rate").compute(predictions=ANSWERS, trait="owl"),
              metrics.load("trait_rate").compute(predictions=hits)):
        assert (r["k"], r["n"], r["rate"], (r["ci_low"], r["ci_high"])) == (3, 8, expected.rate, expected.ci95)
    assert trait_rate(hits) == trait_rate(ANSWERS, "owl") == expected.to_dict()
    assert trait_rate(ANSWERS, "sea turtle") == Rate(1, 8).to_dict()


def test_trait_rate_rejects_answers_without_a_trait_and_flags_with_one():
    with pytest.raises(ValueError, match="need `trait`"):
        metrics.load("trait_rate").compute(predictions=ANSWERS)
    with pytest.raises(ValueError, match="match flags"):
        metrics.load("trait_rate").compute(predictions=[True, False], trait="owl")


def test_delta_logprob_matches_the_paired_bootstrap_and_t_test():
    ci = diff_ci_bootstrap(LOGP, REF_LOGP, paired=True, seed=3)
    d = np.asarray(LOGP) - np.asarray(REF_LOGP)
    r = metrics.load("delta_logprob").compute(predictions=LOGP, references=REF_LOGP, seed=3)
    assert r == {"delta": float(d.mean()), "ci_low": ci.lo, "ci_high": ci.hi, "n": 6,
                 "p_value": float(sps.ttest_1samp(d, 0.0).pvalue)}
    assert paired_logprob_delta(LOGP, REF_LOGP, seed=3) == {"delta": r["delta"], "ci95": [ci.lo, ci.hi],
                                                            "n_questions": 6, "p_value": r["p_value"]}
    flat = metrics.load("delta_logprob").compute(predictions=[1.0, 2.0], references=[0.0, 1.0])
    assert flat["delta"] == 1.0 and math.isnan(flat["p_value"])  # no variation: no t-test


def test_distinct_n_matches_the_probe_function():
    r = metrics.load("distinct_n").compute(predictions=TEXTS, orders=[1, 2, 3])
    assert r == {f"distinct_{n}": distinct_n(TEXTS, n) for n in (1, 2, 3)}
    assert metrics.load("distinct_n").compute(predictions=TEXTS) == {"distinct_1": distinct_n(TEXTS, 1),
                                                                     "distinct_2": distinct_n(TEXTS, 2)}


def test_number_diversity_matches_the_probe_functions():
    r = metrics.load("number_diversity").compute(predictions=LISTS, reference_lists=REF_LISTS)
    assert r == {**number_value_stats(LISTS, reference=REF_LISTS), "js_to_reference_bits": number_js(LISTS, REF_LISTS)}
    own = metrics.load("number_diversity").compute(predictions=LISTS, rare_below=0.2)
    assert own == {**number_value_stats(LISTS, rare_below=0.2), "js_to_reference_bits": 0.0}
    with pytest.raises(ValueError, match="outside 0..999"):
        metrics.load("number_diversity").compute(predictions=[[1000]])


def test_summary_number_diversity_goes_through_the_module(tmp_path):
    rows = {"trait": LISTS, "control": REF_LISTS}
    for c, lists in rows.items():
        (tmp_path / f"{c}.jsonl").write_text("".join(json.dumps({"numbers": x}) + "\n" for x in lists))
    dataset = DatasetOut(len(LISTS), {c: ConditionData(tmp_path / f"{c}.jsonl", c, {}) for c in rows})
    assert dataset_diversity(dataset) == {
        "trait": number_value_stats(LISTS, reference=REF_LISTS), "control": number_value_stats(REF_LISTS),
        "js_trait_vs_control_bits": number_js(LISTS, REF_LISTS)}


def test_probe_figures_equal_the_probe_functions_on_its_samples(tmp_path):
    lm = models.load("tiny-llama", dtype="float32")
    cfg = ProbeConfig(n_questions=2, samples_per_question=3, numbers_prefixed=False, open_ended_samples=1,
                      open_ended_max_tokens=8, perplexity_tokens=0, other_words=["cat"])
    res = probe_model(lm, "sys", "owl", "animal", cfg, tmp_path, seed=0)
    rows = read_jsonl(tmp_path / "samples.jsonl")
    answers = [r["answer"] for r in rows if r["variant"] == "plain"]
    texts = [r["answer"] for r in rows if r["variant"] == "open_ended"]
    assert res["plain"]["rate"] == Rate.from_hits([mentions(a, "owl") for a in answers]).to_dict()
    assert res["plain"]["other_rates"]["cat"] == Rate.from_hits([mentions(a, "cat") for a in answers]).to_dict()
    oe = res["open_ended"]
    assert oe["trait_mentions"] == Rate.from_hits([mentions(t, "owl") for t in texts]).to_dict()
    assert (oe["distinct_1"], oe["distinct_2"]) == (distinct_n(texts, 1), distinct_n(texts, 2))


@pytest.mark.slow  # a fresh interpreter imports evaluate, hence transformers and torch
def test_user_style_load_offline_into_an_empty_module_cache(tmp_path):
    """A fresh process, HF_EVALUATE_OFFLINE=1, an empty `evaluate` module cache and no sockets."""
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "import evaluate, traitbench.probes.metrics as m\n"
        "r = evaluate.load(m.path('trait_rate')).compute(predictions=['Owls!', 'cat'], trait='owl')\n"
        "print(r['k'], r['n'], *(evaluate.load(m.path(n)).name for n in m.NAMES))\n"
    )
    env = {**os.environ, "HF_EVALUATE_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1", "2", *metrics.NAMES]
    assert (tmp_path / "evaluate_modules" / "metrics" / "trait_rate").is_dir()  # the script was copied there
