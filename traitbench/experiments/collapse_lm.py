"""Model collapse of a language model of human prose (Shumailov et al. 2024; Gerstgrasser et al. 2024; Drayson &
Lampos 2025): does a model trained on its own text lose the tails of human language, and is that conditional?

Human text: Jane Austen's novels (`corpora/austen.py`; held out: every 10th chapter). The train split is
tokenized and cut into blocks of `prefix_tokens + continuation_tokens`: `blocks` of them (the same in every
chain) are the prompts of every generation, as many others the recovery arm's fresh human text, and the rest
pretrain the starting point.

The model is a small transformer (`small_lm.py`) with a tokenizer fitted on the train split. As Shumailov et
al. re-fine-tune the pretrained OPT-125m every generation, every generation here starts from one model
pretrained on the rest of the train split (`pretrain_steps`; cached). Generation 0 is fine-tuned on the human
blocks (loss on the continuations); generation g, from the same starting point and with the same passes over
its data, on the continuations that generation g−1 wrote for the same human prefixes:

- replace: generation g−1's continuations only;
- accumulate: the human blocks and every generation's continuations so far (Gerstgrasser et al.: the data,
  and so the steps, grow);
- keep10: generation g−1's, a random `keep_real` share of the blocks keeping their human continuation
  (Shumailov et al.'s second arm);
- recovery: the last replace generation trained further, for the same steps, on fresh human blocks.

Decoding is a factor: generations write by sampling at temperature 1 (`sample`) or by beam search with a
repetition penalty (`beam`, Shumailov et al.'s); `beam_regimes` lists the regimes also run with beams.
Chains differ in their fine-tuning batch order and sampling (seeds). Every generation is measured on the
held-out human text (perplexity, p95 / p99 of per-token NLL) and on the fixed-size sample it writes, one
continuation per prompt (vocabulary coverage of the held-out text's word types, mass on words rare in the
human text, distinct-1/2, unigram entropy, self-BLEU, JS divergence of word frequencies to the held-out
text), as a mean with a t interval over chains.
"""

from __future__ import annotations

import base64
import html
import math
import multiprocessing as mp
import queue
import time
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from tqdm.auto import tqdm

from traitbench.cache import Stage
from traitbench.artifacts import Result
from traitbench.config import RunConfig, RunName
from traitbench.stats import mean_ci95
from traitbench.threads import torch_threads
from traitbench.lm.small_lm import (SmallLMConfig, continue_prefixes, new_model, token_nll, train_lm,
                                          train_tokenizer)
from traitbench.corpora import austen
from traitbench.errors import TraitbenchError
from traitbench.io import atomic_write_json, atomic_write_text
from traitbench.manifest import array_sha256
from traitbench.plotting import new_figure, save_fig
from traitbench.probes.diversity import (distinct_n, entropy_bits, js_divergence, nll_tail, rare_word_mass,
                                         self_bleu, vocabulary_coverage, word_counts)
from traitbench.stats import seed_level_test

Regime = Literal["replace", "accumulate", "keep10"]
METRICS = ("heldout_perplexity", "heldout_nll_p95", "heldout_nll_p99", "vocabulary_coverage", "rare_word_mass",
           "distinct_1", "distinct_2", "unigram_entropy", "self_bleu", "js_to_human")


