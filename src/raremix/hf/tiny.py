"""Tiny, randomly initialised Hugging Face models and a character tokenizer, built offline.

For trying `raremix hf-train` without downloading anything, and for the tests:

    from raremix.hf.tiny import char_tokenizer, tiny_model
    tok = char_tokenizer("0123456789abcdefghijklmnopqrstuvwxyz :<>\\n")
    tiny_model("gpt2", tok, "models/tiny-gpt2")   # a folder AutoModelForCausalLM loads
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")


def char_tokenizer(chars: str) -> Any:
    """A `PreTrainedTokenizerFast` with one token per character of `chars`, plus specials."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate([*SPECIALS, *sorted(set(chars))])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<bos>",
        eos_token="<eos>",
    )


def tiny_model(
    kind: Literal["gpt2", "llama"],
    tokenizer: Any,
    out: str | Path,
    *,
    layers: int = 2,
    width: int = 32,
    heads: int = 2,
    positions: int = 128,
    seed: int = 0,
) -> Path:
    """Save a random `kind` model sized for `tokenizer` (and the tokenizer) to `out`.

    Dropout is off: tiny models learn toy tasks in a few dozen steps without it.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    ids = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    torch.manual_seed(seed)
    model: Any
    if kind == "gpt2":
        model = GPT2LMHeadModel(
            GPT2Config(
                n_layer=layers,
                n_embd=width,
                n_head=heads,
                n_positions=positions,
                resid_pdrop=0.0,
                embd_pdrop=0.0,
                attn_pdrop=0.0,
                **ids,
            )
        )
    elif kind == "llama":
        model = LlamaForCausalLM(
            LlamaConfig(
                num_hidden_layers=layers,
                hidden_size=width,
                intermediate_size=2 * width,
                num_attention_heads=heads,
                num_key_value_heads=heads,
                max_position_embeddings=positions,
                **ids,
            )
        )
    else:
        from raremix.errors import unknown

        raise unknown("tiny model kind", str(kind), ("gpt2", "llama"))
    out = Path(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
