"""The fuzz corpus of bad config / YAML / CLI input, held to the promise: one line naming the
problem and the fix, exit code 2, no traceback, and nothing left behind in the out dir."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from cli_runner import cli
from raremix.config import load_config
from raremix.configbase import parse_yaml, read_yaml
from raremix.display import safe
from raremix.errors import RaremixError
from raremix.mixture import build_sampler
from raremix.tasks import make_task
from tiny_configs import tiny_config

TWO_TASKS = [{"name": "copy", "size": 900}, {"name": "successor", "size": 100}]


def alias_bomb(levels: int = 9) -> str:
    """'Billion laughs': each level a list of ten aliases of the level before."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


# name → (what the config file holds: a dict, str or bytes; the CLI args after the file;
#         a phrase the one error line must contain)
TRAIN_CORPUS: dict[str, tuple[object, list[str], str]] = {
    "latin-1 file": (
        "seed: 0\n# café\n".encode("latin-1"),
        [],
        "not UTF-8: save the file as UTF-8",
    ),
    "utf-16 file": ("seed: 0\n".encode("utf-16"), [], "UTF-16"),
    "utf-16 without BOM": ("seed: 0\n".encode("utf-16-le"), [], "UTF-16"),
    "override syntax": (tiny_config(), ["steps=[unclosed"], "override 'steps=[unclosed'"),
    "override python tag": (
        tiny_config(),
        ["seed=!!python/object/apply:os.system [echo owned]"],
        "python/object/apply:os.system",
    ),
    "duplicate top-level key": (
        yaml.safe_dump(tiny_config()) + "seed: 1\n",
        [],
        "duplicate key 'seed'",
    ),
    "duplicate nested key": (
        yaml.safe_dump(tiny_config()).replace("  n_layer: 1\n", "  n_layer: 1\n  n_layer: 2\n"),
        [],
        "duplicate key 'n_layer'",
    ),
    "alias bomb": (alias_bomb(), [], "aliases expand it to more than"),
    "alias cycle": ("a: &a [1, *a]\n", [], "refers to the node that contains it"),
    "nested too deep": ("x: " + "[" * 1500 + "]" * 1500 + "\n", [], "nested too deeply"),
    "negative seed": (tiny_config(), ["seed=-1"], "'seed'"),
    "seed >= 2**64": (tiny_config(), [f"seed={2**64}"], "4294967295"),
    "mlp_ratio inf": (tiny_config(), ["model.mlp_ratio=.inf"], "'model.mlp_ratio'"),
    "batch_size true": (tiny_config(), ["batch_size=true"], "not true"),
    "lr inf": (tiny_config(), ["optim.lr=.inf"], "'optim.lr': Input should be a finite number"),
    "lr nan": (tiny_config(), ["optim.lr=.nan"], "'optim.lr'"),
    "weight_decay inf": (tiny_config(), ["optim.weight_decay=.inf"], "'optim.weight_decay'"),
    "tau nan": (
        tiny_config(
            mixture={"strategy": "temperature", "params": {"tau": math.nan}, "sources": TWO_TASKS}
        ),
        [],
        "params.tau",
    ),
    "huge batch_size": (tiny_config(), ["batch_size=10000000000"], "65536"),
    "huge eval_examples": (tiny_config(), ["eval_examples=10000000000"], "100000"),
    "huge d_model": (tiny_config(), ["model.d_model=10000000000"], "16384"),
    "huge n_layer": (tiny_config(), ["model.n_layer=100000000"], "256"),
    "huge model": (
        tiny_config(),
        ["model.d_model=16384", "model.n_layer=256", "model.n_head=16"],
        "parameters, above the 2e+09 bound",
    ),
    "steps 1e15": (tiny_config(), ["steps=1.0e+15"], "1000000000"),
    "steps 1e15 as written": (tiny_config(), ["steps=1e15"], "'steps'"),
    "phase beyond the run": (
        tiny_config(
            mixture={
                "sources": TWO_TASKS,
                "schedule": {"unit": "steps", "phases": [{"start": 0}, {"start": 500}]},
            }
        ),
        [],
        "starts at step 500, but the run has 60 steps",
    ),
    "ledger cadence 0": (tiny_config(ledger={"every": 0}), [], "ledger.every"),
    "ledger unknown victim": (tiny_config(ledger={"victims": ["cpy"]}), [], "ledger.victims"),
    "device cuda without a GPU": (tiny_config(), ["device=cuda"], "device: cuda"),
}


