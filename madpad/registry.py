"""One way to register a component, for every kind (face detectors, segmenters, morph detectors...).

Each kind has one :class:`Registry` (``madpad.face.FACE_DETECTORS``, ``madpad.segment.SEGMENTERS``,
``madpad.mad.MORPH_DETECTORS``, ...) created with the kind's interface, an abstract base class in
the kind's package (``FaceDetector``, ``Segmenter``, ``MorphDetector``, ...). A component is a class
that subclasses the interface, registered by name with one line in the kind's ``__init__`` (or
module). The target is either the class itself or a lazy ``"package.module:Class"`` string that is
imported only when the component is first used, so listing what exists never imports torch.

Registration is explicit: nothing scans the disk. ``create(name, **params)`` merges the entry's
``defaults`` with ``params``, checks every key against the constructor's signature (an unknown key
is a :class:`~madpad.errors.UsageError` naming the close match and the valid keys) and builds the
component. ``test_params`` are the parameters the registry-driven contract tests
(``tests/test_registry_contracts.py``) build the entry with.

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
>>> reg.create("dummy", treshold=0.1)
Traceback (most recent call last):
...
madpad.errors.UsageError: detector 'dummy': unknown parameter 'treshold'; did you mean 'threshold'? valid: ['threshold']
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar

from madpad.errors import (
    MadpadError,
    MissingDependencyError,
    UnknownComponentError,
    UsageError,
)


def import_object(spec: str, *, extra: str | None = None, what: str = "") -> Any:
    """Import ``"package.module:Attr"`` (``Attr`` may be dotted, e.g. ``Class.method``).

    A missing third-party package raises :class:`MissingDependencyError` naming the pip extra
    (``extra``) or the package; a target that does not exist is an :class:`ImportError`.
    ``what`` names the component in messages (e.g. ``"segmenter 'rembg'"``).
    """
    module, sep, attr = str(spec).partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"lazy target must look like 'package.module:Attr'; got {spec!r}")
    label = what or spec
    try:
        obj = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing.split(".")[0] == "madpad":  # a bug in the registration, not a missing package
            raise ImportError(f"{label}: registered target {spec!r} does not exist (no module {missing!r})") from exc
        hint = f"pip install 'madpad[{extra}]'" if extra else f"pip install {missing.split('.')[0]}"
        raise MissingDependencyError(f"{label} needs the package {missing!r}, which is not installed; "
                                     f"install it with: {hint}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(f"{label}: registered target {spec!r} does not exist "
                              f"(no attribute {part!r})") from None
    return obj


class Component:
    """Class-level declarations shared by every kind's interface (read by registries, contract
    tests and docs).

    ``name``: the registered name (recorded in outputs, e.g. ``FaceDetection.detector``);
    ``required_files``: constructor options that must name a user-supplied file (weights, ONNX
    models): building the component without one, or its first use, raises a one-line
    :class:`~madpad.errors.MadpadError` naming the option.
    """

    name: str = ""
    required_files: ClassVar[tuple[str, ...]] = ()


def _target_name(target: Any) -> str:
    if isinstance(target, str):
        return target
    mod = getattr(target, "__module__", None)
    qual = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or type(target).__name__
    return f"{mod}:{qual}" if mod else str(qual)


@dataclass(frozen=True)
class Entry:
    """One registered component.

    ``target``: the class (or factory), or a lazy ``"package.module:Attr"`` string;
    ``defaults``: parameters merged under the caller's; ``extra``: the pip extra that provides its
    dependencies; ``test_params``: what the contract tests build it with (None = its defaults);
    ``meta``: free-form (weights, licence, ...).
    """

    name: str
    target: Any
    description: str = ""
    defaults: dict = field(default_factory=dict)
    extra: str | None = None
    test_params: dict | None = None
    meta: dict = field(default_factory=dict)

    @property
    def target_name(self) -> str:
        """``"package.module:Attr"`` of the target (without importing it)."""
        return _target_name(self.target)


class Registry:
    """Maps names to components of one kind.

    ``kind`` names the kind in messages ("face detector"); ``interface`` is the kind's abstract
    base class: class targets must subclass it (checked when registered, or when a lazy target is
    first loaded).
    """

    def __init__(self, kind: str, interface: type | None = None):
        self.kind = kind
        self.interface = interface
        self._entries: dict[str, Entry] = {}
        self._loaded: dict[str, Any] = {}

    # ------------------------------------------------------------------ registration
    def register(
        self,
        name: str,
        target: Any = None,
        *,
        description: str = "",
        defaults: dict | None = None,
        extra: str | None = None,
        test_params: dict | None = None,
        overwrite: bool = False,
        **meta: Any,
    ):
        """Register ``target`` under ``name``; a decorator when ``target`` is None.

        ``target``: a class (a subclass of the registry's interface), a factory callable, or a lazy
        ``"package.module:Attr"`` string imported on first use.
        """

        def _add(obj):
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"{self.kind} name must be a non-empty string; got {name!r}")
            if name in self._entries and not overwrite:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            if isinstance(obj, str):
                module, sep, attr = obj.partition(":")
                if not sep or not module or not attr:
                    raise ValueError(f"{self.kind} '{name}': lazy target must look like 'package.module:Attr'; "
                                     f"got {obj!r}")
            elif not callable(obj):
                raise TypeError(f"{self.kind} '{name}': target must be a class, a callable or a "
                                f"'package.module:Attr' string; got {obj!r}")
            else:
                self._check_interface(name, obj)
            self._entries[name] = Entry(name, obj, description, dict(defaults or {}), extra,
                                        None if test_params is None else dict(test_params), dict(meta))
            self._loaded.pop(name, None)
            return obj

        if target is None:
            return _add
        _add(target)
        return target

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)
        self._loaded.pop(name, None)

    # ------------------------------------------------------------------ listing
    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownComponentError(self._unknown_message(name)) from None

    def describe(self) -> list[dict]:
        """Name, description and extra of every entry (for ``--list`` options and docs)."""
        return [
            {"name": e.name, "description": e.description, "extra": e.extra}
            for e in (self._entries[n] for n in self.names())
        ]

    # ------------------------------------------------------------------ building
    def load(self, name: str) -> Any:
        """The class (or factory) registered as ``name``, importing a lazy target on first use.

        Raises :class:`UnknownComponentError` for an unknown name and
        :class:`MissingDependencyError` (naming the pip extra) when a package it needs is missing.
        """
        entry = self.get(name)
        if name not in self._loaded:
            target = entry.target
            if isinstance(target, str):
                target = import_object(target, extra=entry.extra, what=f"{self.kind} '{name}'")
                self._check_interface(name, target)
            self._loaded[name] = target
        return self._loaded[name]

    def parameters(self, name: str) -> list[str] | None:
        """The keyword parameters ``name`` accepts (sorted), or None when it takes ``**kwargs``
        (then the component checks its own options)."""
        sig = _signature(self.load(name))
        if sig is None or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            return None
        return sorted(p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                      and not p.name.startswith("_"))

    def check_params(self, name: str, params: dict) -> None:
        """Raise :class:`UsageError` when ``params`` has a key ``name`` does not accept (with the
        close match and the valid keys) or lacks a required one."""
        valid = self.parameters(name)
        if valid is None:
            return
        label = f"{self.kind} {name!r}"
        check_keywords(label, params, valid)
        sig = _signature(self.load(name))
        missing = [p.name for p in sig.parameters.values()
                   if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty
                   and p.name not in params]
        if missing:
            raise UsageError(f"{label}: missing required parameter(s) {missing}")

    def create(self, name: str, **params: Any) -> Any:
        """Build the component ``name`` with its defaults overridden by ``params`` (checked first)."""
        entry = self.get(name)
        target = self.load(name)
        kwargs = {**entry.defaults, **params}
        self.check_params(name, kwargs)
        try:
            return target(**kwargs)
        except MadpadError:
            raise
        except ValueError as exc:  # a constructor's own check of a value: input, not a bug
            raise UsageError(f"{self.kind} {name!r}: {exc}") from exc

    # ------------------------------------------------------------------ helpers
    def _check_interface(self, name: str, target: Any) -> None:
        if self.interface is None:
            return
        if not (isinstance(target, type) and issubclass(target, self.interface)):
            raise TypeError(f"{self.kind} '{name}': {_target_name(target)} must be a class that subclasses "
                            f"{self.interface.__module__}.{self.interface.__qualname__}")

    def _unknown_message(self, name: Any) -> str:
        available = self.names()
        msg = f"{self.kind} {name!r} is not registered; available: {available}."
        close = difflib.get_close_matches(str(name), available, n=1)
        if close:
            msg += f" Did you mean {close[0]!r}?"
        return msg


def check_keywords(label: str, params: Any, valid: Any) -> None:
    """Raise :class:`UsageError` when ``params`` (names) holds a key not in ``valid``:
    ``"<label>: unknown parameter 'upsmple'; did you mean 'upsample'? valid: [...]"``. For
    components that take ``**kwargs`` and check their own options."""
    valid = sorted(valid)
    unknown = sorted(str(k) for k in params if k not in valid)
    if not unknown:
        return
    close = {k: difflib.get_close_matches(k, valid, n=1) for k in unknown}
    if len(unknown) == 1:
        k = unknown[0]
        hint = f"; did you mean {close[k][0]!r}? " if close[k] else "; "
        raise UsageError(f"{label}: unknown parameter {k!r}{hint}valid: {valid}")
    listed = ", ".join(f"{k!r}" + (f" (did you mean {close[k][0]!r}?)" if close[k] else "") for k in unknown)
    raise UsageError(f"{label}: unknown parameters {listed}; valid: {valid}")


def _signature(target: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):  # some builtins have no signature: they check their own arguments
        return None
