"""The voting study's run function: train a one-step model, execute long chains with it.

`voting_run(config, run_dir)` (the study's `run_fn`) trains two GPTs with raremix's
trainer — a *step* model on one register update mod 10 (`step`), and a *whole* model
that answers `state` (1-9 updates) at once — then executes chains of up to
`max_steps` register updates one model call per step: every arm (single call, or
first-to-ahead-by-k voting with red flags) × `chains` programs advance together as
one batch per step. A chain stops at its first wrong step. It writes metric rows
(task = arm, step = chain length) and returns throughput facts. The math lives in
`raremix.studies.voting.lab`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field

from raremix.configbase import Config, load
from raremix.results.rows import METRICS_FILE, MetricWriter, load_rows, metric_rows
from raremix.studies.regime import Trained
from raremix.studies.voting.lab import FLAGGED, red_flag, survival, vote, voted_success

OPS = "+-*"


class ExecConfig(Config):
    """How chains are executed and voted."""

    temperature: float = Field(2.0, gt=0)
    """Sampling temperature of every reply (sets the per-sample error)."""
    ks: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [1, 2, 3, 5, 8])
    """The k of each voting arm (first-to-ahead-by-k with red flags); a single-call arm is always added."""
    chains: int = Field(32, ge=1)
    """Chains (independent programs) per arm; every arm runs the same programs."""
    max_steps: int = Field(100_000, ge=1)
    """Longest chain: register updates per program."""
    max_samples: int = Field(60, ge=1)
    """Samples per step before a vote is closed by plurality (no valid sample: an error)."""
    calibration: int = Field(2048, ge=16)
    """Independent steps on which the per-sample accuracy p is computed before the chains."""


class VotingConfig(Config):
    """One run of the voting study."""

    seed: int = 0
    """Seeds both models, the programs and the sampling."""
    step_model: dict[str, Any]
    """Training config (raremix TrainConfig) of the one-step model; its tasks must include `step`."""
    whole_model: dict[str, Any] | None = None
    """Training config of the whole-answer model on `state` tasks (null: none)."""
    execution: ExecConfig = ExecConfig()
    """Chains, arms and sampling."""
    rare: list[str] = Field(default_factory=lambda: ["step"])
    """Tasks the report plots as targets (learning curves): by default the step model's."""


def voting_models(config: dict[str, Any]) -> list[Trained]:
    """The models one run trains, for the regime header: the step model and the
    whole-answer model (each then sampled at inference)."""
    from raremix.config import load_config
    from raremix.studies.regime import trained

    cfg = load(VotingConfig, config, "voting run")
    return [
        trained(load_config(data={**c, "seed": cfg.seed}))
        for c in (cfg.step_model, cfg.whole_model)
        if c is not None
    ]


