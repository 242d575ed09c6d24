"""The study runner: a study's runs in parallel processes, resumable, into a results store.

`run_study(spec, out_dir)` skips the runs the store holds as done and executes the rest
with `run_fn(config, run_dir) -> facts`: one single-thread worker process per core
(`backend="local"`) or as Ray tasks (`backend="ray"`). The parent is the store's only
writer and adds each finished run atomically: a killed study loses nothing finished.

Layout of `out_dir`: `study.yaml` (the resolved spec), `runs/<run_id>/` (each run's own
directory: metrics.jsonl, checkpoints, runspec.json, error.txt on failure) and `store/`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import multiprocessing as mp
import os
import sys
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from raremix.display import safe
from raremix.errors import RaremixError, did_you_mean, unknown
from raremix.results.rows import METRICS_FILE, MetricWriter, load_rows

if TYPE_CHECKING:  # worker processes import this module: keep it free of pydantic, rich, DuckDB
    from rich import progress as rp

    from raremix.studies.spec import RunSpec, StudySpec

DEFAULT_RUN_FN = "raremix.trainer:run_config"
BACKENDS = ("local", "ray")
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
RunFn = Callable[[dict[str, Any], Path], dict[str, Any] | None]
Record = Callable[["RunSpec", "RunResult"], None]
Job = tuple["str | RunFn", str, int]  # run function, study dir, threads per run

ANALYZERS: dict[str, Callable[[Path], None]] = {}
"""Study name → function called with the study dir after every run of it is done."""
DEFAULT_ANALYZER = "*"
"""The `ANALYZERS` key of the analyzer for studies without one of their own."""


@dataclass
class RunResult:
    """What a worker sends back for one run."""

    run_id: str
    ok: bool
    wall_s: float
    facts: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] | None = None  # the run's metric rows when ok
    error: str | None = None


@dataclass
class StudyOutcome:
    """How a study invocation went: run ids done now, skipped (done before) and failed."""

    study_dir: Path
    total: int
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    analyzed: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        """One line: counts, time and where the results are."""
        counts = f"{len(self.done)} done, {len(self.skipped)} skipped, {len(self.failed)} failed"
        return f"{counts} of {self.total} runs in {self.wall_s:.1f} s; results in {self.study_dir}"


def default_workers(threads_per_run: int = 1) -> int:
    """One worker per available core (per `threads_per_run` cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // threads_per_run)


def resolve_run_fn(run_fn: str | RunFn) -> RunFn:
    """The run function named 'module:function' (a callable is returned as it is)."""
    if callable(run_fn):
        return run_fn
    module, sep, name = run_fn.partition(":")
    if not sep or not module or not name:
        raise RaremixError(f"run_fn '{run_fn}' is not 'module:function': e.g. {DEFAULT_RUN_FN}")
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise RaremixError(f"run_fn '{run_fn}': cannot import it ({err}): check the path") from None
    fn = getattr(mod, name, None)
    if not callable(fn):
        public = [n for n, v in vars(mod).items() if callable(v) and not n.startswith("_")]
        raise RaremixError(f"run_fn '{run_fn}': no such function: {did_you_mean(name, public)}")
    return fn


# --- inside a worker -----------------------------------------------------------------


def _set_threads(threads: int) -> None:
    """Limit math libraries to `threads` (env vars for libraries not loaded yet, torch now)."""
    os.environ.update({var: str(threads) for var in THREAD_ENV})
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _execute(run: dict[str, Any], run_fn: str | RunFn, study_dir: str, threads: int) -> RunResult:
    """Run one study run (a `RunSpec` as a dict) here; errors become a failed `RunResult`."""
    _set_threads(threads)
    start, run_id = time.perf_counter(), run["run_id"]
    path = Path(study_dir) / "runs" / run_id
    path.mkdir(parents=True, exist_ok=True)
    (path / "runspec.json").write_text(json.dumps(run, indent=1))
    try:
        fn = resolve_run_fn(run_fn)
        _set_threads(threads)  # the run function's module may just have imported torch
        facts = fn(run["config"], path) or {}
        rows = load_rows(path / METRICS_FILE, missing_ok=True)
        return RunResult(run_id, True, time.perf_counter() - start, dict(facts), rows)
    except RaremixError as err:
        error = str(err)
    except Exception as err:
        (path / "error.txt").write_text(traceback.format_exc())
        error = f"{_one_line(err)} (traceback in {path / 'error.txt'})"
    return RunResult(run_id, False, time.perf_counter() - start, error=error)


# --- the parent ----------------------------------------------------------------------


class _Bar:
    """The overall progress bar: runs done/total, failures, ETA and the runs in flight."""

    def __init__(self, name: str, total: int, skipped: int, enabled: bool) -> None:
        from rich import progress as rp

        text = rp.TextColumn
        columns: list[str | rp.ProgressColumn] = ["[bold]{task.description}", rp.BarColumn()]
        columns += [rp.MofNCompleteColumn(), text("{task.fields[failed]}", style="red")]
        columns += [rp.TimeElapsedColumn(), "eta", rp.TimeRemainingColumn()]
        columns += [text("{task.fields[current]}", markup=False)]  # the runs in flight
        self.progress = rp.Progress(*columns, disable=not enabled)
        self.task = self.progress.add_task(
            name, total=total, completed=skipped, failed="", current=""
        )
        self.enabled, self.n_failed = enabled, 0

    def running(self, runs: list[RunSpec] | str) -> None:
        text = runs if isinstance(runs, str) else " | ".join(_describe(r) for r in runs)
        self.progress.update(self.task, current=text if len(text) < 80 else text[:79] + "…")

    def finished(self, run: RunSpec, result: RunResult) -> None:
        if not result.ok:
            self.n_failed += 1
            line = f"failed {_describe(run)} ({run.run_id}): {result.error}"
            if self.enabled:
                self.progress.console.print(line, style="red", markup=False, highlight=False)
        failed = f"{self.n_failed} failed" if self.n_failed else ""
        self.progress.update(self.task, advance=1, failed=failed)
        if self.enabled and result.ok and not self.progress.console.is_terminal:
            # piped or logged, the bar draws nothing until the end: a plain line per run
            task = self.progress.tasks[0]
            self.progress.console.print(
                f"{task.completed:.0f}/{task.total:.0f} done {safe(_describe(run), markup=False)} "
                f"({run.run_id}, {result.wall_s:.0f}s)",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"


def _describe(run: RunSpec) -> str:
    return " ".join(f"{k}={v}" for k, v in run.labels.items()) or run.run_id


@contextlib.contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    """Thread-limit env vars set while worker processes start (they inherit them)."""
    saved = dict(os.environ)
    os.environ.update({var: str(threads) for var in THREAD_ENV})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_study(
    spec: StudySpec | str | Path,
    out_dir: str | Path,
    *,
    run_fn: str | RunFn | None = None,
    workers: int | None = None,
    backend: Literal["local", "ray"] = "local",
    progress: bool = True,
    analyze: bool = True,
) -> StudyOutcome:
    """Run every run of `spec` not yet done in `out_dir`'s store; see the module docstring.

    `run_fn` ('module:function') overrides the spec's, which defaults to raremix's trainer.
    `workers` overrides the spec's (local backend). After a study with no failed run,
    the analyzer registered in `ANALYZERS` under the study's name (or the default one) is called (`analyze`).
    """
    from raremix.results.store import ResultStore, label_column  # the parent writes; workers don't
    from raremix.studies.spec import StudySpec, expand, load_spec, resolve_base, save_spec

    spec = resolve_base(spec) if isinstance(spec, StudySpec) else load_spec(spec)
    if backend not in BACKENDS:
        raise unknown("backend", backend, BACKENDS)
    fn = run_fn or spec.run_fn or DEFAULT_RUN_FN
    resolve_run_fn(fn)  # fail in one line before any process starts
    runs = expand(spec)
    out = Path(out_dir)
    save_spec(spec.model_copy(update={"run_fn": fn}) if isinstance(fn, str) else spec, out)
    store = ResultStore(out / "store")
    finished = store.finished_ids()
    todo = [r for r in runs if r.run_id not in finished]
    outcome = StudyOutcome(out, len(runs), skipped=[r.run_id for r in runs if r.run_id in finished])
    threads = spec.threads_per_run
    start = time.perf_counter()

    bar = _Bar(spec.name, len(runs), len(outcome.skipped), progress)

    def record(run: RunSpec, result: RunResult) -> None:
        info: dict[str, Any] = {label_column(k): v for k, v in run.labels.items()}
        info |= {"study": spec.name, "status": "done" if result.ok else "failed"}
        info |= {"wall_s": result.wall_s, "error": result.error, "config": run.config}
        for key, value in result.facts.items():
            info[key if key not in info and key != "run_id" else f"fact_{key}"] = value
        store.add_run(run.run_id, info, result.rows if result.ok else None)
        if result.ok:
            outcome.done.append(run.run_id)
        else:
            outcome.failed[run.run_id] = result.error or "failed"
        bar.finished(run, result)

    with bar.progress:
        job = (fn, str(out), threads)  # `_execute`'s arguments after the run
        if todo and backend == "local":
            n_workers = workers or spec.workers or default_workers(threads)
            _run_local(todo, job, n_workers, record, bar)
        elif todo:
            _run_ray(todo, job, record, bar)
        bar.running("")
    outcome.wall_s = time.perf_counter() - start
    analyzer = ANALYZERS.get(spec.name, ANALYZERS.get(DEFAULT_ANALYZER))
    if analyze and outcome.ok and analyzer is not None:
        analyzer(out)
        outcome.analyzed = True
    return outcome


def _run_local(todo: list[RunSpec], job: Job, workers: int, record: Record, bar: _Bar) -> None:
    """Run on a pool of spawned worker processes; a dead worker's runs are retried once."""
    queue, attempts, threads = deque(todo), Counter[str](), job[2]
    with _thread_env(threads):
        while queue:
            pool = ProcessPoolExecutor(
                max_workers=min(workers, len(queue)),
                mp_context=mp.get_context("spawn"),
                initializer=_set_threads,
                initargs=(threads,),
            )
            running: dict[Future[RunResult], RunSpec] = {}
            broken, clean = False, False
            try:
                while queue or running:
                    while queue and not broken and len(running) < workers:
                        run = queue.popleft()
                        running[pool.submit(_execute, run.model_dump(mode="json"), *job)] = run
                    if not running:
                        break
                    bar.running(list(running.values()))
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        run = running.pop(future)
                        try:
                            result = future.result()
                        except BrokenProcessPool:
                            broken = True  # a worker died (killed, out of memory, crashed)
                            attempts[run.run_id] += 1
                            if attempts[run.run_id] < 2:
                                queue.append(run)  # maybe it only shared the pool with the culprit
                                continue
                            error = "its worker process died twice (killed or out of memory?)"
                            result = RunResult(run.run_id, False, 0.0, error=error)
                        record(run, result)
                clean = True
            finally:
                if not clean:  # interrupted: don't leave workers training orphaned runs
                    for proc in list(getattr(pool, "_processes", {}).values()):
                        proc.terminate()
                pool.shutdown(wait=clean, cancel_futures=True)


def _run_ray(todo: list[RunSpec], job: Job, record: Record, bar: _Bar) -> None:
    """Run as Ray tasks on the cluster `ray.init()` finds (or a local one it starts)."""
    try:
        import ray
    except ImportError:
        raise RaremixError("the ray backend needs Ray: pip install 'raremix[ray]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init()
    task = ray.remote(_execute).options(num_cpus=job[2], max_retries=1)
    pending = {task.remote(run.model_dump(mode="json"), *job): run for run in todo}
    try:
        while pending:
            bar.running(f"{len(pending)} queued or running on ray")
            ready, _ = ray.wait(list(pending), num_returns=1)
            run = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except Exception as err:  # the task's worker or node died
                result = RunResult(run.run_id, False, 0.0, error=f"ray: {_one_line(err)}")
            record(run, result)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


# --- a real, tiny run function (tests, benchmarks, trying the runner) ------------------

DEMO_DEFAULTS: dict[str, Any] = {
    "seed": 0, "steps": 300, "dim": 16, "width": 4, "rare_rate": 0.1, "lr": 0.05,
    "batch": 32, "eval_every": 50, "checkpoint_every": 100, "fail_at_step": None,
}  # fmt: skip


def demo_run(config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """NumPy SGD on a common and a rare (`rare_rate`) regression task through ŷ = V[task]·(U x).

    Writes per-task held-out loss rows, checkpoints every `checkpoint_every` steps and
    resumes bit-exactly, logs "start step=N" to `log.txt`; raises at `fail_at_step`.
    """
    import numpy as np

    if stray := sorted(set(config) - set(DEMO_DEFAULTS)):
        raise RaremixError(
            f"demo run: unknown key '{stray[0]}': {did_you_mean(stray[0], DEMO_DEFAULTS)}"
        )
    c = {**DEMO_DEFAULTS, **config}
    dim, width, batch, lr = int(c["dim"]), int(c["width"]), int(c["batch"]), float(c["lr"])
    rng = np.random.default_rng(int(c["seed"]))
    teacher = rng.standard_normal((2, dim)) / np.sqrt(dim)  # (task, dim)
    eval_x = rng.standard_normal((2, 256, dim))  # (task, N, dim)
    eval_y = np.einsum("tnd,td->tn", eval_x, teacher)
    U, V = rng.standard_normal((width, dim)) * 0.1, rng.standard_normal((2, width)) * 0.1
    step, ckpt = 0, run_dir / "demo_ckpt.npz"
    writer = MetricWriter(run_dir / METRICS_FILE)
    if ckpt.exists():
        with np.load(ckpt) as z:
            U, V, step = z["U"], z["V"], int(z["step"])
            rng.bit_generator.state = json.loads(str(z["rng"]))
        writer.truncate_after(step)
    else:
        writer.truncate_after(-1)
    with (run_dir / "log.txt").open("a") as log:
        log.write(f"start step={step}\n")

    def losses_now() -> list[float]:
        pred = np.einsum("tnw,tw->tn", eval_x @ U.T, V)  # (task, N)
        return [float(v) for v in ((pred - eval_y) ** 2).mean(axis=1)]

    def evaluate() -> None:
        common, rare = losses_now()
        writer.write([{"step": step, "task": t, "metric": "loss", "value": v}
                      for t, v in (("common", common), ("rare", rare), ("all", (common + rare) / 2))])  # fmt: skip

    try:
        if step == 0:
            evaluate()
        while step < c["steps"]:
            if step == c["fail_at_step"]:
                raise RaremixError(f"demo run failed at step {step} as configured (fail_at_step)")
            task = (rng.random(batch) < c["rare_rate"]).astype(int)  # (B,) 0 common, 1 rare
            x = rng.standard_normal((batch, dim))  # (B, dim)
            y = (x * teacher[task]).sum(1)  # (B,)
            h = x @ U.T  # (B, width)
            err = (h * V[task]).sum(1) - y  # (B,)
            grad_v = np.zeros_like(V)
            np.add.at(grad_v, task, err[:, None] * h)
            grad_u = (err[:, None] * V[task]).T @ x  # (width, dim)
            V, U = V - lr * grad_v / batch, U - lr * grad_u / batch
            step += 1
            if step % c["eval_every"] == 0 or step == c["steps"]:
                evaluate()
            if step % c["checkpoint_every"] == 0 or step == c["steps"]:
                tmp = run_dir / f".ckpt.{os.getpid()}.npz"
                np.savez(tmp, U=U, V=V, step=step, rng=json.dumps(rng.bit_generator.state))
                os.replace(tmp, ckpt)
    finally:
        writer.close()
    return {"params": U.size + V.size, "steps": step, "final_rare_loss": losses_now()[1]}