def write_config(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "cfg.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


def assert_one_line_refusal(result: object, needle: str) -> None:
    code, out, err = result  # type: ignore[misc]
    assert code == 2, (out, err)
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1, out + err
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]
    assert "Traceback" not in out + err


@pytest.mark.parametrize("case", list(TRAIN_CORPUS))
def test_bad_train_input_is_refused_in_one_line(
    case: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content, args, needle = TRAIN_CORPUS[case]
    if case == "device cuda without a GPU" and torch.cuda.is_available():
        pytest.skip("a GPU is present: device: cuda is valid here")
    config = write_config(tmp_path, content)
    out = tmp_path / "out"
    result = cli(capsys, monkeypatch, "train", str(config), *args, "--out", str(out))
    assert_one_line_refusal(result, needle)
    assert not out.exists()  # not even an empty run directory


def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "taken.txt"
    path.write_text("keep me\n")
    return path


def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.jsonl"
    rows = [{"task": t, "prompt": "p", "response": "r"} for t in ("a", "a", "b")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# name → (args built in tmp_path, a phrase the one error line must contain)
CLI_CORPUS: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "train --out is a file": (
        lambda t: ["train", str(write_config(t, tiny_config())), "--out", str(a_file(t))],
        "is a file, not a folder",
    ),
    "train --out under a file": (
        lambda t: ["train", str(write_config(t, tiny_config())), "--out", str(a_file(t) / "run")],
        "is a file, not a folder",
    ),
    "inspect --plot x.txt": (
        lambda t: ["inspect", str(data_file(t)), "--plot", str(t / "x.txt")],
        "cannot write a '.txt' figure",
    ),
    "mix plan: steps true in the config": (
        lambda t: ["mix", str(write_config(t, tiny_config(steps=True)))],
        "'steps': expects a number",
    ),
    "mix write --out is a file": (
        lambda t: ["mix", "write", str(write_config(t, tiny_config())), "--out", str(a_file(t))],
        "is a file, not a folder",
    ),
    "study run --out is a file": (
        lambda t: ["study", "run", "demo", "--quick", "--out", str(a_file(t))],
        "is a file, not a folder",
    ),
    "demo --quick --out is a file (as given, no -quick)": (
        lambda t: ["demo", "--quick", "--out", str(a_file(t))],
        "taken.txt: is a file",
    ),
    "task name with a newline in an error": (
        lambda t: ["train", str(write_config(t, tiny_config(tasks={"copy": {}, "a\nb": {}})))],
        "unknown task 'a\\nb'",
    ),
}


@pytest.mark.parametrize("case", list(CLI_CORPUS))
def test_bad_cli_input_is_refused_in_one_line(
    case: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_args, needle = CLI_CORPUS[case]
    monkeypatch.chdir(tmp_path)
    args = make_args(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_one_line_refusal(cli(capsys, monkeypatch, *args), needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, nothing made
    if (tmp_path / "taken.txt").exists():
        assert (tmp_path / "taken.txt").read_text() == "keep me\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any permission")
def test_unwritable_out_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    config = write_config(tmp_path, tiny_config())
    result = cli(capsys, monkeypatch, "train", str(config), "--out", str(locked / "run"))
    assert_one_line_refusal(result, "cannot write in")


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: build_sampler({"sources": TWO_TASKS}, seed="x", batch_size=4), "seed"),  # type: ignore[arg-type]
        (lambda: build_sampler({"sources": TWO_TASKS}, seed=0, batch_size=True), "batch_size"),
        (lambda: make_task(None), "task name must be a string"),  # type: ignore[arg-type]
        (lambda: load_config(data=tiny_config(), overrides=[123]), "override 123"),  # type: ignore[list-item]
        (lambda: load_config(data=tiny_config(), overrides="steps=3"), "list of 'key=value'"),  # type: ignore[arg-type]
    ],
)
def test_bad_python_api_input_raises_the_project_error(
    call: Callable[[], object], needle: str
) -> None:
    with pytest.raises(RaremixError, match=needle):
        call()


