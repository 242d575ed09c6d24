"""Save a tiny, randomly initialised Hugging Face causal LM whose character tokenizer covers
a task-tagged data file: a model to try `raremix hf-train` on, with nothing downloaded.

    .venv/bin/python examples/make_tiny_model.py --data fcall.jsonl --out tiny-gpt2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from raremix.hf.tiny import char_tokenizer, tiny_model
from raremix.tagged import read_tagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="task-tagged data (any format)")
    parser.add_argument("--out", type=Path, required=True, help="folder to save the model in")
    parser.add_argument("--kind", choices=("gpt2", "llama"), default="gpt2")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--positions", type=int, default=256, help="longest prompt+response")
    args = parser.parse_args()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    table = read_tagged(args.data, skip_invalid=True).table
    chars = "".join(
        sorted({c for col in ("prompt", "response") for s in table[col].to_pylist() for c in s})
    )
    tok = char_tokenizer(chars + "\n")
    out = tiny_model(
        args.kind, tok, args.out, layers=args.layers, width=args.width, positions=args.positions
    )
    print(
        f"saved a {args.layers}-layer {args.kind} (width {args.width}, {len(tok)} tokens) to {out}"
    )


if __name__ == "__main__":
    main()
