"""Batched sampling with explicit settings, streamed to a resumable JSONL log.

Rows are sampled in fixed batches of a length-sorted prompt list, each batch seeded from (seed, batch
number), so an interrupted run resumes at the first unfinished batch and the file ends with exactly the
requested rows: none lost, none doubled, identical to an uninterrupted run. `sample_answers` is the probes'
in-memory sampler (one answer per prompt at temperature 1).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from traitbench.io import JsonlAppender, read_complete_jsonl
from traitbench.lm.batching import in_length_batches, length_batches
from traitbench.lm.config import GenerationConfig
from traitbench.lm.decode import Sample, decode, stop_token_ids
from traitbench.lm.models import LoadedModel
from traitbench.lm.render import add_special_tokens, clean_completion


def generate(lm: LoadedModel, texts: list[str], gen: GenerationConfig, seed: int,
             reject: Callable[[str], str | None] | None = None) -> list[Sample]:
    """Sample one completion per rendered prompt (one batch) with the fast decoder (`decode.py`).

    `reject` (used when `gen.early_reject`) stops a row once its text can no longer pass the filter.
    """
    return decode(lm, texts, temperature=gen.temperature, top_p=gen.top_p, top_k=gen.top_k,
                  max_new_tokens=gen.max_new_tokens, seed=seed, reject=reject if gen.early_reject else None)


@torch.inference_mode()
def hf_generate(lm: LoadedModel, texts: list[str], gen: GenerationConfig, seed: int,
                min_new_tokens: int = 0) -> list[str]:
    """The plain reference path: transformers' `generate` on a left-padded batch (no prefix sharing, no early
    stop); used by tests as the ground truth and by `traitbench bench` as the naive baseline."""
    tok, model = lm.tokenizer, lm.model
    enc = tok(texts, add_special_tokens=add_special_tokens(lm), return_tensors="pt", padding=True,
              padding_side="left").to(model.device)
    torch.manual_seed(seed)
    kwargs = dict(do_sample=gen.temperature > 0, max_new_tokens=gen.max_new_tokens, pad_token_id=tok.pad_token_id,
                  eos_token_id=sorted(stop_token_ids(lm)), min_new_tokens=min_new_tokens or None)
    if gen.temperature > 0:
        kwargs.update(temperature=gen.temperature, top_p=gen.top_p, top_k=gen.top_k or None)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if lm.spec.kind == "base" and not min_new_tokens:
        kwargs.update(stop_strings=["\n"], tokenizer=tok)
    out = model.generate(**enc, **kwargs)[:, enc.input_ids.shape[1]:]
    return [clean_completion(lm, t) for t in tok.batch_decode(out, skip_special_tokens=True)]


def chunked_batches(texts: list[str], size: int, chunk: int) -> list[list[list[int]]]:
    """Consecutive chunks of `chunk` rows (in index order), each cut into length-sorted batches.

    Stopping after any chunk leaves an unbiased sample of the prompts (sorting only within a chunk)."""
    chunks = []
    for start in range(0, len(texts), chunk):
        part = texts[start : start + chunk]
        chunks.append([[start + i for i in b] for b in length_batches([len(t) for t in part], size)])
    return chunks


def sample_rows(lm: LoadedModel, rows: list[dict], rendered: list[str], out_path: str | Path,
                gen: GenerationConfig, seed: int, desc: str = "sampling",
                reject: Callable[[str], str | None] | None = None,
                enough: Callable[[list[dict]], bool] | None = None, chunk: int | None = None) -> dict:
    """Append one completion per row (rows carry a unique `idx`) to `out_path`, resuming if it exists.
    Each row records why it ended (`finish`: stop, length, or reject:<reason> from `reject`).

    Rows go in chunks of `chunk` (default: all rows, one chunk); after each finished chunk, `enough(rows so
    far)` may end sampling early (e.g. once the filter keeps as many rows as the dataset needs). Batches are
    numbered across chunks and seeded by number, so a resumed run reproduces an uninterrupted one.
    Returns throughput figures for this call and how many rows were sampled in all.
    """
    have = {r["idx"]: r for r in read_complete_jsonl(out_path)}
    chunks = chunked_batches(rendered, gen.batch_size, chunk or len(rows))
    n_tokens, t0, b, stopped = 0, time.perf_counter(), 0, False
    with JsonlAppender(out_path) as log, tqdm(total=len(rows), initial=len(have), desc=desc, unit="row") as bar:
        for batches in chunks:
            for idxs in batches:
                if any(rows[i]["idx"] not in have for i in idxs):
                    samples = generate(lm, [rendered[i] for i in idxs], gen, seed=seed * 1_000_003 + b, reject=reject)
                    n_tokens += sum(s.n_tokens for s in samples)
                    new = [dict(rows[i], completion=s.text, finish=s.finish, n_tokens=s.n_tokens, seed=seed, batch=b)
                           for i, s in zip(idxs, samples) if rows[i]["idx"] not in have]
                    new.sort(key=lambda r: r["idx"])
                    log.write(new)
                    have.update((r["idx"], r) for r in new)
                    bar.update(len(new))
                    bar.set_postfix(tok_s=f"{n_tokens / (time.perf_counter() - t0):.0f}")
                b += 1
            if enough is not None and enough(list(have.values())):
                stopped = len(have) < len(rows)
                break
    secs = time.perf_counter() - t0
    return {"new_tokens": n_tokens, "seconds": round(secs, 2), "tokens_per_s": round(n_tokens / secs, 1) if secs else 0,
            "rows": len(have), "stopped_early": stopped}


def sample_answers(lm: LoadedModel, texts: list[str], max_tokens: int, batch: int, seed: int,
                   desc: str | None = None) -> list[str]:
    """One answer per rendered prompt at temperature 1 (no top-p/top-k), in length-sorted seeded batches;
    `desc`: a progress bar of that name."""
    gen = GenerationConfig(temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=max_tokens, batch_size=batch,
                           early_reject=False)

    with tqdm(total=len(texts), desc=desc, unit="answer", disable=desc is None) as bar:
        def run(idxs: list[int], b: int) -> list[str]:
            out = [s.text for s in generate(lm, [texts[i] for i in idxs], gen, seed=seed * 7919 + b * batch)]
            bar.update(len(idxs))
            return out

        return in_length_batches(run, [len(t) for t in texts], batch)
