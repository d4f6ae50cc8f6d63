"""One registry helper for everything restorekit looks up by name.

Models, degradations, baselines, backbones, data sources and dataset layouts are each a
:class:`Registry`. An entry is the registered object plus its metadata (:class:`Entry`):
what kind of thing it is, the scales and channels it takes, a tiny configuration for
tests, and the paper it follows. Tests read the tiny configurations from the registry
(as timm's tests do), so adding an entry needs no edit of a test table.

A registry made with ``package=`` imports every module of that package on its first
lookup, so a new file that calls ``@REGISTRY.register(...)`` is found without being named
anywhere else. Modules that hold shared code and register nothing are named in
``helpers``; :meth:`Registry.silent_modules` lists any other module that registered
nothing (a test keeps that list empty).

>>> colours = Registry("colour")
>>> @colours.register("red", kind="warm", paper="Newton 1704")
... def red() -> str:
...     return "#f00"
>>> colours["red"]()
'#f00'
>>> colours.entry("red").kind, list(colours)
('warm', ['red'])
>>> colours.get("blue")
Traceback (most recent call last):
ValueError: unknown colour 'blue'; choose one of: red
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

T = TypeVar("T")

__all__ = ["Entry", "Registry"]


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object and what is known about it.

    Attributes:
        name: the registry name.
        obj: the registered class, builder or value.
        module: the module that registered it.
        kind: what it is within its registry, e.g. ``"restorer"``, ``"discriminator"``,
            ``"features"`` for models; ``""`` where a registry has one kind.
        scales: the upscaling factors it supports (``(1,)`` for same-size restorers).
        channels: its default number of image channels, where it has one.
        tiny: keyword arguments for a configuration small enough for a unit test.
        tiny_input: an input shape (C, H, W) for the tiny configuration, where it needs
            one (discriminators with a fixed input size).
        paper: the reference it follows (a citation and link).
        extra: anything else the registry's own code reads.
    """

    name: str
    obj: T
    module: str
    kind: str = ""
    scales: tuple[int, ...] = (1,)
    channels: int | None = None
    tiny: Mapping[str, Any] = field(default_factory=dict)
    tiny_input: tuple[int, ...] | None = None
    paper: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Name -> :class:`Entry` for one family of objects.

    Read like a mapping of names to the registered objects (``registry[name]``, ``in``,
    iteration over names, ``items()``); :meth:`entry` and :meth:`entries` give the
    metadata. Unknown names raise ValueError listing the choices.

    Args:
        what: the family's name in error messages (``"model"``, ``"degradation"``).
        package: a package whose modules are all imported on the first lookup.
        helpers: modules of ``package`` that register nothing by design.
        ordered: keep the registration order (where it means something: the order data
            formats are tried in, sources are listed in) instead of sorting by name.
    """

    def __init__(
        self,
        what: str,
        *,
        package: str | None = None,
        helpers: Iterable[str] = (),
        ordered: bool = False,
    ):
        self.what = what
        self.package = package
        self.helpers = frozenset(helpers)
        self.ordered = ordered
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = package is None

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@registry.register("name", kind=...)``."""

        def deco(obj: T) -> T:
            self.add(name, obj, **meta)
            return obj

        return deco

    def add(self, name: str, obj: T, *, module: str | None = None, **meta: Any) -> T:
        """Register ``obj`` under ``name`` with :class:`Entry` metadata ``meta``.

        The same definition registered again (a module imported twice, as pytest's
        doctest collection does) replaces itself; two definitions under one name are a
        ValueError.
        """
        module = module or getattr(obj, "__module__", None) or "?"
        known = self._entries.get(name)
        if known is not None and _origin(known.obj, known.module) != _origin(obj, module):
            raise ValueError(f"{self.what} {name!r} is registered twice")
        if "tiny" in meta:
            meta["tiny"] = MappingProxyType(dict(meta["tiny"]))
        self._entries[name] = Entry(name, obj, module, **meta)
        return obj

    def remove(self, name: str) -> None:
        """Forget ``name`` (a plug-in unloaded, a test's temporary entry)."""
        self.entry(name)
        del self._entries[name]

    def load(self, *, again: bool = False) -> None:
        """Import every module of the package (once; ``again`` looks for new modules, as
        after a plug-in folder is added to the package's path), so all of them register."""
        if self._loaded and not again:
            return
        self._loaded = True
        for module in self.modules():
            importlib.import_module(module)

    def modules(self) -> list[str]:
        """The package's modules that should register something (helpers left out)."""
        if self.package is None:
            return []
        package = importlib.import_module(self.package)
        return [
            f"{self.package}.{info.name}"
            for info in pkgutil.iter_modules(package.__path__)
            if not info.name.startswith("_") and info.name not in self.helpers
        ]

    def silent_modules(self) -> list[str]:
        """Modules of the package that registered nothing here (should be empty)."""
        self.load()
        depth = len(self.package.split(".")) if self.package else 0
        registered = {e.module.split(".")[depth] for e in self.entries()}
        return [m for m in self.modules() if m.rsplit(".", 1)[1] not in registered]

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name``; unknown names raise ValueError listing the choices."""
        self.load()
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.what} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def get(self, name: str) -> T:
        """The object registered as ``name`` (ValueError listing the choices if none)."""
        return self.entry(name).obj

    __getitem__ = get

    def entries(self, *, kind: str | None = None) -> list[Entry[T]]:
        """The entries, in :meth:`names` order; only those of ``kind`` if given."""
        return [self._entries[n] for n in self.names(kind=kind)]

    def values(self) -> list[T]:
        """The registered objects, in :meth:`names` order."""
        return [e.obj for e in self.entries()]

    def items(self) -> list[tuple[str, T]]:
        """``(name, object)`` pairs, in :meth:`names` order."""
        return [(e.name, e.obj) for e in self.entries()]

    def names(self, *, kind: str | None = None) -> list[str]:
        """Registered names (sorted, or in registration order if ``ordered``); only those
        of ``kind`` if given."""
        self.load()
        names = [n for n, e in self._entries.items() if kind is None or e.kind == kind]
        return names if self.ordered else sorted(names)

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {len(self._entries)} entries)"


def _origin(obj: object, module: str) -> tuple[str, str]:
    return module, getattr(obj, "__qualname__", repr(obj))
