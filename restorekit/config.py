"""Typed configuration: YAML files and ``key.sub=value`` overrides into dataclasses.

A recipe is a tree of dataclasses. :func:`load_config` reads a YAML file, applies dotted
overrides from the command line, and builds the tree, checking every key and value
against the dataclass fields *before* anything runs. Errors name the file and the full
key path, e.g. ``recipes/edsr.yaml: train.lr: expected a number, got 'fast'``.

Supported field types: ``bool``, ``int``, ``float`` (ints accepted), ``str``,
``pathlib.Path``, ``Literal[...]``, ``X | None``, ``tuple[X, ...]``, ``tuple[X, Y]``,
``list[X]``, ``dict[str, X]`` and nested dataclasses. ``typing.Any`` passes values through
unchecked (for model keyword arguments, which the model's own constructor checks).
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")

__all__ = [
    "MAX_ALIASES",
    "ConfigError",
    "NonNegativeFloat",
    "NonNegativeInt",
    "PositiveFloat",
    "PositiveInt",
    "Range",
    "apply_overrides",
    "differences",
    "flat_items",
    "from_dict",
    "load_config",
    "read_yaml",
    "set_dotted",
    "to_dict",
]


MAX_ALIASES = 100
"""Aliases one YAML document may hold: a few save typing, thousands are a billion-laughs
bomb (a 600-byte file that grew past 4.7 GB)."""


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, reading ``1e-4`` as a number (YAML 1.1 wants ``1.0e-4``), with
    at most :data:`MAX_ALIASES` aliases."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > MAX_ALIASES:
                raise ConfigError(f"more than {MAX_ALIASES} YAML aliases (*name): refused")
        return super().compose_node(parent, index)


@dataclasses.dataclass(frozen=True)
class Range:
    """Bounds of a numeric config field, given as ``Annotated[int, Range(ge=1)]``.

    ``from_dict`` checks them at load and names the key; every float must also be finite.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def check(self, value: float, key: str) -> None:
        ok = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}
        if any(getattr(self, n) is not None and not ok[n](value, getattr(self, n)) for n in ok):
            raise ConfigError(f"{key}: must be {self.describe()}, got {value!r}")

    def describe(self) -> str:
        signs = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
        return " and ".join(
            f"{signs[n]} {getattr(self, n):g}" for n in signs if getattr(self, n) is not None
        )


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)


PositiveInt = Annotated[int, Range(ge=1)]
NonNegativeInt = Annotated[int, Range(ge=0)]
PositiveFloat = Annotated[float, Range(gt=0)]
NonNegativeFloat = Annotated[float, Range(ge=0)]


MAX_VALUES = 100_000
"""Values a YAML document may expand to, aliases followed: nine aliases of nine lists
each are already 9^9 strings."""


def _parse(text: str) -> Any:
    data = yaml.load(text, Loader=_Loader)
    if _expanded_size(data, {}) > MAX_VALUES:
        raise ConfigError(f"expands to more than {MAX_VALUES:,} values through its aliases")
    return data


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """How many values ``node`` holds once its shared (aliased) parts are copied out."""
    if id(node) in memo:
        return memo[id(node)]
    if isinstance(node, dict):
        size = 1 + sum(_expanded_size(v, memo) for v in node.values())
    elif isinstance(node, list):
        size = 1 + sum(_expanded_size(v, memo) for v in node)
    else:
        size = 1
    memo[id(node)] = size
    return size


class ConfigError(ValueError):
    """A config that does not fit its schema; the message names the file and key."""


