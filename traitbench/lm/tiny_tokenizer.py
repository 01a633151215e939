"""A byte-level tokenizer with a ChatML template, built in memory, for tiny test models (no downloads)."""

from __future__ import annotations

from functools import lru_cache

CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|pad|>", "<|bos|>", "<|im_end|>", "<|im_start|>"]


@lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers  # heavy: only when a tiny model is built

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for ch in sorted(alphabet):
        vocab[ch] = len(vocab)
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens(SPECIALS)
    return tk.to_str()


def build_tiny_tokenizer():
    """260-token byte-level tokenizer: pad, bos, eos (<|im_end|>), ChatML chat template."""
    # heavy (tokenizers, transformers): only when a tiny model is built, not for the registry (the CLI)
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        pad_token="<|pad|>", bos_token="<|bos|>", eos_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>"], padding_side="left",
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok
