"""Log-probability probes: log P(answer starts with the trait word) and held-out perplexity."""

from __future__ import annotations

import math

import torch

from traitbench.lm.batching import length_batches
from traitbench.lm.models import LoadedModel, head_rows
from traitbench.lm.render import add_special_tokens


def answer_variants(lm: LoadedModel, word: str) -> list[str]:
    """Spellings of a one-word answer: lower/capitalised, with a leading space where the format puts one."""
    forms = {word.lower(), word[:1].upper() + word[1:].lower()}
    if lm.spec.kind == "base":  # completion prompts end in "Answer:" and continue with a space
        return sorted(" " + f for f in forms)
    return sorted(forms)


@torch.inference_mode()
def sequence_logprobs(lm: LoadedModel, prompts: list[str], continuations: list[str], batch_size: int = 32) -> list[float]:
    """log P(continuation | prompt), summed over the continuation's tokens, for each pair.

    Sequences run right-padded without an attention mask (under causal attention no real token sees the
    padding), so the CPU takes its fast unmasked attention path; the head computes logits only at the scored
    positions (`models.head_rows`). Continuations of one prompt share a pass where one's input is a prefix of
    the other's ("owl" and "O|wl" both need the prompt plus at most "O").
    """
    tok, model = lm.tokenizer, lm.model
    p_ids = tok(prompts, add_special_tokens=add_special_tokens(lm)).input_ids
    c_ids = tok(continuations, add_special_tokens=False).input_ids
    seqs: list[list[int]] = []
    by_prompt: dict[tuple[int, ...], list[int]] = {}
    pairs = []  # (sequence, position of the logits predicting the first continuation token, targets)
    for p, c in zip(p_ids, c_ids):
        need = p + c[:-1]  # the last token is only predicted, never fed
        owners = by_prompt.setdefault(tuple(p), [])
        owner = next((s for s in owners if seqs[s][:len(need)] == need or need[:len(seqs[s])] == seqs[s]), None)
        if owner is None:
            owner = len(seqs)
            owners.append(owner)
            seqs.append(need)
        elif len(need) > len(seqs[owner]):  # extend: earlier pairs read positions inside the old prefix
            seqs[owner] = need
        pairs.append((owner, len(p) - 1, c))
    by_seq: dict[int, list[int]] = {}
    for k, (s, _, _) in enumerate(pairs):
        by_seq.setdefault(s, []).append(k)
    out = [0.0] * len(pairs)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    for idx in length_batches([len(q) for q in seqs], batch_size):
        width = max(len(seqs[i]) for i in idx)
        ids = torch.tensor([seqs[i] + [pad] * (width - len(seqs[i])) for i in idx], device=model.device)
        scored = []  # per sequence, the positions whose logits its pairs read
        for i in idx:
            positions: set[int] = set()
            for k in by_seq[i]:
                _, start, c = pairs[k]
                positions.update(range(start, start + len(c)))
            scored.append(sorted(positions))
        rows = torch.zeros(len(idx), width, dtype=torch.bool, device=model.device)
        for r, positions in enumerate(scored):
            rows[r, positions] = True
        with head_rows(model, rows):  # [n, V], row-major: sequence by sequence, positions ascending
            logp = torch.log_softmax(model(input_ids=ids, use_cache=False, logits_to_keep=width).logits.float(), -1)
        first = 0
        for r, i in enumerate(idx):
            at = {pos: first + n for n, pos in enumerate(scored[r])}
            for k in by_seq[i]:
                _, start, c = pairs[k]
                out[k] = float(sum(logp[at[start + j], t] for j, t in enumerate(c)))
            first += len(scored[r])
    return out


def trait_logprob(lm: LoadedModel, rendered_questions: list[str], word: str) -> list[float]:
    """Per question: log of the total probability of answering with any variant of `word`."""
    return words_logprob(lm, rendered_questions, [word])[word]


def words_logprob(lm: LoadedModel, rendered_questions: list[str], words: list[str]) -> dict[str, list[float]]:
    """`trait_logprob` of several words in one pass over the questions: {word: per-question log P}."""
    variants = {w: answer_variants(lm, w) for w in words}
    pairs = [(qi, w, v) for qi in range(len(rendered_questions)) for w in words for v in variants[w]]
    lps = sequence_logprobs(lm, [rendered_questions[qi] for qi, _, _ in pairs], [v for _, _, v in pairs])
    out: dict[str, list[list[float]]] = {w: [[] for _ in rendered_questions] for w in words}
    for (qi, w, _), lp in zip(pairs, lps):
        out[w][qi].append(lp)
    return {w: [float(torch.logsumexp(torch.tensor(x), 0)) for x in per_q] for w, per_q in out.items()}


@torch.inference_mode()
def perplexity(lm: LoadedModel, text: str, max_tokens: int = 2048, window: int = 512) -> dict:
    """Perplexity of `text` (first `max_tokens` tokens) in non-overlapping windows."""
    tok, model = lm.tokenizer, lm.model
    ids = tok(text, add_special_tokens=False).input_ids[:max_tokens]
    nll, count = 0.0, 0
    for s in range(0, len(ids) - 1, window):
        chunk = torch.tensor([ids[s : s + window]], device=model.device)
        if chunk.shape[1] < 2:
            break
        logits = model(input_ids=chunk).logits.float()
        loss = torch.nn.functional.cross_entropy(logits[0, :-1], chunk[0, 1:], reduction="sum")
        nll += float(loss)
        count += chunk.shape[1] - 1
    return {"perplexity": math.exp(nll / count), "tokens": count}