def load_config(path: str | Path, schema: type[T], overrides: Sequence[str] = ()) -> T:
    """Read ``path`` (YAML), apply ``overrides`` (``"a.b=value"``), and build ``schema``.

    Override values are parsed as YAML, so ``lr=1e-4`` is a number, ``gan=true`` a
    bool and ``crop=[64,64]`` a list; quote strings that look like numbers.
    """
    path = Path(path)
    data = read_yaml(path)
    try:
        return from_dict(schema, apply_overrides(data, overrides))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping (``1e-4`` read as a number); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    try:
        data = _parse(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        byte = err.object[err.start]
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start} is {byte:#x})") from None
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "syntax error"
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return data


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` on ``base``: mappings merge key by key, anything else in ``top`` replaces.

    >>> merge({"model": {"name": "a", "kwargs": {"x": 1}}, "seed": 0},
    ...       {"model": {"kwargs": {"y": 2}}, "seed": 3})
    {'model': {'name': 'a', 'kwargs': {'x': 1, 'y': 2}}, 'seed': 3}
    """
    out = _deep_copy(dict(base))
    for key, value in top.items():
        old = out.get(key)
        both = isinstance(old, Mapping) and isinstance(value, Mapping)
        out[key] = merge(old, value) if both else _deep_copy(value)
    return out


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``"dotted.key=value"`` set (value parsed as YAML).

    >>> apply_overrides({"train": {"lr": 0.1}}, ["train.lr=1e-4", "seed=3"])
    {'train': {'lr': 0.0001}, 'seed': 3}
    """
    out = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected key=value")
        try:
            value = _parse(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        set_dotted(out, key.strip(), value)
    return out


def parse_call(text: str) -> tuple[str, dict[str, Any]]:
    """``"name:key=value,key=value"`` -> ``(name, {key: value})``, values parsed as YAML.

    How the CLI names a thing with its parameters (``--baseline bm3d:sigma=0.1``, a
    degradation ``gaussian:sigma=[0, 0.2],clip=false``); commas inside brackets belong to
    the value.

    >>> parse_call("gaussian:sigma=[0, 0.2],clip=false")
    ('gaussian', {'sigma': [0, 0.2], 'clip': False})
    """
    name, _, args = text.partition(":")
    if not name.strip().isidentifier():
        raise ConfigError(f"{text!r}: expected name or name:key=value,...")
    return name.strip(), apply_overrides({}, split_outside_brackets(args, ","))


def format_value(value: Any) -> str:
    """A value as an override or a ``name:key=value`` spec writes it, in YAML flow style,
    so :func:`apply_overrides` and :func:`parse_call` read back the same value.

    >>> format_value((0.0, 0.2)), format_value(False), format_value("l1")
    ('[0.0, 0.2]', 'false', 'l1')
    """
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6)
    return text.strip().removesuffix("...").strip()


def split_outside_brackets(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` where no bracket is open; blank parts dropped.

    >>> split_outside_brackets("a=[1, 2],b=3", ",")
    ['a=[1, 2]', 'b=3']
    """
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``key="a.b.c"``, creating missing sections.

    A numeric part indexes a list (``train.stages.0.steps``: the first stage's steps).

    >>> d = {"a": {"x": 1}, "s": [{"n": 1}, {"n": 2}]}
    >>> set_dotted(d, "a.b.c", 2); set_dotted(d, "s.1.n", 5); d
    {'a': {'x': 1, 'b': {'c': 2}}, 's': [{'n': 1}, {'n': 5}]}
    """
    node: Any = data
    parts = key.split(".")
    for i, part in enumerate(parts):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(
                    f"override {key}: {where}: no such item (the list has {len(node)})"
                )
            index: Any = int(part)
        elif isinstance(node, dict):
            index = part
        else:
            raise ConfigError(f"override {key}: {'.'.join(parts[:i])} is not a section")
        if i == len(parts) - 1:
            node[index] = _deep_copy(value)
        else:
            node = node.setdefault(index, {}) if isinstance(node, dict) else node[index]


def from_dict(schema: type[T], data: Mapping[str, Any], *, where: str = "") -> T:
    """Build dataclass ``schema`` from ``data``, checking keys and types recursively."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {_show(data)}")
    fields = {f.name: f for f in dataclasses.fields(schema) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{_join(where, unknown[0])}: unknown key; known keys here: {', '.join(sorted(fields))}"
        )
    hints = get_type_hints(schema, include_extras=True)
    values = {}
    for name, field in fields.items():
        key = _join(where, name)
        if name in data:
            values[name] = _convert(data[name], hints[name], key)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: missing (required)")
    try:
        return schema(**values)
    except (ValueError, TypeError) as err:  # a __post_init__ check
        raise ConfigError(f"{where or schema.__name__}: {err}") from None


def flat_items(data: Any, prefix: str = "") -> dict[str, Any]:
    """A config tree as ``{"train.stages.0.lr": 0.0001, ...}`` (lists of sections by index).

    >>> flat_items({"train": {"lr": 0.1, "stages": [{"steps": 5}]}, "seed": 3})
    {'train.lr': 0.1, 'train.stages.0.steps': 5, 'seed': 3}
    """
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        items = ((str(i), v) for i, v in enumerate(data))
    else:
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in items:
        out.update(flat_items(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def differences(
    old: Any, new: Any, *, ignore: Sequence[str] = (), new_keys: bool = True
) -> list[str]:
    """``"key: old -> new"`` for each setting that differs between two config trees
    (keys starting with one of ``ignore`` left out). With ``new_keys=False``, keys that
    only ``new`` has are not differences: settings added to restorekit after ``old`` was
    written, which an old run takes at their defaults."""
    a, b = flat_items(old), flat_items(new)
    missing = object()
    keys = sorted(set(a) | set(b)) if new_keys else sorted(a)
    return [
        f"{k}: {a.get(k, 'unset')!r} -> {b.get(k, 'unset')!r}"
        for k in keys
        if not any(k == i or k.startswith(i + ".") for i in ignore)
        and a.get(k, missing) != b.get(k, missing)
    ]


def to_dict(config: Any) -> Any:
    """The plain (YAML/JSON-ready) form of a config tree: dataclasses and tuples unwrapped."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    if isinstance(config, Path):
        return str(config)
    return config


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin is Annotated:
        converted = _convert(value, args[0], key)
        for bound in (a for a in args[1:] if isinstance(a, Range)):
            if converted is not None:
                bound.check(converted, key)
        return converted
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _convert(value, option, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: no type fits {_show(value)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(
                f"{key}: expected one of {', '.join(map(repr, args))}, got {_show(value)}"
            )
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where=key)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {_show(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            items = [
                _convert(v, a, f"{key}[{i}]")
                for i, (v, a) in enumerate(zip(value, args, strict=True))
            ]
        else:
            inner = args[0] if args else Any
            items = [_convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {_show(value)}")
        inner = args[1] if args else Any
        return {str(k): _convert(v, inner, f"{key}.{k}") for k, v in value.items()}
    return _scalar(value, tp, key)


def _scalar(value: Any, tp: Any, key: str) -> Any:
    # bool is an int in Python: check it first so `lr: true` is not the number 1.
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {_show(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {_show(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{key}: must be a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {_show(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {_show(value)}")
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise ConfigError(f"{key}: expected a path, got {_show(value)}")
    raise TypeError(f"{key}: unsupported config field type {tp!r}")  # a schema bug


def _show(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data
