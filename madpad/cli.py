"""Shared command-line plumbing: config merging, key checks, exit codes.

Every CLI is a thin ``main(argv=None) -> int`` around a library function:

* configuration is merged as defaults < ``--config FILE.yaml`` < ``--set key=value``
  (values parsed with ``yaml.safe_load``, never ``eval``);
* unknown keys raise :class:`UsageError` with close-match suggestions;
* :func:`run_main` turns madpad's input errors into a one-line message on stderr and
  exit code 2; success is 0; per-item failures in batch jobs are recorded, not raised.
"""

from __future__ import annotations

import copy
import difflib
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from madpad.errors import (
    CheckpointError,
    ImageReadError,
    ManifestError,
    MissingDependencyError,
    UnknownComponentError,
    UsageError,
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def parse_set_items(items: Sequence[str] | None) -> dict:
    """``["a.b=3", "name=x"]`` -> ``{"a": {"b": 3}, "name": "x"}`` (values via yaml.safe_load)."""
    import yaml

    out: dict = {}
    for item in items or ():
        if "=" not in item:
            raise UsageError(f"--set {item!r} is missing an '=' sign, i.e. try '{item}=VALUE'")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise UsageError(f"--set {item!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise UsageError(f"--set {item!r}: cannot parse value ({exc})") from None
        if isinstance(value, str):
            value = _number_or_str(value)
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UsageError(f"--set {item!r}: '{part}' is not a section")
        node[parts[-1]] = value
    return out


def _number_or_str(text: str):
    """YAML 1.1 reads '1e-4' as a string; users mean a number."""
    import re

    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+", text.strip()):
        return float(text)
    return text


def parse_value(text: str):
    """A ``key=value`` value: YAML (numbers, booleans, null, ``[lists]``), '1e-4' as a number,
    text that is not valid YAML kept as it is."""
    import yaml

    text = text.strip()
    if not text:
        return ""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return _number_or_str(value) if isinstance(value, str) else value


def parse_component_spec(spec: str, *, what: str) -> tuple[str, dict]:
    """``"NAME[:key=value,...]"`` -> ``(name, params)``, values parsed by :func:`parse_value`.

    >>> parse_component_spec("yolo:weights=/m/y.pt,conf=0.3", what="--person-detector")
    ('yolo', {'weights': '/m/y.pt', 'conf': 0.3})

    An empty spec or an item without '=' raises :class:`UsageError` naming ``what``.
    """
    text = str(spec or "").strip()
    name, _, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise UsageError(f"{what}: empty component name in {text!r}; expected NAME[:key=value,...]")
    params: dict = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        if "=" not in item:
            raise UsageError(f"{what}: parameter {item!r} in {text!r} is missing an '=' sign "
                             f"(use key=value, e.g. model_path=FILE)")
        key, value = item.split("=", 1)
        params[key.strip()] = parse_value(value)
    return name, params


def load_yaml(path: str | Path) -> dict:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UsageError(f"{p}: invalid YAML ({exc})".replace("\n", " ")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{p}: top level must be a mapping of keys to values; got {type(data).__name__}")
    return data


def check_keys(given: Mapping[str, Any], allowed: Mapping[str, Any] | Sequence[str], *, where: str = "config") -> None:
    """Raise :class:`UsageError` for keys not in ``allowed`` (nested dicts checked recursively
    when ``allowed`` is a dict whose value for that key is itself a dict)."""
    allowed_names = list(allowed)
    for key, value in given.items():
        if key not in allowed_names:
            close = difflib.get_close_matches(str(key), [str(a) for a in allowed_names], n=3)
            hint = f" Similar keys: {close}." if close else f" Valid keys: {sorted(map(str, allowed_names))}."
            raise UsageError(f"{where}: {key!r} is not a valid key.{hint}")
        if isinstance(allowed, Mapping) and isinstance(allowed[key], dict) and allowed[key] and isinstance(value, Mapping):
            check_keys(value, allowed[key], where=f"{where}.{key}")


def deep_merge(base: dict, override: Mapping) -> dict:
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict) and out.get(k):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def coerce_types(config: dict, defaults: Mapping[str, Any], *, where: str = "config") -> dict:
    """Check each value against the type of its default (int/float/bool/str), coercing
    ints to floats; ``None`` defaults accept anything. A section (a mapping default) set to
    null (``--set data.build=null``, an empty ``params:`` in YAML) takes its defaults; set to
    anything else but a mapping it is an error naming the key."""
    out = dict(config)
    for key, default in defaults.items():
        if key not in out or default is None:
            continue
        value = out[key]
        if isinstance(default, dict):
            if value is None:
                out[key] = copy.deepcopy(default)
            elif not isinstance(value, Mapping):
                raise UsageError(f"{where}: '{key}={value}' is of invalid type {type(value).__name__}; "
                                 f"'{key}' is a section of settings: set its keys (i.e. '{key}.KEY=VALUE')")
            else:
                out[key] = coerce_types(dict(value), default, where=f"{where}.{key}")
            continue
        if value is None:
            if isinstance(default, (bool, int, float)):  # a bool/int/float setting has no null value
                kind = "a bool" if isinstance(default, bool) else "an int" if isinstance(default, int) else "a number"
                raise UsageError(f"{where}: '{key}=null' is of invalid type NoneType; '{key}' must be {kind} "
                                 f"(i.e. '{key}={str(default).lower() if isinstance(default, bool) else default}')")
            continue
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise UsageError(f"{where}: '{key}={value}' is of invalid type {type(value).__name__}; "
                                 f"'{key}' must be a bool (i.e. '{key}=true')")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise UsageError(f"{where}: '{key}={value}' is of invalid type {type(value).__name__}; "
                                 f"'{key}' must be an int (i.e. '{key}={default}')")
        elif isinstance(default, float):
            if isinstance(value, str):
                value = _number_or_str(value)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UsageError(f"{where}: '{key}={value}' is of invalid type {type(value).__name__}; "
                                 f"'{key}' must be a number (i.e. '{key}={default}')")
            out[key] = float(value)
        elif isinstance(default, str) and not isinstance(value, str):
            out[key] = str(value)
    return out


def resolve_config(defaults: dict, *, config_path: str | Path | None = None,
                   set_items: Sequence[str] | None = None, where: str = "config") -> dict:
    """defaults < YAML file < ``--set`` items, with key and type checks."""
    cfg = copy.deepcopy(defaults)
    if config_path:
        file_cfg = load_yaml(config_path)
        check_keys(file_cfg, defaults, where=str(config_path))
        cfg = deep_merge(cfg, file_cfg)
    overrides = parse_set_items(set_items)
    check_keys(overrides, defaults, where="--set")
    cfg = deep_merge(cfg, overrides)
    return coerce_types(cfg, defaults, where=where)


def dump_config(config: Mapping) -> str:
    import yaml

    return yaml.safe_dump(dict(config), sort_keys=False)


USAGE_ERRORS = (UsageError, ManifestError, UnknownComponentError, MissingDependencyError, ImageReadError,
                CheckpointError, FileNotFoundError)
#: OS errors of output locations (read-only folder, a file where a folder is expected or the
#: reverse, a path under a file): one line naming the path, exit 2 (the CLI contract).
PATH_ERRORS = (PermissionError, FileExistsError, IsADirectoryError, NotADirectoryError)


def run_main(fn: Callable[[], int | None], *, prog: str) -> int:
    """Run a CLI body; input errors, and OS errors of file operations (permission denied, a
    file where a folder is expected or the reverse, ...), become one line on stderr and exit
    code 2."""
    try:
        rc = fn()
    except USAGE_ERRORS as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        # read-only folders, file-vs-folder clashes, full disks...: one line naming the path
        if not isinstance(exc, PATH_ERRORS) and exc.filename is None:
            raise
        print(f"{prog}: error: {os_error_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished outputs are kept, rerun the same command to resume", file=sys.stderr)
        return 130
    return EXIT_OK if rc is None else int(rc)


def int_arg(minimum: int) -> Callable[[str], int]:
    """argparse ``type=``: an integer >= ``minimum`` ("a positive integer" when minimum is 1)."""
    import argparse

    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}")
        return v

    parse.__name__ = f"int_at_least_{minimum}"
    return parse


def size_arg(minimum: int = 1) -> Callable[[str], tuple[int, int]]:
    """argparse ``type=``: ``"WIDTHxHEIGHT"`` -> ``(width, height)``, each at least ``minimum``."""
    import argparse

    def parse(text: str) -> tuple[int, int]:
        try:
            w, h = (int(v) for v in str(text).lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"size must look like WIDTHxHEIGHT (e.g. 600x800); got {text!r}") from None
        if w < minimum or h < minimum:
            raise argparse.ArgumentTypeError(f"size must be at least {minimum}x{minimum}; got {text!r}")
        return w, h

    parse.__name__ = "size"
    return parse


def setup_logging(verbose: int = 0) -> None:
    """Configure logging for a CLI run (never at import)."""
    level = logging.WARNING - 10 * min(int(verbose), 2)
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")


def apply_runtime_options(*, threads: int | None = None, seed: int | None = None) -> None:
    """Apply thread count and global seeds, only when asked (called inside CLI mains);
    ``threads`` must be a positive integer (or None)."""
    import os
    import random

    import numpy as np

    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
        raise UsageError(f"threads must be a positive integer or null; got {threads!r}")
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        try:
            import cv2

            cv2.setNumThreads(int(threads))
        except ImportError:
            pass
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(int(threads))
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed % (2**32))
        if "torch" in sys.modules:
            sys.modules["torch"].manual_seed(seed)


# --------------------------------------------------------------------------- output locations
def _first_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _writable_folder_problem(folder: Path) -> str | None:
    """Why files cannot be created in ``folder`` (which may not exist yet), or None."""
    import os

    anc = _first_existing(folder)
    if not anc.is_dir():
        return f"{anc} is a file, not a folder"
    if not os.access(anc, os.W_OK | os.X_OK):
        return f"{anc} is not writable"
    # a real test (a hidden empty file, removed at once): root passes os.access everywhere,
    # read-only mounts and pseudo file systems do not take files
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=".madpad-write-test.", dir=anc)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return f"{anc} is not writable ({exc.strerror or type(exc).__name__})"
    return None


def check_output_dir(path: str | Path | None, *, option: str = "--out") -> Path | None:
    """Check, before any work starts, that ``path`` can be an output folder: it is a folder or
    does not exist yet, no part of it is a file, and it (or its nearest existing parent) is
    writable. Raises :class:`UsageError` (one line, exit 2) naming ``option`` and the path.
    None passes through."""
    if path is None:
        return None
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{option} {p} exists and is not a folder (it is a file); give a folder path")
    why = _writable_folder_problem(p)
    if why:
        raise UsageError(f"{option} {p}: cannot write there: {why}")
    return p


def check_output_file(path: str | Path | None, *, option: str = "--out") -> Path | None:
    """Check, before any work starts, that ``path`` can be written as a file: it is not a
    folder, no part of its parent is a file, and the parent folder is writable. Raises
    :class:`UsageError` (one line, exit 2) naming ``option`` and the path. None passes through."""
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{option} {p} is a directory; give a file path")
    why = _writable_folder_problem(p.parent if str(p.parent) else Path("."))
    if why:
        raise UsageError(f"{option} {p}: cannot write there: {why}")
    return p


def os_error_line(exc: OSError) -> str:
    """One line for an OS error of a file operation, naming the file(s)."""
    what = exc.strerror or str(exc) or type(exc).__name__
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{' -> '.join(names)}: {what}" if names else f"{type(exc).__name__}: {what}"
