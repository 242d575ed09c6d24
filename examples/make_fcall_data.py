"""Write a small task-tagged JSONL with a long tail: function-calling sub-skills.

Eight sub-skills (after Granite-FunctionCalling's decomposition of function calling)
with Zipf-distributed row counts, so the rarest skills are under 1% of the rows:

    .venv/bin/python examples/make_fcall_data.py --out fcall.jsonl            # 6,000 rows
    .venv/bin/python examples/make_fcall_data.py --out fcall.jsonl --invalid 5

Each row is {"task", "prompt", "response"}; every skill has its own output format.
`--invalid N` appends N invalid rows (bad JSON, no task, empty response, …) to try
`raremix inspect --skip-invalid`. The file is a function of the arguments (seeded).
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path

CITIES = ["Paris", "Rome", "Oslo", "Lima", "Cairo", "Tokyo", "Delhi", "Quito", "Berlin", "Dakar"]
TICKERS = ["AAPL", "MSFT", "NVDA", "SAP", "SONY", "TSLA", "IBM", "ASML"]
CURRENCIES = ["USD", "EUR", "JPY", "GBP", "CHF", "INR"]
LANGS = ["fr", "de", "es", "it", "ja"]
TOOLS = ["get_weather", "convert_currency", "get_stock_price", "translate", "set_reminder"]


def _weather_ask(rng: random.Random) -> tuple[str, str]:
    city = rng.choice(CITIES)
    return f"weather in {city}", f'get_weather(city="{city}")'


def _convert_ask(rng: random.Random) -> tuple[str, str]:
    amount, a, b = rng.randint(1, 999), *rng.sample(CURRENCIES, 2)
    return (
        f"convert {amount} {a} to {b}",
        f'convert_currency(amount={amount}, src="{a}", dst="{b}")',
    )


def _stock_ask(rng: random.Random) -> tuple[str, str]:
    t = rng.choice(TICKERS)
    return f"price of {t}", f'get_stock_price(ticker="{t}")'


ASKS = [_weather_ask, _convert_ask, _stock_ask]


def single_call(rng: random.Random) -> tuple[str, str]:
    ask, call = rng.choice(ASKS)(rng)
    return f"user: {ask}", call


def response_generation(rng: random.Random) -> tuple[str, str]:
    city, temp = rng.choice(CITIES), rng.randint(-10, 35)
    return (
        f'tool get_weather(city="{city}") returned {{"temp_c": {temp}}}\nuser: weather in {city}?',
        f"It is {temp} degrees Celsius in {city}.",
    )


def function_name(rng: random.Random) -> tuple[str, str]:
    ask, call = rng.choice(ASKS)(rng)
    return f"which tool? {ask}", call.split("(")[0]


def parameter_values(rng: random.Random) -> tuple[str, str]:
    amount, a, b = rng.randint(1, 999), *rng.sample(CURRENCIES, 2)
    return (
        f"arguments for convert_currency: convert {amount} {a} to {b}",
        json.dumps({"amount": amount, "src": a, "dst": b}),
    )


def parallel_calls(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(CITIES, 2)
    return f"user: weather in {a} and in {b}", f'[get_weather(city="{a}"), get_weather(city="{b}")]'


def irrelevance(rng: random.Random) -> tuple[str, str]:
    asks = ["tell me a joke", "who wrote Hamlet", "what is 7 times 8", "say hi to Ana"]
    tools = ", ".join(rng.sample(TOOLS, 2))
    return f"tools: {tools}\nuser: {rng.choice(asks)}", "NO_CALL"


def chained_calls(rng: random.Random) -> tuple[str, str]:
    t, cur = rng.choice(TICKERS), rng.choice(CURRENCIES[1:])
    return (
        f"user: price of {t} in {cur}",
        f'1. p = get_stock_price(ticker="{t}")\n2. convert_currency(amount=p, src="USD", dst="{cur}")',
    )


def nested_calls(rng: random.Random) -> tuple[str, str]:
    city, lang = rng.choice(CITIES), rng.choice(LANGS)
    return (
        f"user: weather in {city}, in {lang}",
        f'translate(text=get_weather(city="{city}"), lang="{lang}")',
    )


SKILLS: list[Callable[[random.Random], tuple[str, str]]] = [
    single_call,
    response_generation,
    function_name,
    parameter_values,
    parallel_calls,
    irrelevance,
    chained_calls,
    nested_calls,
]  # fmt: skip  (most to least common)


def zipf_counts(rows: int, k: int, exponent: float) -> list[int]:
    """Rows per skill ∝ 1/rank^exponent, at least 1 each, summing to `rows`."""
    raw = [1 / (r + 1) ** exponent for r in range(k)]
    counts = [max(1, round(rows * w / sum(raw))) for w in raw]
    counts[0] += rows - sum(counts)
    return counts


def invalid_rows(n: int) -> list[str]:
    """Lines that `raremix inspect` must reject, one kind after another."""
    kinds = [
        '{"task": "single_call", "prompt": "user: weather in Paris", "response": ',  # bad JSON
        json.dumps({"prompt": "user: price of IBM", "response": 'get_stock_price(ticker="IBM")'}),
        json.dumps({"task": "single_call", "prompt": "user: weather in Rome", "response": ""}),
        json.dumps({"task": 7, "prompt": "which tool? weather in Oslo", "response": "get_weather"}),
        json.dumps(["not", "an", "object"]),
    ]
    return [kinds[i % len(kinds)] for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("fcall.jsonl"))
    ap.add_argument("--rows", type=int, default=6000, help="valid rows in all")
    ap.add_argument("--zipf", type=float, default=2.2, help="exponent of the long tail")
    ap.add_argument("--invalid", type=int, default=0, help="invalid rows to append")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    counts = zipf_counts(args.rows, len(SKILLS), args.zipf)
    rows = []
    for skill, n in zip(SKILLS, counts, strict=True):
        for _ in range(n):
            prompt, response = skill(rng)
            rows.append({"task": skill.__name__, "prompt": prompt, "response": response})
    rng.shuffle(rows)
    lines = [json.dumps(r) for r in rows]
    for line in invalid_rows(args.invalid):  # spread through the file
        lines.insert(rng.randrange(len(lines) + 1), line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    shown = ", ".join(f"{s.__name__} {n}" for s, n in zip(SKILLS, counts, strict=True))
    print(f"wrote {len(lines):,} rows to {args.out} ({args.invalid} invalid): {shown}")


if __name__ == "__main__":
    main()
