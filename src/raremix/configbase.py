"""Config base: small pydantic models that reject typos and fail with one clear line.

Every config in raremix derives from `Config`. Fields carry a one-line docstring
(used as their description); unknown keys are errors; `load(Cls, data, where)`
turns pydantic's multi-line report into one `RaremixError` that names the field
and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from raremix.errors import RaremixError, did_you_mean

C = TypeVar("C", bound="Config")


class Config(BaseModel):
    """Base of every raremix config: frozen, typo-rejecting, documented fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _field_names(cls: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The valid field names at the nesting level where a bad key was found."""
    model: Any = cls
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            # a list[Model] or dict[str, Model]
            for c in candidates:
                for a in getattr(c, "__args__", ()):
                    if isinstance(a, type) and issubclass(a, BaseModel):
                        model = a
    return list(getattr(model, "model_fields", {}) or [])


def describe_validation_error(cls: type[BaseModel], err: ValidationError, where: str) -> str:
    """One line: where, which field, what is wrong, and how to fix it."""
    errors = err.errors()
    # a typo'd key also makes its intended key "missing": report the typo, which names the fix
    first = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    loc = tuple(first.get("loc", ()))
    path = ".".join(str(p) for p in loc) or "(top level)"
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        hint = did_you_mean(str(loc[-1]), _field_names(cls, loc)) if loc else ""
        msg = f"{where}: unknown key '{path}': {hint}"
    elif kind == "missing":
        msg = f"{where}: missing required key '{path}': add it"
    else:
        text = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        got = first.get("input")
        shown = f" (got {got!r})" if got is not None and not isinstance(got, dict | list) else ""
        msg = f"{where}: '{path}': {text}{shown}" if loc else f"{where}: {text}"
    more = len(err.errors()) - 1
    return msg + (f" [+{more} more problem{'s' if more > 1 else ''}]" if more > 0 else "")


def load(cls: type[C], data: Any, where: str = "config") -> C:
    """Validate `data` into `cls`, raising a one-line `RaremixError` on any problem."""
    if not isinstance(data, dict):
        raise RaremixError(
            f"{where}: expected a mapping of keys to values, got {type(data).__name__}: "
            "write it as 'key: value' lines"
        )
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise RaremixError(describe_validation_error(cls, err, where)) from None


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file, with a one-line error for missing or malformed files."""
    p = Path(path)
    if not p.is_file():
        raise RaremixError(f"{p}: no such file: check the path")
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        raise RaremixError(
            f"{p}:{at} is not valid YAML ({getattr(err, 'problem', err)}): fix the syntax"
        ) from None


def packaged_configs(folder: str) -> dict[str, Path]:
    """Name → YAML shipped in `raremix/configs/<folder>/` (studies, advise inventories, …)."""
    from importlib import resources

    root = Path(str(resources.files("raremix"))) / "configs" / folder
    return {p.stem: p for p in sorted(root.glob("*.yaml"))} if root.is_dir() else {}


def resolve_config(path_or_name: str, folder: str, what: str) -> Path:
    """A YAML path as given, or the packaged `what` of that name in `configs/<folder>/`."""
    from raremix.errors import unknown

    path = Path(path_or_name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    shipped = packaged_configs(folder)
    if path_or_name in shipped:
        return shipped[path_or_name]
    if not shipped:
        raise RaremixError(f"unknown {what} '{path_or_name}': none is packaged: pass a YAML path")
    raise unknown(what, path_or_name, shipped)
