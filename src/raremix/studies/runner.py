"""The study runner: a study's runs in parallel processes, resumable, into a results store.

`run_study(spec, out_dir)` skips the runs the store holds as done and executes the rest
with `run_fn(config, run_dir) -> facts`: one single-thread worker process per core
(`backend="local"`) or as Ray tasks (`backend="ray"`). The parent is the store's only
writer and adds each finished run atomically: a killed study loses nothing finished.
A run is stored as done only when its metric rows are complete (`completeness`); the
study folder is locked while a process writes it; worker processes die with the parent,
even when it is SIGKILLed. `run_fn` must be one of `RUN_FNS` unless the caller trusts
the study file (`trust_run_fn`): a study YAML otherwise names any code to run.

Layout of `out_dir`: `study.yaml` (the resolved spec), `runs/<run_id>/` (each run's own
directory: metrics.jsonl, checkpoints, runspec.json, error.txt on failure) and `store/`.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from raremix.dirlock import dir_lock
from raremix.display import safe
from raremix.errors import RaremixError, did_you_mean, unknown
from raremix.results.rows import METRICS_FILE, MetricWriter, load_rows
from raremix.studies.completeness import missing_rows

if TYPE_CHECKING:  # worker processes import this module: keep it free of pydantic, rich, DuckDB
    from rich import progress as rp

    from raremix.studies.spec import RunSpec, StudySpec

DEFAULT_RUN_FN = "raremix.trainer:run_config"
RUN_FNS: dict[str, str] = {
    "raremix.trainer:run_config": "raremix's GPT trainer (the default)",
    "raremix.hf.train:run_config": "a Hugging Face model, trained by raremix.hf",
    "raremix.studies.runner:demo_run": "a tiny NumPy run, for tests and trying the runner",
    "raremix.studies.ordering.run:run_ordering": "curricula: the trainer after measuring the base phase",
    "raremix.studies.voting.run:voting_run": "voting: step and whole models, then chains",
    "raremix.studies.distillation.run:run_distill": "distillation: a teacher's cache, then students",
    "raremix.studies.instructions.run:run_instructions": "the instructions study's trainer run",
    "raremix.studies.decomposition.run:run_decomposition": "the decomposition study's trainer run",
}
"""The run functions a study file may name ('module:function' → what it does).

Any other function runs only with `trust_run_fn` (`raremix study run --trust-run-fn`)."""
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
    incomplete: list[str] = field(default_factory=list)
    """Runs the store held as done whose metric rows were incomplete: run again."""
    wall_s: float = 0.0
    analyzed: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        """One line: counts, time and where the results are."""
        counts = f"{len(self.done)} done, {len(self.skipped)} skipped, {len(self.failed)} failed"
        if self.incomplete:
            counts += f" ({len(self.incomplete)} stored with incomplete rows were run again)"
        return f"{counts} of {self.total} runs in {self.wall_s:.1f} s; results in {self.study_dir}"


def default_workers(threads_per_run: int = 1) -> int:
    """One worker per available core (per `threads_per_run` cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // threads_per_run)


def resolve_run_fn(run_fn: str | RunFn, *, trusted: bool = False) -> RunFn:
    """The run function named 'module:function' (a callable is returned as it is).

    A name not in `RUN_FNS` is refused unless `trusted`: importing it runs its code.
    """
    if callable(run_fn):
        return run_fn
    module, sep, name = run_fn.partition(":")
    if not sep or not module or not name:
        raise RaremixError(f"run_fn '{run_fn}' is not 'module:function': e.g. {DEFAULT_RUN_FN}")
    if not trusted and run_fn not in RUN_FNS:
        raise RaremixError(
            f"run_fn '{run_fn}' is not a registered run function ({did_you_mean(run_fn, RUN_FNS)}): "
            "to import and run it anyway, pass --trust-run-fn (trust_run_fn=True)"
        )
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


def _init_worker(threads: int, parent: int) -> None:
    """Worker initializer: limit threads, and die with the parent however it dies."""
    _set_threads(threads)
    if sys.platform.startswith("linux"):
        # the kernel sends SIGKILL when the parent ends, even by SIGKILL (PR_SET_PDEATHSIG = 1)
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int, every_s: float = 0.5) -> None:
    """Exit this worker once its parent is gone (it is re-parented): the portable fallback."""
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(1)


