"""How a (system, user) pair becomes model input text, made explicit for chat and base models alike.

Chat templates of SmolLM2 and Qwen inject a default system prompt when none is given; traitbench never
relies on that: every context names its system text, and the same rendering is used in sampling,
training and probing.
"""

from __future__ import annotations

from traitbench.lm.models import LoadedModel

BASE_TEMPLATE = "{system}Question: {user}\nAnswer:"


def render_prompt(lm: LoadedModel, system: str | None, user: str,
                  history: list[tuple[str, str]] = ()) -> str:
    """The text the model continues: chat template with generation prompt, or a completion prompt.

    `history` holds earlier (user, assistant) turns, e.g. a worked demonstration shown to a teacher.
    """
    if lm.spec.kind == "chat":
        messages = [{"role": "system", "content": system}] if system is not None else []
        for q, a in history:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        messages.append({"role": "user", "content": user})
        return lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prefix = f"{system}\n\n" if system else ""
    prefix += "".join(BASE_TEMPLATE.format(system="", user=q) + f" {a}\n\n" for q, a in history)
    return BASE_TEMPLATE.format(system=prefix, user=user)


def completion_suffix(lm: LoadedModel) -> str:
    """What ends an answer in training data: EOS for chat models, a newline for base models."""
    return lm.tokenizer.eos_token if lm.spec.kind == "chat" else "\n"


def add_special_tokens(lm: LoadedModel) -> bool:
    """Chat-templated text already holds its special tokens; completion prompts need the tokenizer's BOS."""
    return lm.spec.kind != "chat"


def clean_completion(lm: LoadedModel, text: str) -> str:
    """Base models: cut at the first newline and drop stray special tokens (gemma's `<start_of_image>`)."""
    if lm.spec.kind == "base":
        text = text.split("\n", 1)[0]
        for tok in lm.tokenizer.all_special_tokens:
            text = text.replace(tok, "")
    return text.strip()
