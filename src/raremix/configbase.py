"""Config base: small pydantic models that reject typos and fail with one clear line.

Every config in raremix derives from `Config` (a whole run's from `raremix.config.RunConfig`). Fields carry a one-line docstring
(used as their description); unknown keys are errors, as are `true`/`false` where a
number is wanted and inf/nan in any float field; `load(Cls, data, where)` turns
pydantic's multi-line report into one `RaremixError` that names the field and the fix.

`load_file(Cls, path, overrides)` is the one loader of a config file (runs, HF runs,
study specs, advise inventories): read, relative paths resolved beside the file,
`key=value` overrides applied, validated — any problem one line naming the file and key.
`parse_yaml` is the one YAML reader under it (files through `read_yaml`, CLI overrides
too): UTF-8 only, safe tags only, duplicate keys refused, alias expansion bounded.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from raremix.errors import RaremixError, did_you_mean

C = TypeVar("C", bound="Config")


class Config(BaseModel):
    """Base of every raremix config: frozen, typo-rejecting, documented fields."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads `batch_size: true` as 1: a number field takes numbers only
        if isinstance(value, bool) and info.field_name is not None:
            kinds = _plain_types(cls.model_fields[info.field_name].annotation)
            if bool not in kinds and kinds & {int, float}:
                raise ValueError(f"expects a number, not {str(value).lower()}: write a number")
        return value

    @classmethod
    def beside_file(cls, data: dict[str, Any], folder: Path) -> dict[str, Any]:
        """`data` read from a file in `folder`, its relative paths made to point there.

        `load_file` calls it before validation; the default leaves `data` as it is.
        """
        return data


def config_hash(data: dict[str, Any]) -> str:
    """12 hex digits of the SHA-256 of `data` as sorted-key JSON."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def _plain_types(annotation: Any) -> set[Any]:
    """The member types of `int | None`-style annotations (the annotation itself otherwise)."""
    return set(typing.get_args(annotation)) or {annotation}


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


def _mapping(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise RaremixError(
            f"{where}: expected a mapping of keys to values, got {type(data).__name__}: "
            "write it as 'key: value' lines"
        )
    return data


def load(cls: type[C], data: Any, where: str = "config") -> C:
    """Validate `data` into `cls`, raising a one-line `RaremixError` on any problem."""
    try:
        return cls.model_validate(_mapping(data, where))
    except ValidationError as err:
        raise RaremixError(describe_validation_error(cls, err, where)) from None


def load_file(
    cls: type[C],
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    data: Any = None,
) -> C:
    """The one loader of a config file: read the YAML at `path` (or take `data`, a mapping
    from elsewhere), resolve its relative paths beside the file (`cls.beside_file`), apply
    `key=value` overrides, validate as `cls`. Any problem is one `RaremixError` line
    naming the file (or "config") and the key."""
    where = str(path) if path is not None else "config"
    if path is not None:
        data = cls.beside_file(_mapping(read_yaml(path), where), Path(path).parent)
    return load(cls, apply_overrides(_mapping(data, where), overrides), where)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides (values parsed as YAML) to a copy of a raw config dict.

    The copy is plain JSON data: keys become strings, and a YAML date or set becomes its
    text, which the config then accepts or refuses in one line.
    """
    if not isinstance(overrides, list | tuple):
        raise RaremixError(
            f"overrides must be a list of 'key=value' strings, got {type(overrides).__name__}"
        )
    out = json.loads(json.dumps(data, default=str))
    for item in overrides:
        if not isinstance(item, str):
            raise RaremixError(
                f"override {item!r} is {type(item).__name__}, not a 'key=value' string: "
                "write e.g. 'steps=500'"
            )
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise RaremixError(
                f"override '{item}' is not key=value: write e.g. steps=500 or model.size=200k"
            )
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise RaremixError(f"override '{item}': '{part}' is not a section: check the key")
            node = nxt
        node[parts[-1]] = parse_yaml(
            raw, f"override '{item}'", "write the value as YAML, e.g. steps=500"
        )
    return out


MAX_YAML_VALUES = 100_000
"""Most values a YAML may expand to through aliases: a bound on 'billion laughs' bombs."""


class _Refused(yaml.YAMLError):
    """A YAML construct raremix refuses (duplicate key, alias bomb), with its fix."""

    def __init__(self, problem: str, fix: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.problem, self.fix, self.problem_mark = problem, fix, mark


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (the later would silently win) and counts aliases."""

    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                key_node, yaml.ScalarNode
            ):
                continue  # `<<: *base` overrides are YAML's own merge, not duplicates
            key = self.construct_object(key_node)
            if key in seen:
                raise _Refused(
                    f"duplicate key '{key}' (also on line {seen[key] + 1})",
                    "keep one of them",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _expanded_size(data: Any, limit: int) -> int:
    """Values in `data` with every alias written out; stops past `limit`, refuses cycles."""
    sizes: dict[int, int | None] = {}

    def size(x: Any) -> int:
        if not isinstance(x, dict | list):
            return 1
        if id(x) in sizes:
            known = sizes[id(x)]
            if known is None:
                raise _Refused("an alias refers to the node that contains it", "remove the cycle")
            return known
        sizes[id(x)] = None
        items = [*x.keys(), *x.values()] if isinstance(x, dict) else x
        total = 1
        for item in items:
            total += size(item)
            if total > limit:
                raise _Refused(
                    f"aliases expand it to more than {limit:,} values",
                    "write the values out or nest fewer aliases",
                )
        sizes[id(x)] = total
        return total

    return size(data)


def decode_text(raw: bytes, where: str) -> str:
    """UTF-8 text (a UTF-8 BOM is fine), or one line saying which encoding to save it in."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in raw:
        raise RaremixError(f"{where}: is UTF-16 or binary, not UTF-8 text: save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise RaremixError(
            f"{where}: line {line}: byte 0x{raw[err.start]:02x} is not UTF-8: save the file as UTF-8"
        ) from None


def parse_yaml(text: str, where: str, fix: str = "fix the syntax") -> Any:
    """Parse YAML text safely, or raise one `RaremixError` line naming `where` and the fix."""
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
        if loader.aliases:
            _expanded_size(data, MAX_YAML_VALUES)
        return data
    except _Refused as err:
        at = f" line {err.problem_mark.line + 1}:" if err.problem_mark is not None else ""
        raise RaremixError(f"{where}:{at} {err.problem}: {err.fix}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise RaremixError(f"{where}:{at} is not valid YAML ({problem}): {fix}") from None
    except RecursionError:
        raise RaremixError(f"{where}: is nested too deeply: flatten it") from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file, with a one-line error for missing, unreadable or malformed files."""
    p = Path(path)
    if not p.is_file():
        raise RaremixError(f"{p}: no such file: check the path")
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise RaremixError(f"{p}: cannot read it ({err.strerror}): check its permissions") from None
    return parse_yaml(decode_text(raw, str(p)), str(p))


PACKAGED_GLOBS = {"studies": "studies/*/*.yaml"}
"""Where a kind of packaged YAML lives when not in `configs/<folder>/`: each study ships in
its own folder (`raremix/studies/<study>/`)."""


def packaged_configs(folder: str) -> dict[str, Path]:
    """Name → YAML shipped with raremix: `configs/<folder>/*.yaml`, or `PACKAGED_GLOBS[folder]`."""
    from importlib import resources

    root = Path(str(resources.files("raremix")))
    found = sorted(root.glob(PACKAGED_GLOBS.get(folder, f"configs/{folder}/*.yaml")))
    return dict(sorted((p.stem, p) for p in found))


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