def _execute(run: dict[str, Any], run_fn: str | RunFn, study_dir: str, threads: int) -> RunResult:
    """Run one study run (a `RunSpec` as a dict) here; errors become a failed `RunResult`."""
    _set_threads(threads)
    start, run_id = time.perf_counter(), run["run_id"]
    path = Path(study_dir) / "runs" / run_id
    path.mkdir(parents=True, exist_ok=True)
    (path / "runspec.json").write_text(json.dumps(run, indent=1))
    try:
        fn = resolve_run_fn(run_fn, trusted=True)  # the parent checked it against RUN_FNS
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
    trust_run_fn: bool = False,
) -> StudyOutcome:
    """Run every run of `spec` not yet done in `out_dir`'s store; see the module docstring.

    `run_fn` ('module:function') overrides the spec's, which defaults to its analysis's run
    function (`raremix.studies.registry`); a name outside `RUN_FNS` needs `trust_run_fn`.
    `workers` overrides the spec's (local backend). Every run's config is validated before
    any worker starts. After a study with no failed run, the analyzer registered in
    `ANALYZERS` is called (`analyze`); it judges the study by the analysis its YAML names.
    `out_dir` is locked meanwhile: a second `run_study` on it raises `RaremixError` naming
    the holder.
    """
    from raremix.studies.registry import study_record
    from raremix.studies.spec import StudySpec, expand, load_spec, resolve_base

    spec = resolve_base(spec) if isinstance(spec, StudySpec) else load_spec(spec)
    if backend not in BACKENDS:
        raise unknown("backend", backend, BACKENDS)
    kind = study_record(spec.analysis)
    fn = run_fn or spec.run_fn or kind.run_fn
    resolve_run_fn(fn, trusted=trust_run_fn)  # fail in one line before any process starts
    if fn == kind.run_fn:  # a bad axis value is one line now, not a failed run per worker
        for run in expand(spec):
            kind.check_config(run.config, f"study '{spec.name}', run {run.labels}")
    with dir_lock(out_dir, "study folder"):
        return _run_study(spec, Path(out_dir), fn, workers, backend, progress, analyze)


def _run_study(
    spec: StudySpec,
    out: Path,
    fn: str | RunFn,
    workers: int | None,
    backend: Literal["local", "ray"],
    progress: bool,
    analyze: bool,
) -> StudyOutcome:
    from raremix.results.store import ResultStore, label_column  # the parent writes; workers don't
    from raremix.studies.hypotheses import record_declaration
    from raremix.studies.spec import expand, save_spec

    runs = expand(spec)
    save_spec(spec.model_copy(update={"run_fn": fn}) if isinstance(fn, str) else spec, out)
    record_declaration(out, spec.hypotheses)  # as declared before the first run (PROTOCOL §2)
    store = ResultStore(out / "store")
    incomplete = _stored_incomplete(store)
    for run_id in incomplete:
        _set_aside(out, run_id)
    finished = store.finished_ids() - set(incomplete)
    todo = [r for r in runs if r.run_id not in finished]
    for run in todo:
        if _written_under_another_id(out, run.run_id):
            _set_aside(out, run.run_id)
    outcome = StudyOutcome(out, len(runs), skipped=[r.run_id for r in runs if r.run_id in finished])
    outcome.incomplete = sorted(set(incomplete) & {r.run_id for r in todo})
    threads = spec.threads_per_run
    start = time.perf_counter()

    bar = _Bar(spec.name, len(runs), len(outcome.skipped), progress)

    def record(run: RunSpec, result: RunResult) -> None:
        gap = _rows_gap(run, result) if result.ok else None
        if gap is not None:  # stored as failed, so that the next `study run` runs it again
            moved = _set_aside(out, run.run_id)
            result.ok, result.error = False, gap
            if moved is not None:
                result.error += f" (moved to {moved} so that a rerun starts afresh)"
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
    analyzer = ANALYZERS.get(DEFAULT_ANALYZER)  # it finds the study's analysis in study.yaml
    if analyze and outcome.ok and analyzer is not None:
        analyzer(out)
        outcome.analyzed = True
    return outcome