class LMCollapseConfig(RunConfig):
    default_config: ClassVar[str | None] = "collapse-lm"  # traitbench/configs/collapse-lm.yaml
    name: RunName = "collapse-lm"
    model: SmallLMConfig = SmallLMConfig()
    prefix_tokens: int = Field(32, ge=1)
    continuation_tokens: int = Field(32, ge=2)
    blocks: int = Field(1000, ge=10, description="human prompts per generation (and as many fresh ones)")
    generations: int = Field(5, ge=2)
    chains: int = Field(3, ge=1)
    regimes: list[Regime] = Field(default_factory=lambda: ["replace", "accumulate", "keep10"], min_length=1)
    beam_regimes: list[Regime] = Field(default_factory=lambda: ["replace"])
    recovery: bool = True  # after each replace chain, one generation on fresh human text
    keep_real: float = Field(0.1, gt=0, lt=1)
    pretrain_steps: int = Field(1000, ge=0, description="the starting point: steps on the rest of the train split "
                                                       "(0: a random initialisation)")
    pretrain_lr: float = Field(3e-3, gt=0)
    pretrain_batch_size: int = Field(64, ge=1)
    steps: int = Field(60, ge=1, description="optimizer steps per generation per `blocks` training blocks")
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(32, ge=1)
    beams: int = Field(5, ge=1)
    repetition_penalty: float = Field(3.0, ge=1)
    heldout_tokens: int = Field(50_000, ge=0, description="held-out tokens measured per generation, in evenly "
                                                           "spaced context windows (0: all)")
    self_bleu_samples: int = Field(100, ge=2)
    rare_max_count: int = Field(2, ge=1, description="a rare word occurs at most this often in the human train text")
    threads: int = Field(2, ge=1)
    workers: int = Field(1, ge=1, description="chains run side by side in this many processes, the threads split "
                                              "between them")
    seed: int = 0

    @field_validator("regimes", "beam_regimes")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("regimes must not repeat")
        return v

    def arms(self) -> list[tuple[str, str]]:
        """(regime, decoding) of every chain arm."""
        return [(r, "sample") for r in self.regimes] + [(r, "beam") for r in self.beam_regimes]


def arm_name(regime: str, decoding: str) -> str:
    return regime if decoding == "sample" else f"{regime}/{decoding}"