def test_yaml_that_is_fine_still_loads(tmp_path: Path) -> None:
    # a UTF-8 BOM, merge-key overrides, and a few aliases are ordinary YAML
    text = "base: &b {lr: 0.1, beta1: 0.9}\noptim:\n  <<: *b\n  lr: 0.2\nnames: [*b, *b]\n"
    path = tmp_path / "ok.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    data = read_yaml(path)
    assert data["optim"] == {"lr": 0.2, "beta1": 0.9}
    assert data["names"] == [{"lr": 0.1, "beta1": 0.9}] * 2
    assert parse_yaml("steps: 500", "override") == {"steps": 500}


def test_tau_inf_stays_the_documented_uniform_mix() -> None:
    # τ → ∞ is temperature sampling's uniform limit (docs/mixture.md): finite-only would break it
    sampler = build_sampler(
        {"strategy": "temperature", "params": {"tau": math.inf}, "sources": TWO_TASKS},
        seed=0,
        batch_size=4,
    )
    assert sampler.weights_at(0).tolist() == [0.5, 0.5]


def test_names_are_escaped_for_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = ["[/bold]", "x\x1b[2Jy", "rtl\u202etxt.exe"]
    data = tmp_path / "data.jsonl"
    data.write_text(
        "".join(json.dumps({"task": t, "prompt": "p", "response": "r"}) + "\n" for t in evil)
    )
    mix = tmp_path / "mix.yaml"
    mix.write_text(yaml.safe_dump({"sources": [{"name": t, "size": 10} for t in evil]}))
    for args in (["inspect", str(data)], ["mix", "plan", str(mix)]):
        code, out, err = cli(capsys, monkeypatch, *args)
        assert code == 0, err
        assert "[/bold]" in out and "x\\x1b[2Jy" in out and "rtl\\u202etxt.exe" in out
        assert "\x1b" not in out + err and "\u202e" not in out + err
    assert safe("a[b]\n", markup=False) == "a[b]\\n"


def test_mix_plans_the_configs_run_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, tiny_config(steps=60, batch_size=32))
    assert (
        "60 steps × batch 32 = 1,920 examples" in cli(capsys, monkeypatch, "mix", str(config)).out
    )
    flags = cli(capsys, monkeypatch, "mix", str(config), "--steps", "10", "--batch-size", "4").out
    assert "10 steps × batch 4 = 40 examples" in flags
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump({"sources": TWO_TASKS}))
    assert "1,000 steps × batch 32" in cli(capsys, monkeypatch, "mix", str(bare)).out


def test_piped_train_prints_plain_progress_at_full_width(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    long = "successor_with_a_name_long_enough_to_push_the_line_well_past_eighty_columns"
    config = write_config(
        tmp_path,
        tiny_config(
            steps=20,
            eval_every=10,
            tasks={"copy": {"complexity": 3}, long: {"task": "successor"}},
            rare=[long],
            mixture={"strategy": "natural", "sources": [TWO_TASKS[0], {"name": long, "size": 100}]},
        ),
    )
    code, out, err = cli(capsys, monkeypatch, "train", str(config), "--out", str(tmp_path / "run"))
    assert code == 0, err
    steps = [line for line in out.splitlines() if line.startswith("step ")]
    # one line per evaluation (0, 10, 20) and one per tenth of the run between them
    assert [line.split()[1] for line in steps] == [
        "0/20",
        "2/20",
        "4/20",
        "6/20",
        "8/20",
        "10/20",
        "12/20",
        "14/20",
        "16/20",
        "18/20",
        "20/20",
    ]
    assert all(long in line and len(line) > 80 for line in steps)
    assert any(f"{long} (rare)" in line for line in out.splitlines())  # the final table, uncut
