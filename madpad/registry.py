"""A tiny registry of named components (detectors, embedders, segmenters, morph methods...).

One :class:`Registry` instance per kind. Registration is explicit (the module that
implements a component registers it); nothing scans the disk. Factories import their
heavy dependencies lazily, so listing what exists never imports torch.

>>> reg = Registry("detector")
>>> @reg.register("dummy", description="a test detector")
... def make_dummy(threshold=0.5):
...     return ("dummy", threshold)
>>> reg.create("dummy", threshold=0.1)
('dummy', 0.1)
>>> reg.names()
['dummy']
>>> reg.create("dumy")
Traceback (most recent call last):
...
madpad.errors.UnknownComponentError: detector 'dumy' is not registered; available: ['dummy']. Did you mean 'dummy'?
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from madpad.errors import UnknownComponentError


@dataclass(frozen=True)
class Entry:
    """One registered component."""

    name: str
    factory: Callable[..., Any]
    description: str = ""
    defaults: dict = field(default_factory=dict)
    extra: str | None = None  # the pip extra that provides its dependencies
    meta: dict = field(default_factory=dict)  # free-form (e.g. CLI hooks, licence, weights)


class Registry:
    """Maps names to component factories."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(
        self,
        name: str,
        factory: Callable[..., Any] | None = None,
        *,
        description: str = "",
        defaults: dict | None = None,
        extra: str | None = None,
        overwrite: bool = False,
        **meta: Any,
    ):
        """Register ``factory`` under ``name``; usable as a decorator when factory is None."""

        def _add(fn):
            if name in self._entries and not overwrite:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._entries[name] = Entry(name, fn, description, dict(defaults or {}), extra, dict(meta))
            return fn

        if factory is None:
            return _add
        _add(factory)
        return factory

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownComponentError(self._unknown_message(name)) from None

    def create(self, name: str, **params: Any) -> Any:
        """Build the component ``name`` with its defaults overridden by ``params``."""
        entry = self.get(name)
        kwargs = {**entry.defaults, **params}
        return entry.factory(**kwargs)

    def _unknown_message(self, name: Any) -> str:
        available = self.names()
        msg = f"{self.kind} {name!r} is not registered; available: {available}."
        close = difflib.get_close_matches(str(name), available, n=1)
        if close:
            msg += f" Did you mean {close[0]!r}?"
        return msg

    def describe(self) -> list[dict]:
        """Name, description and extra of every entry (for ``--list`` options and docs)."""
        return [
            {"name": e.name, "description": e.description, "extra": e.extra}
            for e in (self._entries[n] for n in self.names())
        ]
