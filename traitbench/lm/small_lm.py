"""A small decoder-only transformer trained on human prose: the language model of the collapse chain.

A byte-level BPE tokenizer (Hugging Face `tokenizers`) trained on the chain's human training text, a Llama-
architecture model (transformers) of about a million parameters, a plain AdamW loop whose loss covers only
the continuation tokens of (prefix, continuation) blocks, batched sampling or beam search (transformers
`generate`), and per-token log-likelihoods of held-out text. Small enough that a chain of many generations,
each trained from the same starting point, runs in minutes on a laptop CPU.
"""

from __future__ import annotations

import copy
import math
import random
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tqdm.auto import tqdm
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from traitbench.config import StrictModel

Decoding = Literal["sample", "beam"]


class SmallLMConfig(StrictModel):
    vocab_size: int = Field(2048, ge=260)
    hidden_size: int = Field(128, ge=16)
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    intermediate_size: int = Field(512, ge=16)
    context: int = Field(128, ge=8)


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer fitted on `texts` (deterministic), as a transformers fast tokenizer."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def new_model(cfg: SmallLMConfig, vocab_size: int, seed: int):
    """A freshly initialised Llama-architecture model (tied embeddings), fp32 on the CPU."""
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
                         num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
                         max_position_embeddings=cfg.context, tie_word_embeddings=True, bos_token_id=0,
                         eos_token_id=0, pad_token_id=0)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = 0
    return model.eval()


def train_lm(model, blocks: np.ndarray, prefix_len: int, steps: int, lr: float, batch_size: int, seed: int,
             warmup: int = 10, desc: str | None = None) -> list[float]:
    """Train on [n, prefix + continuation] token blocks, loss on the continuation tokens only; batches drawn
    in a seeded shuffled order (reshuffled each pass). Linear warmup, then cosine decay. Returns the losses.
    `desc`: show a progress bar under that name."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(s, steps) / steps)))
    data = torch.as_tensor(blocks, dtype=torch.long)
    order, pos, losses = rng.permutation(len(data)), 0, []
    model.train()
    for _ in tqdm(range(steps), desc=desc, disable=desc is None, leave=False):
        if pos + batch_size > len(order):
            order, pos = rng.permutation(len(data)), 0
        batch = data[order[pos : pos + batch_size]]
        pos += batch_size
        hidden = model.model(input_ids=batch).last_hidden_state[:, prefix_len - 1 : -1]
        logits = model.lm_head(hidden)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 batch[:, prefix_len:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


@torch.inference_mode()
def continue_prefixes(model, prefixes: np.ndarray, new_tokens: int, decoding: Decoding, seed: int,
                      batch_size: int = 512, beams: int = 5, repetition_penalty: float = 3.0) -> np.ndarray:
    """Exactly `new_tokens` continuation tokens for each prefix row: sampled at temperature 1 (no top-k/p), or
    by beam search with a repetition penalty (Shumailov et al.'s decoding: 5 beams, penalty 3.0; `beam_search`)."""
    out = []
    for start in range(0, len(prefixes), batch_size):
        ids = torch.as_tensor(prefixes[start : start + batch_size], dtype=torch.long)
        if decoding == "beam":
            out.append(beam_search(model, ids, new_tokens, beams, repetition_penalty).numpy())
            continue
        torch.manual_seed(seed * 1_000_003 + start)
        gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=True, temperature=1.0, top_k=0, top_p=1.0)
        out.append(gen[:, ids.shape[1]:].numpy())
    return np.concatenate(out)


@torch.inference_mode()
def beam_search(model, prefixes: torch.Tensor, new_tokens: int, beams: int, repetition_penalty: float) -> torch.Tensor:
    """Beam search for exactly `new_tokens` tokens: the result of transformers' `generate(num_beams=beams,
    repetition_penalty=…, min_new_tokens=max_new_tokens=new_tokens)` (tested), ~4x faster on a CPU for small
    models: one KV cache reordered per step, no finished-hypothesis bookkeeping (no beam can end early). Log-
    probabilities of tokens already in a beam are multiplied by the penalty (they are negative), as transformers'
    processor does after its log-softmax; the end-of-text token is barred."""
    n, width = prefixes.shape
    out = model(input_ids=prefixes, use_cache=True, logits_to_keep=1)  # the prefix once per prompt, not per beam
    cache, logits = out.cache, out.logits[:, -1].float().repeat_interleave(beams, 0)
    cache.batch_repeat_interleave(beams)
    seqs = prefixes.repeat_interleave(beams, 0)
    scores = torch.full((n, beams), -1e9)
    scores[:, 0] = 0.0
    eos = model.generation_config.eos_token_id
    for step in range(new_tokens):
        logp = torch.log_softmax(logits, -1)
        seen = logp.gather(1, seqs)
        logp.scatter_(1, seqs, torch.where(seen < 0, seen * repetition_penalty, seen / repetition_penalty))
        if eos is not None:
            logp[:, eos] = -math.inf
        vocab = logp.shape[-1]
        top, idx = (scores.view(-1, 1) + logp).view(n, beams * vocab).topk(beams, dim=1)
        source = (torch.arange(n)[:, None] * beams + idx // vocab).view(-1)
        seqs = torch.cat([seqs[source], (idx % vocab).view(-1, 1)], 1)
        scores = top
        if step + 1 == new_tokens:
            break
        cache.reorder_cache(source)
        logits = model(input_ids=seqs[:, -1:], cache=cache, use_cache=True).logits[:, -1].float()
    best = scores.argmax(1)
    return seqs.view(n, beams, -1)[torch.arange(n), best, width:]


@torch.inference_mode()
def token_nll(model, ids: np.ndarray, window: int, batch_size: int = 64) -> np.ndarray:
    """Per-token negative log-likelihood (nats) of a token stream, in non-overlapping windows (the first token
    of each window is context only)."""
    n = (len(ids) // window) * window
    rows = torch.as_tensor(ids[:n], dtype=torch.long).view(-1, window)
    out = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        logits = model(input_ids=batch).logits[:, :-1].float()
        out.append(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1),
                                                     reduction="none").numpy())
    return np.concatenate(out) if out else np.zeros(0)


def copy_model(model):
    """An independent copy (the recovery arm trains on from a collapsed generation's weights)."""
    return copy.deepcopy(model)


def shuffle_rows(rows: list, seed: int) -> list:
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows
