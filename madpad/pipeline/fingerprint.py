"""What makes a pipeline stage up to date: a SHA-256 fingerprint of the stage function's code (its
module and every madpad module it imports, transitively, named by their path inside the package so
the clone location does not matter), its parameters and the content of its inputs, and the stage
record that stores it. Used by :mod:`madpad.pipeline.runner`.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from madpad.errors import MadpadError, UsageError
from madpad.io import (
    atomic_write_json,
    file_sha256,
)
from madpad.pipeline.spec import StageSpec

RECORD_NAME = ".madpad-stage.json"
RECORD_VERSION = 1


class StageFailed(MadpadError):
    """Raised by the runner (or a stage) when a stage cannot complete."""


# --------------------------------------------------------------------------- hashing
class HashMemo:
    """SHA-256 of files, memoised by (path, size, mtime_ns) in ``WORKDIR/.madpad/hashes.json``."""

    def __init__(self, path: Path | None):
        self.path = path
        self.data: dict = {}
        self.dirty = False
        if path is not None and path.is_file():
            try:
                self.data = json.loads(path.read_text())
            except (OSError, ValueError):
                self.data = {}

    def file(self, p: Path) -> str:
        st = p.stat()
        key = str(p.resolve())
        sig = [st.st_size, st.st_mtime_ns]
        hit = self.data.get(key)
        if hit and hit[:2] == sig:
            return hit[2]
        h = file_sha256(p)
        self.data[key] = [*sig, h]
        self.dirty = True
        return h

    def tree(self, p: Path) -> str:
        """A file's hash, or a folder's: SHA-256 over sorted (relative path, file hash) pairs
        (cache records excluded)."""
        if p.is_file():
            return self.file(p)
        h = hashlib.sha256(b"dir\n")
        for f in sorted(x for x in p.rglob("*") if x.is_file() and x.name != RECORD_NAME):
            h.update(f.relative_to(p).as_posix().encode())
            h.update(b"\0")
            h.update(self.file(f).encode())
            h.update(b"\n")
        return h.hexdigest()

    def save(self) -> None:
        if self.dirty and self.path is not None:
            self.data = {k: v for k, v in self.data.items() if os.path.exists(k)}  # forget deleted files
            atomic_write_json(self.path, self.data, indent=0)
            self.dirty = False


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def import_stage_fn(spec: StageSpec) -> Callable:
    """Import ``module:function``; errors name the stage."""
    mod_name, _, fn_name = spec.fn.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise UsageError(f"stages.{spec.name}.fn: cannot import module {mod_name!r} ({exc})") from None
    fn = getattr(mod, fn_name, None)
    if not callable(fn):
        raise UsageError(f"stages.{spec.name}.fn: module {mod_name!r} has no function {fn_name!r}")
    return fn


def code_hash(fn: Callable) -> str:
    """SHA-256 over the source of the stage function's module and of every ``madpad`` module it
    imports, transitively (found by reading import statements and the module paths that lazy
    registries name as strings; nothing is imported): a change to
    the stage or to any madpad code it relies on reruns the stage. Third-party libraries are
    not hashed (pin them). Files are named by their path inside the package (``madpad/io.py``),
    so the key does not depend on where the repository is cloned."""
    try:
        src = inspect.getsourcefile(inspect.getmodule(fn) or fn)
    except TypeError:
        src = None
    if not (src and os.path.isfile(src)):
        return _sha(getattr(fn, "__qualname__", repr(fn)))
    module = getattr(inspect.getmodule(fn), "__name__", "")
    files = _madpad_closure(module, src)
    h = hashlib.sha256()
    for label, path in sorted((_code_label(f), f) for f in files):
        h.update(label.encode())
        h.update(file_sha256(path).encode())
    return h.hexdigest()


def _code_label(path: str) -> str:
    """A source file's location-independent name: ``madpad/...`` for the package's files, the
    file name for others (e.g. a stage module of the user's)."""
    import madpad

    pkg = Path(madpad.__file__).resolve().parent
    p = Path(path).resolve()
    try:
        return (Path("madpad") / p.relative_to(pkg)).as_posix()
    except ValueError:
        return p.name


def _module_file(name: str) -> str | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None) if spec else None
    return origin if origin and origin.endswith(".py") and os.path.isfile(origin) else None


def _imports_of(module: str, path: str) -> set[str]:
    import ast

    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError):
        return set()
    pkg = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)  # "from pkg import submodule"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # lazy registrations name their module as a string ("madpad.segment.grabcut")
            text = node.value.partition(":")[0]
            if text.startswith("madpad.") and text.replace(".", "").replace("_", "").isalnum():
                names.add(text)
    return {n for n in names if n == "madpad" or n.startswith("madpad.")}


def _madpad_closure(module: str, path: str) -> set[str]:
    seen_files = {os.path.abspath(path)}
    todo = [(module, path)]
    seen_mods = {module}
    while todo:
        mod, p = todo.pop()
        for name in _imports_of(mod, p):
            # a module's parent packages run too
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                sub = ".".join(parts[:i])
                if sub in seen_mods:
                    continue
                seen_mods.add(sub)
                f = _module_file(sub)
                if f and os.path.abspath(f) not in seen_files:
                    seen_files.add(os.path.abspath(f))
                    todo.append((sub, f))
    return seen_files


def stage_fingerprint(spec: StageSpec, fn: Callable, memo: HashMemo) -> dict:
    """What the cache key is made of; raises StageFailed naming a missing input."""
    inputs = {}
    for name, p in spec.inputs.items():
        if not p.exists():
            ref = spec.input_refs.get(name)
            hint = f" (output {ref[1]!r} of stage {ref[0]!r}: run that stage first)" if ref else ""
            raise StageFailed(f"stage {spec.name!r}: input {name!r} not found: {p}{hint}")
        inputs[name] = memo.tree(p)
    fp = {"fn": spec.fn, "code": code_hash(fn), "params": json.loads(_canonical(spec.params)),
          "outputs": dict(spec.outputs), "inputs": inputs}
    fp["key"] = _sha(_canonical(fp))
    return fp


def read_record(stage_dir: Path) -> dict | None:
    p = stage_dir / RECORD_NAME
    if not p.is_file():
        return None
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return rec if rec.get("version") == RECORD_VERSION else None


def stale_reasons(record: dict | None, fp: dict, spec: StageSpec, stage_dir: Path) -> list[str]:
    """Why a stage must run (empty list: up to date)."""
    if record is None:
        return ["never completed"]
    why = []
    if record.get("fn") != fp["fn"]:
        why.append(f"fn changed ({record.get('fn')} -> {fp['fn']})")
    elif record.get("code") != fp["code"]:
        why.append("code of the stage module changed")
    old_p, new_p = record.get("params") or {}, fp["params"]
    changed = sorted(k for k in set(old_p) | set(new_p) if old_p.get(k) != new_p.get(k))
    if changed:
        why.append(f"params changed: {changed}")
    old_i, new_i = record.get("inputs") or {}, fp["inputs"]
    changed = sorted(k for k in set(old_i) | set(new_i) if old_i.get(k) != new_i.get(k))
    if changed:
        why.append(f"inputs changed: {changed}")
    if record.get("outputs") != fp["outputs"]:
        why.append("declared outputs changed")
    missing = [n for n, rel in spec.outputs.items() if not (stage_dir / rel).exists()]
    if missing:
        why.append(f"outputs missing: {missing}")
    if not why and record.get("key") != fp["key"]:
        why.append("cache key changed")
    return why