def _rows_gap(run: RunSpec, result: RunResult) -> str | None:
    """Why a finished run's metric rows cannot be stored as done, in words; None if they can.

    Its rows must carry its one id (its directory's name) and be complete. Rows naming
    another id come from a run directory written before raremix used one id per run."""
    rows = result.rows or []
    foreign = sorted({str(r["run"]) for r in rows} - {run.run_id})
    if foreign:
        return (
            f"its metric rows name run {foreign[0]!r}, not its id {run.run_id!r} "
            "(a run directory from before raremix used one id per run)"
        )
    gap = missing_rows(run.config, result.facts, rows)
    return None if gap is None else f"its metric rows are incomplete: {gap}"


def _written_under_another_id(study: Path, run_id: str) -> bool:
    """Whether the run's directory holds rows under another id (raremix before one id per
    run wrote the trainer's config hash): resuming it would mix two ids in one run."""
    path = study / "runs" / run_id / METRICS_FILE
    if not path.is_file():
        return False
    with path.open("rb") as f:
        first = f.readline()
    try:
        return bool(first.endswith(b"\n") and json.loads(first).get("run") != run_id)
    except (ValueError, AttributeError):
        return False  # a damaged file: the run's own resume reports it


def _set_aside(study: Path, run_id: str) -> Path | None:
    """Move a run's directory to `runs/<id>.incomplete` (replacing an older one), so that
    its rerun trains afresh instead of resuming from a checkpoint past its lost rows."""
    path = study / "runs" / run_id
    if not path.is_dir():
        return None
    dest = path.with_name(f"{run_id}.incomplete")
    if dest.exists():
        shutil.rmtree(dest)
    path.rename(dest)
    return dest


def _stored_incomplete(store: Any) -> dict[str, str]:
    """Runs the store holds as done whose metric rows are incomplete → why (stores written
    before runs were checked, or changed since): they are run again, not skipped."""
    runs = store.sql("select * from runs where status = 'done'")
    if runs.empty:
        return {}
    rows = store.sql("select run_id, step, task, metric from metrics")
    by_run = {run: group.to_dict("records") for run, group in rows.groupby("run_id")}
    found = {}
    for record in runs.to_dict("records"):
        # the `steps` fact is stored as `fact_steps` when an axis is named `steps`
        facts = {"steps": record.get("fact_steps", record.get("steps"))}
        config = json.loads(record["config"] or "{}")
        gap = missing_rows(config, facts, by_run.get(record["run_id"], []))
        if gap is not None:
            found[record["run_id"]] = gap
    return found


def _run_local(todo: list[RunSpec], job: Job, workers: int, record: Record, bar: _Bar) -> None:
    """Run on a pool of spawned worker processes; a dead worker's runs are retried once."""
    queue, attempts, threads = deque(todo), Counter[str](), job[2]
    with _thread_env(threads):
        while queue:
            pool = ProcessPoolExecutor(
                max_workers=min(workers, len(queue)),
                mp_context=mp.get_context("spawn"),
                initializer=_init_worker,
                initargs=(threads, os.getpid()),
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
    "seed": 0,
    "steps": 300,
    "dim": 16,
    "width": 4,
    "rare_rate": 0.1,
    "lr": 0.05,
    "batch": 32,
    "eval_every": 50,
    "checkpoint_every": 100,
    "fail_at_step": None,
}


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
        losses = {"common": common, "rare": rare, "all": (common + rare) / 2}
        writer.log_metrics(step, {t: {"loss": v} for t, v in losses.items()})

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