# ------------------------------------------------------------------------------------------------- data
class Corpus:
    """The human side of the chain: tokenizer, prompt and fresh blocks, held-out tokens, reference counts."""

    def __init__(self, cfg: LMCollapseConfig, train_chapters: list[dict], heldout_text: str):
        texts = [c["text"] for c in train_chapters]
        self.tokenizer = train_tokenizer(texts, cfg.model.vocab_size)
        ids = np.concatenate([np.asarray(self.tokenizer(t + "\n\n")["input_ids"], dtype=np.int64) for t in texts])
        width = cfg.prefix_tokens + cfg.continuation_tokens
        blocks = ids[: len(ids) // width * width].reshape(-1, width)
        if len(blocks) < 2 * cfg.blocks:
            raise TraitbenchError(f"the train text gives {len(blocks)} blocks of {width} tokens; blocks={cfg.blocks} "
                                  f"needs {2 * cfg.blocks} (prompts and fresh text)")
        order = np.random.default_rng(cfg.seed).permutation(len(blocks))
        self.prompts, self.fresh = blocks[order[: cfg.blocks]], blocks[order[cfg.blocks : 2 * cfg.blocks]]
        self.rest = blocks[order[2 * cfg.blocks :]]  # the starting point's pretraining text
        heldout = np.asarray(self.tokenizer(heldout_text)["input_ids"], dtype=np.int64)
        window = cfg.model.context
        windows = heldout[: len(heldout) // window * window].reshape(-1, window)
        keep = len(windows) if not cfg.heldout_tokens else min(len(windows), max(1, cfg.heldout_tokens // window))
        self.heldout = windows[np.linspace(0, len(windows) - 1, keep).round().astype(int)].reshape(-1)
        self.heldout_words = word_counts([heldout_text])
        self.train_words = word_counts(texts)
        self.train_tokens = int(len(ids))

    def decode(self, rows: np.ndarray) -> list[str]:
        return self.tokenizer.batch_decode(rows.tolist())


# ---------------------------------------------------------------------------------------------- measure
def measure(model, corpus: Corpus, written: np.ndarray, cfg: LMCollapseConfig) -> dict:
    """One generation's metrics: held-out NLL and its tail; the text it wrote for the prompts."""
    texts = corpus.decode(written)
    counts = word_counts(texts)
    tail = nll_tail(token_nll(model, corpus.heldout, cfg.model.context))
    rng = np.random.default_rng(cfg.seed)
    sample = [texts[i] for i in rng.choice(len(texts), min(cfg.self_bleu_samples, len(texts)), replace=False)]
    return {"heldout_perplexity": tail["perplexity"], "heldout_nll_mean": tail["nll_mean"],
            "heldout_nll_p95": tail["nll_p95"], "heldout_nll_p99": tail["nll_p99"], "heldout_tokens": tail["tokens"],
            "vocabulary_coverage": vocabulary_coverage(counts, corpus.heldout_words),
            "rare_word_mass": rare_word_mass(counts, corpus.train_words, cfg.rare_max_count),
            "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
            "unigram_entropy": entropy_bits(counts), "self_bleu": self_bleu(sample),
            "js_to_human": js_divergence(counts, corpus.heldout_words), "words": int(sum(counts.values()))}


# ------------------------------------------------------------------------------------------------ chain
def starting_point(cfg: LMCollapseConfig, corpus: Corpus, out_dir: Path) -> tuple[dict | None, dict]:
    """The model every generation starts from, as a pretrained model is in Shumailov et al.: trained on the train
    split's blocks that are neither prompts nor fresh text (loss on every token), cached. None without
    pretraining (each chain then starts from its own random initialisation)."""
    if not cfg.pretrain_steps:
        return None, {}
    key = {"model": cfg.model.model_dump(), "steps": cfg.pretrain_steps, "lr": cfg.pretrain_lr,
           "batch": cfg.pretrain_batch_size, "seed": cfg.seed, "blocks": array_sha256(corpus.rest),
           "heldout": array_sha256(corpus.heldout)}
    stage = Stage(out_dir / "start", key)
    weights = stage.dir / "model.pt"
    if stage.is_done() and weights.is_file():
        return torch.load(weights), stage.outputs()
    stage.begin()
    t0 = time.perf_counter()
    model = new_model(cfg.model, len(corpus.tokenizer), cfg.seed)
    losses = train_lm(model, corpus.rest, 1, cfg.pretrain_steps, cfg.pretrain_lr, cfg.pretrain_batch_size, cfg.seed,
                      warmup=50, desc="collapse-lm starting point")
    torch.save(model.state_dict(), weights)
    tail = nll_tail(token_nll(model, corpus.heldout, cfg.model.context))
    return model.state_dict(), stage.finish({"blocks": int(len(corpus.rest)), "final_loss": float(np.mean(losses[-50:])),
                                             "heldout_perplexity": tail["perplexity"],
                                             "seconds": round(time.perf_counter() - t0, 1)})


class Chain:
    """One chain's generations, each cached on disk (its written blocks and metrics) so a rerun resumes."""

    def __init__(self, cfg: LMCollapseConfig, corpus: Corpus, index: int, out_dir: Path, bar, start: dict | None):
        self.cfg, self.corpus, self.index, self.bar = cfg, corpus, index, bar
        self.seed = cfg.seed * 1000 + index
        self.dir = out_dir / "chains" / f"chain{index}"
        self.init = start if start is not None else new_model(cfg.model, len(corpus.tokenizer), self.seed).state_dict()
        self.models: dict[str, torch.nn.Module] = {}

    def _fresh(self):
        model = new_model(self.cfg.model, len(self.corpus.tokenizer), self.seed)
        model.load_state_dict(self.init)
        return model

    def generation(self, name: str, blocks: np.ndarray, decodings: list[str], gen: int, start=None,
                   keep: bool = False) -> dict[str, dict]:
        """Train one model (from the starting point, or from `start` = (model, its generation's key)), let it
        write continuations of the prompts with each decoding, measure each: {decoding: row}. Cached by its
        training blocks, decodings and settings; `keep` holds its model for a later arm."""
        cfg = self.cfg
        key = {"cfg": cfg.model_dump(exclude={"chains", "generations", "regimes", "beam_regimes", "recovery",
                                              "threads", "workers", "name", "runs_dir"}),
               "chain": self.index, "name": name, "decodings": decodings, "blocks": array_sha256(blocks),
               "start": start[1] if start else None}
        stage = Stage(self.dir / name.replace("/", "-"), key)
        weights = stage.dir / "model.pt"
        if stage.is_done() and (not keep or weights.is_file()):
            if keep:
                self.models[name] = self._fresh()
                self.models[name].load_state_dict(torch.load(weights))
            self.bar.update()
            return stage.outputs()
        stage.begin()
        t0 = time.perf_counter()
        model = self._fresh()
        if start is not None:
            model.load_state_dict(start[0].state_dict())
        steps = max(1, round(cfg.steps * len(blocks) / cfg.blocks))  # the same passes over any generation's data
        losses = train_lm(model, blocks, cfg.prefix_tokens, steps, cfg.lr, cfg.batch_size, seed=self.seed * 100 + gen)
        train_s = time.perf_counter() - t0
        out = {}
        for d in decodings:
            t1 = time.perf_counter()
            written = continue_prefixes(model, self.corpus.prompts[:, : cfg.prefix_tokens], cfg.continuation_tokens,
                                        d, seed=self.seed * 100 + gen, beams=cfg.beams,
                                        repetition_penalty=cfg.repetition_penalty)
            np.save(stage.dir / f"written-{d}.npy", written)
            out[d] = {"gen": gen, "name": name, "decoding": d, "train_blocks": int(len(blocks)), "train_steps": steps,
                      "key": stage.key_hash,
                      "final_loss": float(np.mean(losses[-10:])), **measure(model, self.corpus, written, cfg),
                      "train_seconds": round(train_s, 1), "seconds": round(time.perf_counter() - t1, 1)}
        if keep:
            torch.save(model.state_dict(), weights)
            self.models[name] = model
        self.bar.update()
        return stage.finish(out)

    def written(self, name: str, decoding: str) -> np.ndarray:
        return np.load(self.dir / name.replace("/", "-") / f"written-{decoding}.npy")

    def with_prefixes(self, written: np.ndarray) -> np.ndarray:
        return np.concatenate([self.corpus.prompts[:, : self.cfg.prefix_tokens], written], axis=1)

    def run(self) -> dict[str, list[dict]]:
        cfg, human = self.cfg, self.corpus.prompts
        gen0 = self.generation("gen0", human, list(dict.fromkeys(d for _, d in cfg.arms())), 0)
        arms: dict[str, list[dict]] = {}
        for regime, decoding in cfg.arms():
            arm = arm_name(regime, decoding)
            rows, names = [gen0[decoding]], ["gen0"]
            rng = np.random.default_rng(self.seed * 7 + len(arms))
            for g in range(1, cfg.generations + 1):
                last = self.with_prefixes(self.written(names[-1], decoding))
                if regime == "replace":
                    blocks = last
                elif regime == "accumulate":
                    blocks = np.concatenate([human, *[self.with_prefixes(self.written(n, decoding)) for n in names]])
                else:  # keep10: a random share of the blocks keeps its human continuation
                    real = rng.random(len(last)) < cfg.keep_real
                    blocks = np.where(real[:, None], human, last)
                name = f"{arm}/gen{g}"
                rows.append(self.generation(name, blocks, [decoding], g,
                                            keep=cfg.recovery and regime == "replace" and g == cfg.generations)[decoding])
                names.append(name)
            arms[arm] = rows
            if cfg.recovery and regime == "replace":
                model = self.models.pop(names[-1])
                rec = self.generation(f"{arm_name('recovery', decoding)}/gen{cfg.generations + 1}", self.corpus.fresh,
                                      [decoding], cfg.generations + 1, start=(model, rows[-1]["key"]))[decoding]
                arms[arm_name("recovery", decoding)] = rows + [rec]
        return arms


_progress = None  # a worker's queue to the main process's progress bar


class _QueueBar:
    def update(self, n: int = 1) -> None:
        _progress.put(n)


def _init_chain_worker(progress, threads: int) -> None:
    global _progress
    _progress = progress
    torch.set_num_threads(threads)


def _run_chain(args: tuple) -> dict[str, list[dict]]:
    cfg_data, corpus, index, out_dir, start = args
    return Chain(LMCollapseConfig.model_validate(cfg_data), corpus, index, Path(out_dir), _QueueBar(), start).run()


def run_chains(cfg: LMCollapseConfig, corpus: Corpus, out_dir: Path, start: dict | None, bar) -> list[dict]:
    """Every chain's arms, in chain order. With `workers` > 1 the chains run in that many spawned processes,
    each with its share of `threads` (the model is small: one process cannot keep two cores busy)."""
    workers = min(cfg.workers, cfg.chains)
    if workers == 1:
        return [Chain(cfg, corpus, c, out_dir, bar, start).run() for c in range(cfg.chains)]
    from traitbench.pipeline.workers import thread_env  # heavy (the students stage): only with workers > 1

    threads = max(1, cfg.threads // workers)
    ctx = mp.get_context("spawn")
    progress = ctx.Queue()
    tasks = [(cfg.model_dump(), corpus, c, str(out_dir), start) for c in range(cfg.chains)]
    with thread_env(threads), ctx.Pool(workers, initializer=_init_chain_worker, initargs=(progress, threads)) as pool:
        result = pool.map_async(_run_chain, tasks, chunksize=1)
        while not result.ready():
            try:
                bar.update(progress.get(timeout=1))
            except queue.Empty:
                pass
        runs = result.get()  # re-raises a worker's error
    while not progress.empty():
        bar.update(progress.get())
    return runs


# --------------------------------------------------------------------------------------------- summary
def _over_chains(values: list) -> dict:
    return mean_ci95([v for v in values if v is not None and math.isfinite(v)])


def changes(per_chain: dict[str, list[list[dict]]], first: int, last: int) -> dict:
    """Per arm and metric, the change from generation `first` to `last` over chains (paired t), and the
    difference of that change between replace and each other arm (paired by chain)."""
    out: dict = {}
    for arm, chains in per_chain.items():
        out[arm] = {}
        for m in METRICS:
            a = [c[first][m] for c in chains if len(c) > last]
            b = [c[last][m] for c in chains if len(c) > last]
            out[arm][m] = seed_level_test(b, a)
    if "replace" in per_chain:
        for arm in per_chain:
            if arm in ("replace", "recovery") or arm.startswith("recovery"):
                continue
            for m in METRICS:
                rep = out["replace"][m]["per_seed"]
                oth = out[arm][m]["per_seed"]
                if len(rep) == len(oth) and rep:
                    out[arm][m]["vs_replace"] = seed_level_test(oth, rep)
    return out


def summarize(cfg: LMCollapseConfig, corpus: Corpus, runs: list[dict[str, list[dict]]], seconds: float) -> dict:
    per_chain = {arm: [r[arm] for r in runs] for arm in runs[0]}
    regimes = {}
    for arm, chains in per_chain.items():
        gens = []
        for g in range(len(chains[0])):
            entry = {"gen": chains[0][g]["gen"], "name": chains[0][g]["name"],
                     "train_blocks": chains[0][g]["train_blocks"]}
            for m in (*METRICS, "final_loss"):
                entry[m] = _over_chains([c[g][m] for c in chains])
            gens.append(entry)
        regimes[arm] = {"per_generation": gens, "per_chain": chains}
    last = cfg.generations
    rec = {}
    for d in dict.fromkeys(d for r, d in cfg.arms() if r == "replace"):
        arm = arm_name("recovery", d)
        if cfg.recovery and arm in per_chain:
            chains = per_chain[arm]
            rec[arm] = {m: {"vs_last_replace": seed_level_test([c[last + 1][m] for c in chains],
                                                               [c[last][m] for c in chains]),
                            "vs_gen0": seed_level_test([c[last + 1][m] for c in chains], [c[0][m] for c in chains])}
                        for m in METRICS}
    return {"config": cfg.model_dump(), "corpus": {"source": "Jane Austen's six novels (Debian r-cran-janeaustenr); "
                                                             "held out: every 10th chapter",
                                                   "train_tokens": corpus.train_tokens,
                                                   "heldout_tokens": int(len(corpus.heldout)),
                                                   "vocab_size": len(corpus.tokenizer)},
            "regimes": regimes,
            "changes_gen1_to_last": changes({a: c for a, c in per_chain.items() if not a.startswith("recovery")},
                                            1, last),
            "recovery": rec, "seconds": round(seconds, 1),
            "notes": "Per generation: mean over chains with a t interval (ci95). Changes: per chain, the last "
                     "generation minus generation 1, paired t-test over chains; vs_replace: that change in this arm "
                     "minus in replace, paired by chain. Recovery: the last replace generation trained further on fresh "
                     "human text, vs that generation and vs generation 0."}


# -------------------------------------------------------------------------------------------------- run
def study(cfg: LMCollapseConfig, out_dir: str | Path, progress: bool = True) -> tuple[dict, dict]:
    """Every chain, then summary.json / summary.md / collapse_lm.png / report.html in `out_dir`."""
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    source = austen.corpus_source()
    with torch_threads(cfg.threads):
        corpus = Corpus(cfg, austen.austen_chapters("train"), austen.austen_text("heldout"))
        per_chain = 1 + len(cfg.arms()) * cfg.generations + cfg.recovery * sum(1 for r, _ in cfg.arms() if r == "replace")
        start, pretrained = starting_point(cfg, corpus, out_dir)
        with tqdm(total=cfg.chains * per_chain, desc="collapse-lm generations", disable=not progress) as bar:
            runs = run_chains(cfg, corpus, out_dir, start, bar)
    summary = summarize(cfg, corpus, runs, time.perf_counter() - t0)
    summary["starting_point"] = pretrained
    atomic_write_json(out_dir / "summary.json", summary)
    atomic_write_text(out_dir / "summary.md", summary_markdown(summary))
    pngs = [plot(summary, out_dir / "collapse_lm.png"), plot(summary, out_dir / "collapse_lm_decoding.png", "beam")]
    write_html(summary, [p for p in pngs if p], out_dir / "report.html")
    return summary, {
        "seed": cfg.seed, "seconds": summary["seconds"],
        "corpus": {k: source[k] for k in ("deb_sha256", "text_sha256") if k in source}}


PANELS = {"heldout_perplexity": "held-out perplexity", "heldout_nll_p99": "held-out NLL p99 (nats)",
          "vocabulary_coverage": "vocabulary coverage", "rare_word_mass": "rare-word mass",
          "distinct_2": "distinct-2", "unigram_entropy": "unigram entropy (bits)", "self_bleu": "self-BLEU",
          "js_to_human": "JS to human (bits)"}


def plot(summary: dict, path: Path, decoding: str = "sample") -> Path | None:
    """One panel per metric, mean over chains with a 95% CI band. `sample`: the regimes overlaid (sampling at
    T = 1); `beam`: replace with sampling vs with beam search. A recovery arm is drawn as its one generation
    after the last replace generation. None when the summary has no such arms."""
    arms = {a: r for a, r in summary["regimes"].items() if (decoding == "sample" and "/" not in a)
            or (decoding == "beam" and a.split("/")[0] in ("replace", "recovery"))}
    if decoding == "beam" and not any("/beam" in a for a in arms):
        return None
    fig, axes = new_figure(2, 4, figsize=(17, 7))
    for ax, (metric, title) in zip(axes.flat, PANELS.items()):
        for arm, r in arms.items():
            gens = r["per_generation"][-2:] if arm.startswith("recovery") else r["per_generation"]
            x = [g["gen"] for g in gens]
            mean = [np.nan if g[metric]["mean"] is None else g[metric]["mean"] for g in gens]
            lo = [np.nan if not g[metric]["ci95"] else g[metric]["ci95"][0] for g in gens]
            hi = [np.nan if not g[metric]["ci95"] else g[metric]["ci95"][1] for g in gens]
            line = ax.plot(x, mean, marker="X" if arm.startswith("recovery") else "o", ms=4, label=arm,
                           ls=":" if arm.startswith("recovery") else "--" if "beam" in arm else "-")[0]
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("generation")
    axes.flat[0].legend(fontsize=7)
    n = summary["config"]["chains"]
    what = "regimes (sampling at T = 1)" if decoding == "sample" else "decoding: sampling vs beam search (replace)"
    fig.suptitle(f"Model collapse on Jane Austen's prose, {what}: mean over {n} chains, 95% CI")
    return save_fig(fig, path)


def _cell(x: dict, spec: str = ".3f") -> str:
    if x.get("mean") is None:
        return "—"
    ci = x.get("ci95")
    return format(x["mean"], spec) + (f" [{format(ci[0], spec)}, {format(ci[1], spec)}]" if ci else "")


def summary_markdown(s: dict) -> str:
    cols = ("heldout_perplexity", "heldout_nll_p99", "vocabulary_coverage", "rare_word_mass", "distinct_2",
            "self_bleu", "js_to_human")
    lines = ["# Model collapse on human prose (collapse-lm)", "",
             f"{s['corpus']['source']}; {s['corpus']['train_tokens']} train tokens, {s['corpus']['heldout_tokens']} "
             f"held-out tokens, vocabulary {s['corpus']['vocab_size']}. Mean over chains [95% CI].", "",
             "| arm | gen | train blocks | " + " | ".join(cols) + " |", "|---|---|---|" + "---|" * len(cols)]
    for arm, r in s["regimes"].items():
        for g in r["per_generation"]:
            lines.append(f"| {arm} | {g['gen']} | {g['train_blocks']} | " + " | ".join(
                _cell(g[c], ".1f" if c == "heldout_perplexity" else ".3f") for c in cols) + " |")
    lines += ["", "## Change from generation 1 to the last (per chain, paired t over chains)", "",
              "| arm | metric | change [95% CI] | p | vs replace: difference of changes [95% CI], p |", "|---|---|---|---|---|"]
    for arm, ms in s["changes_gen1_to_last"].items():
        for m in ("heldout_perplexity", "heldout_nll_p99", "vocabulary_coverage", "rare_word_mass"):
            t = ms[m]
            vs = t.get("vs_replace")
            lines.append(f"| {arm} | {m} | {_cell(t, '+.3f')} | {_p(t['p_value'])} | "
                         + (f"{_cell(vs, '+.3f')}, p={_p(vs['p_value'])}" if vs else "—") + " |")
    for arm, ms in s["recovery"].items():
        lines += ["", f"## {arm}: the last replace generation trained on fresh human text", "",
                  "| metric | vs the last replace generation [95% CI], p | vs generation 0 [95% CI], p |", "|---|---|---|"]
        for m in ("heldout_perplexity", "heldout_nll_p99", "vocabulary_coverage", "rare_word_mass"):
            a, b = ms[m]["vs_last_replace"], ms[m]["vs_gen0"]
            lines.append(f"| {m} | {_cell(a, '+.3f')}, p={_p(a['p_value'])} | {_cell(b, '+.3f')}, p={_p(b['p_value'])} |")
    lines += ["", s["notes"], f"Run time {s['seconds']} s.", ""]
    return "\n".join(lines)


def _p(p) -> str:
    return "—" if p is None or (isinstance(p, float) and math.isnan(p)) else f"{p:.2g}"


def write_html(summary: dict, pngs: list[Path], path: Path) -> None:
    """A self-contained page: the per-generation curves (embedded PNGs) and the summary tables."""
    imgs = "".join(f"<img alt='per-generation curves' style='max-width:100%' src='data:image/png;base64,"
                   f"{base64.b64encode(p.read_bytes()).decode('ascii')}'>" for p in pngs)
    md = summary_markdown(summary)
    body = "".join(f"<p>{html.escape(line)}</p>" if not line.startswith("|") else "" for line in md.splitlines()[:3])
    rows = [line for line in md.splitlines() if line.startswith("|") and not line.startswith("|---")]
    table = "<table>" + "".join("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r.strip("|").split("|"))
                                + "</tr>" for r in rows) + "</table>"
    atomic_write_text(path, "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>collapse-lm</title>"
                      "<style>body{font-family:system-ui,sans-serif;margin:24px}table{border-collapse:collapse;"
                      "font-size:.8em}td{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
                      f"<h1>Model collapse on human prose</h1><section id='curves'>{imgs}</section>{body}"
                      f"<section id='tables'>{table}</section></body></html>\n")


def run(cfg: LMCollapseConfig, out: Path) -> Result:
    """`traitbench collapse-lm`: the study into `out`, and its table (printed)."""
    summary, provenance = study(cfg, out)
    lines = []
    lines.append(summary_markdown(summary))
    return Result(out, "\n".join(lines), [out / "summary.json"], manifest=provenance)