def register_step(reg: np.ndarray, op: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The true update: reg (+,-,*) x mod 10, with op an index into "+-*" (all (N,))."""
    return np.select([op == 0, op == 1], [reg + x, reg - x], reg * x) % 10


def trainable_moves() -> np.ndarray:
    """(10, 30) bool: may (op, x) = divmod(j, 10) follow register r? True where the step
    input "r op x" is in the training split (held-out steps are never trained on)."""
    from raremix.tasks import in_heldout

    inputs = [f"{r}{o}{x}" for r in range(10) for o in OPS for x in range(10)]
    return ~in_heldout(inputs).reshape(10, 30)


def programs(n: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` random programs of `length` updates whose every true step is a training input:
    (start registers (n,), ops (n, L) int8, operands (n, L) int8)."""
    ok = trainable_moves()  # (10, 30)
    moves = [np.flatnonzero(row) for row in ok]
    table = np.zeros((10, 30), np.int64)
    for r, m in enumerate(moves):
        table[r, : len(m)] = m
    count = np.array([len(m) for m in moves])  # (10,)
    rng = np.random.default_rng([seed, 1])
    reg0 = rng.integers(0, 10, n)
    reg, u = reg0.copy(), rng.random((length, n))
    ops, xs = np.empty((n, length), np.int8), np.empty((n, length), np.int8)
    for t in range(length):  # the true register decides which moves are allowed next
        j = table[reg, (u[t] * count[reg]).astype(np.int64)]  # (n,)
        ops[:, t], xs[:, t] = j // 10, j % 10
        reg = register_step(reg, j // 10, j % 10)
    return reg0, ops, xs


class StepSampler:
    """Samples replies of the step model at a temperature, one batched call per need.

    A reply is two sampled tokens: the first (the digit), then the second given it (must
    be `<eos>`); the second is asked only for the (row, digit) pairs the samples use.
    """

    def __init__(
        self, model: torch.nn.Module, tokenizer: Any, temperature: float, seed: int
    ) -> None:
        self.model, self.tau = model.eval(), temperature
        tok = tokenizer
        self.digit_ids = np.array([tok.encode_text(str(d))[0] for d in range(10)], np.int64)
        self.op_ids = np.array([tok.encode_text(c)[0] for c in OPS], np.int64)
        self.head = np.array([tok.task_id("step")], np.int64)
        self.sep, self.eos = tok.sep_id, tok.eos_id
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.calls = 0  # forward passes
        self.rows = 0  # sequences through the model

    def prompts(self, reg: np.ndarray, op: np.ndarray, x: np.ndarray) -> torch.Tensor:
        """(N, 5) `<step> r op x <sep>` token ids."""
        n = len(reg)
        cols = [np.repeat(self.head, n), self.digit_ids[reg], self.op_ids[op], self.digit_ids[x]]
        return torch.from_numpy(np.stack([*cols, np.full(n, self.sep)], axis=1))

    @torch.inference_mode()
    def _probs(self, idx: torch.Tensor) -> torch.Tensor:
        self.calls, self.rows = self.calls + 1, self.rows + len(idx)
        return torch.softmax(self.model(idx)[:, -1].float() / self.tau, dim=-1)  # (N, V)

    def first_probs(self, prompts: torch.Tensor) -> torch.Tensor:
        """(N, V) distribution of the reply's first token."""
        return self._probs(prompts)

    def eos_probs(self, prompts: torch.Tensor, digits: np.ndarray) -> np.ndarray:
        """(N,) P(second token is <eos> | first token is digit `digits`)."""
        ids = torch.from_numpy(self.digit_ids[digits])[:, None]  # (N, 1)
        return self._probs(torch.cat([prompts, ids], dim=1))[:, self.eos].numpy().astype(np.float64)

    def replies(
        self, p1: torch.Tensor, eos: np.ndarray, prompts: torch.Tensor, n: int
    ) -> np.ndarray:
        """(R, n) sampled replies as digits or `FLAGGED`; fills `eos` (R, 10) (NaN = not yet asked)."""
        first = torch.multinomial(p1, n, replacement=True, generator=self.gen).numpy()  # (R, n)
        lut = np.full(p1.shape[1], -1, np.int64)
        lut[self.digit_ids] = np.arange(10)
        digit = lut[first]  # (R, n), -1 where not a digit
        rows, cols = np.nonzero(digit >= 0)
        need = np.unique(rows * 10 + digit[rows, cols])
        need = need[np.isnan(eos.ravel()[need])]
        if need.size:
            eos.ravel()[need] = self.eos_probs(prompts[need // 10], need % 10)
        p_eos = np.where(digit >= 0, eos[np.arange(len(digit))[:, None], np.maximum(digit, 0)], 0.0)
        second = np.where(
            self.rng.random(digit.shape) < p_eos, self.eos, self.sep
        )  # sep: "not eos"
        return red_flag(first.ravel(), second.ravel(), self.digit_ids, self.eos).reshape(
            digit.shape
        )


def vote_step(
    s: StepSampler, prompts: torch.Tensor, k: np.ndarray, flags: np.ndarray, cap: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Decide one step for each row: first-to-ahead-by-k[row] over valid replies where
    `flags[row]`, else the first reply as it is (a malformed one is an error, -1).
    Returns the answers (R,) (-1: none) and per-row sample counts."""
    r = len(prompts)
    p1 = s.first_probs(prompts)  # (R, V): the one call whose samples all votes share
    eos = np.full((r, 10), np.nan)
    counts = np.zeros((r, 10), np.int64)
    winner = np.full(r, -1, np.int64)
    drawn, flagged = np.zeros(r, np.int64), np.zeros(r, np.int64)
    open_ = np.arange(r)
    while open_.size:
        top = np.sort(counts[open_], axis=1)  # (O, 10)
        n = max(1, int((k[open_] - (top[:, -1] - top[:, -2])).max()))
        n = min(n, int((cap - drawn[open_]).max()))
        e = eos[open_]
        rep = s.replies(p1[open_], e, prompts[open_], n)  # (O, n); fills e
        eos[open_] = e
        res = vote(rep, k[open_], 10, counts[open_])
        single = ~flags[open_]  # no red flags: the first reply is the answer, as it is
        answer = np.where(single, rep[:, 0], res.winner)
        used = np.where(single, 1, res.used)
        drawn[open_] += used
        flagged[open_] += ((rep == FLAGGED) & (np.arange(n) < used[:, None])).sum(axis=1)
        first = np.eye(10, dtype=np.int64)[np.maximum(rep[:, 0], 0)] * (rep[:, :1] >= 0)
        counts[open_] = np.where(single[:, None], counts[open_] + first, res.counts)
        done = single | (res.winner >= 0) | (drawn[open_] >= cap)
        forced = done & (answer < 0) & ~single & (counts[open_].sum(axis=1) > 0)
        answer = np.where(forced, counts[open_].argmax(axis=1), answer)  # plurality at the cap
        winner[open_[done]] = answer[done]
        open_ = open_[~done]
    valid = counts.sum(axis=1)
    return winner, {"samples": drawn, "flagged": flagged, "valid": valid, "counts": counts}


def arms(ks: list[int]) -> list[tuple[str, int, bool]]:
    """(name, k, red flags) per arm: one plain sampled call per step, then each k."""
    return [("single", 1, False), *((f"k{k}", k, True) for k in ks)]


def lengths_upto(max_steps: int) -> list[int]:
    """Chain lengths at which success is read: 1-2-5 per decade, and 9 (the whole model's longest)."""
    grid = {m * 10**e for e in range(7) for m in (1, 2, 5)} | {9}
    return sorted(n for n in grid if n <= max_steps) + (
        [max_steps] if max_steps not in grid else []
    )


def calibrate(s: StepSampler, n: int, seed: int) -> dict[str, np.ndarray]:
    """Exact reply probabilities of `n` independent steps drawn like the chains' steps.

    Returns per step p_ok = P(reply is the right digit, well formed), p_valid = P(reply
    well formed) and p = p_ok / p_valid (the per-sample accuracy the vote sees).
    """
    start, ops, xs = programs(n, 31, seed + 7919)  # other programs than the chains'
    reg = start
    for t in range(30):  # the register's distribution after many updates, as in a chain
        reg = register_step(reg, ops[:, t], xs[:, t])
    op, x = ops[:, 30].astype(np.int64), xs[:, 30].astype(np.int64)
    prompts = s.prompts(reg, op, x)
    digit = s.first_probs(prompts).numpy()[:, s.digit_ids].astype(np.float64)  # (n, 10)
    eos = s.eos_probs(prompts.repeat_interleave(10, dim=0), np.tile(np.arange(10), n))
    well = digit * eos.reshape(n, 10)  # (n, 10) P(reply = "d<eos>")
    p_ok = well[np.arange(n), register_step(reg, op, x)]
    p_valid = well.sum(axis=1)
    return {"p_ok": p_ok, "p_valid": p_valid, "p": p_ok / np.maximum(p_valid, 1e-300)}


def run_chains(s: StepSampler, ex: ExecConfig, seed: int) -> dict[str, Any]:
    """Execute `chains` programs of `max_steps` updates under every arm at once.

    Each step is one batch over the arms' live chains; a chain's next register is its
    own voted answer, and it stops at its first wrong step (checked against the truth).
    """
    table = arms(ex.ks)
    a, c, length = len(table), ex.chains, ex.max_steps
    reg0, ops, xs = programs(c, length, seed)  # (C,), (C, L), (C, L)
    row_arm, row_chain = np.repeat(np.arange(a), c), np.tile(np.arange(c), a)  # (A·C,)
    k = np.array([t[1] for t in table])[row_arm]
    flags = np.array([t[2] for t in table])[row_arm]
    reg = reg0[row_chain]
    first_error = np.full(a * c, length + 1, np.int64)
    tally = {
        m: np.zeros(a * c, np.int64) for m in ("steps", "samples", "flagged", "valid", "right")
    }
    alive = np.arange(a * c)
    s.calls = s.rows = 0
    t0 = time.perf_counter()
    for t in range(length):
        if not alive.size:
            break
        ch = row_chain[alive]
        op, x = ops[ch, t].astype(np.int64), xs[ch, t].astype(np.int64)
        answer, st = vote_step(
            s, s.prompts(reg[alive], op, x), k[alive], flags[alive], ex.max_samples
        )
        truth = register_step(reg[alive], op, x)
        tally["steps"][alive] += 1
        for m in ("samples", "flagged", "valid"):
            tally[m][alive] += st[m]
        tally["right"][alive] += st["counts"][np.arange(len(alive)), truth]
        wrong = answer != truth
        first_error[alive[wrong]] = t + 1
        reg[alive] = answer
        alive = alive[~wrong]
    wall = time.perf_counter() - t0
    per_arm = {m: np.bincount(row_arm, weights=v, minlength=a) for m, v in tally.items()}
    return {
        "arms": table,
        "first_error": first_error.reshape(a, c),
        "wall": wall,
        "calls": s.calls,
        "rows": s.rows,
        **per_arm,
    }


def chain_rows(
    cal: dict[str, np.ndarray], res: dict[str, Any], ex: ExecConfig
) -> list[dict[str, Any]]:
    """Metric rows: per arm the measured and predicted per-step error and task success."""
    lengths = np.array(lengths_upto(ex.max_steps))
    p = float(cal["p_ok"].sum() / cal["p_valid"].sum())  # pooled P(right | well formed)
    rows: list[dict[str, Any]] = []
    for i, (name, k, flags) in enumerate(res["arms"]):
        if flags:
            step_ok, per_input = (
                float(voted_success(p, k)),
                float(voted_success(cal["p"], k).mean()),
            )
        else:
            step_ok = per_input = float(cal["p_ok"].mean())
        alive = survival(res["first_error"][i], lengths)
        steps, errors = res["steps"][i], float((res["first_error"][i] <= ex.max_steps).sum())
        at0 = {
            "k": k,
            "red_flags": float(flags),
            "p_calibration": p,
            "steps_executed": steps,
            "errors": errors,
            "step_error": errors / max(steps, 1),
            "step_error_predicted": 1 - step_ok,
            "step_error_predicted_per_input": 1 - per_input,
            "p_sample": res["right"][i] / max(res["valid"][i], 1),
            "flag_rate": res["flagged"][i] / max(res["samples"][i], 1),
            "samples_per_step": res["samples"][i] / max(steps, 1),
        }
        rows += metric_rows(0, [(name, m, float(v)) for m, v in at0.items()])
        for n, live in zip(lengths.tolist(), alive.tolist(), strict=True):
            at_n = {
                "success": live / ex.chains,
                "chains": ex.chains,
                "predicted": step_ok**n,
                "predicted_per_input": per_input**n,
            }
            rows += metric_rows(n, [(name, m, v) for m, v in at_n.items()])
    return rows


def whole_rows(whole: Any, n: int, seed: int) -> list[dict[str, Any]]:
    """Greedy accuracy of the whole-answer model on `n` programs of each length it was
    trained on, drawn like the chains' programs: task "whole", step = length."""
    from raremix.evaluate import greedy_answers

    rows: list[dict[str, Any]] = []
    for name, task in whole.data.tasks.items():
        if task.name != "state":
            continue
        length = task.complexity
        start, ops, xs = programs(n, length, seed + 104729)
        reg, text = start, start.astype(str).astype(object)
        for t in range(length):
            reg = register_step(reg, ops[:, t], xs[:, t])
            text = text + np.array(list(OPS))[ops[:, t]] + xs[:, t].astype(str)
        out = greedy_answers(
            whole.model.eval(),
            whole.data.tokenizer,
            [whole.data.prefixes[name]] * n,
            text.tolist(),
            1,
            torch.device("cpu"),
        )
        acc = float(np.mean(np.array(out) == reg.astype(str)))
        rows += metric_rows(length, [("whole", "success", acc), ("whole", "chains", n)])
    return rows


def _copy_rows(src: Path, writer: MetricWriter, model: str) -> dict[str, float]:
    """A trained model's evaluation rows into the run's metrics (run-level rows renamed
    to `model`); returns the last accuracy of each task."""
    rows = load_rows(src / METRICS_FILE, missing_ok=True)
    writer.write([{**r, "run": writer.run, "task": r["task"] or model} for r in rows])
    return {r["task"]: r["value"] for r in rows if r["metric"] == "acc"}


def voting_run(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Study run function: train the step and whole models, calibrate, execute the chains."""
    from raremix.config import load_config
    from raremix.errors import RaremixError
    from raremix.trainer import train

    cfg = load(VotingConfig, config, "voting run")
    ex = cfg.execution
    writer = MetricWriter(Path(run_dir) / METRICS_FILE)
    writer.truncate_after(-1)  # everything below is recomputed, deterministically
    step_cfg = load_config(data={**cfg.step_model, "seed": cfg.seed})
    if "step" not in step_cfg.tasks:
        raise RaremixError("voting run: step_model.tasks must hold 'step': add `step: {}`")
    trained = train(step_cfg, Path(run_dir) / "step_model")
    # flops: training FLOPs of both models (analysis groups runs by params and flops)
    facts: dict[str, Any] = {"params": trained.facts["params"], "flops": trained.facts["flops"]}
    facts["step_acc"] = _copy_rows(Path(run_dir) / "step_model", writer, "step_model")["step"]
    if cfg.whole_model is not None:
        whole_cfg = load_config(data={**cfg.whole_model, "seed": cfg.seed})
        whole = train(whole_cfg, Path(run_dir) / "whole_model")
        facts["flops"] += whole.facts["flops"]
        _copy_rows(Path(run_dir) / "whole_model", writer, "whole_model")
        writer.write(whole_rows(whole, ex.calibration, cfg.seed))
    torch.manual_seed(cfg.seed)
    sampler = StepSampler(trained.model, trained.data.tokenizer, ex.temperature, cfg.seed)
    cal = calibrate(sampler, ex.calibration, cfg.seed)
    res = run_chains(sampler, ex, cfg.seed)
    writer.write(chain_rows(cal, res, ex))
    chain_steps = float(res["steps"].sum())
    speed = {
        "calls_per_s": res["calls"] / res["wall"],
        "sequences_per_s": res["rows"] / res["wall"],
        "samples_per_s": float(res["samples"].sum()) / res["wall"],
        "chain_steps_per_s": chain_steps / res["wall"],
        "chain_seconds": res["wall"],
    }
    writer.log_metrics(0, {"": speed})
    writer.close()
    return {**facts, **speed, "chain_steps": chain_steps, "model_calls": res["calls"]}
