"""Loading ultralytics YOLO weights without running code from the file.

A YOLO ``.pt`` file is a pickle of whole model objects. ultralytics reads it with
``torch.load(weights_only=False)`` by default, so a crafted file runs any code it names while it
loads. madpad never does that:

1. :func:`scan_yolo_weights` lists every Python global the pickle would look up (torch's static
   pickle scanner: the opcodes are read, nothing is executed) and refuses the
   file unless each one is on an allow-list: ``torch.nn`` and ``ultralytics.nn`` module classes,
   ultralytics' loss/assigner classes, and the few plain data types official checkpoints hold
   (numpy scalars and dtypes, ``pathlib`` paths, ultralytics' ``IterableSimpleNamespace``).
   ``builtins.getattr`` (pickled by some YOLOv8/YOLO11 checkpoints) is accepted only when
   ultralytics' restricted loader is there to replace it with a checked version.
2. :func:`load_yolo` builds ``ultralytics.YOLO(path)`` with ultralytics' restricted loading
   switched on for the call (``ultralytics.nn.tasks.SAFE_LOAD``, the ``ULTRALYTICS_SAFE_LOAD``
   setting: ``torch.load(weights_only=True)`` against its allow-list of model classes, and no
   ``eval`` of activation strings when a model ``.yaml`` is built). ultralytics releases without
   that loader still get step 1, which keeps every global the unpickler may call on the list.

A refused file raises :class:`~madpad.errors.UsageError` naming the file and the globals that
need arbitrary unpickling. Known residual risk (shared with ultralytics' own restricted mode): an
allow-listed model class is still constructed with arguments taken from the file.
"""

from __future__ import annotations

import contextlib
import importlib
from pathlib import Path
from typing import Any, Iterator

from madpad.errors import UsageError
from madpad.io import optional_import

#: Exact globals an ultralytics checkpoint may reference besides model classes.
ALLOWED_DATA_GLOBALS = frozenset({
    "collections.OrderedDict", "builtins.set", "builtins.frozenset", "builtins.slice",
    "numpy.dtype", "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
    "pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib._local.PosixPath",
    "pathlib._local.WindowsPath",
    "ultralytics.utils.IterableSimpleNamespace", "ultralytics.yolo.utils.IterableSimpleNamespace",
    "ultralytics.nn.modules.block.Silence", "ultralytics.nn.tasks.YOLOv10DetectionModel",
    "ultralytics.utils.loss.v10DetectLoss",
    "torchvision.transforms.transforms.Compose", "torchvision.transforms.transforms.Normalize",
    "torchvision.transforms.transforms.Resize", "torchvision.transforms.transforms.CenterCrop",
    "torchvision.transforms.transforms.ToTensor", "torchvision.transforms.functional.InterpolationMode",
})
#: Modules whose ``nn.Module`` subclasses a checkpoint may reference.
MODULE_CLASS_PREFIXES = ("torch.nn.modules.", "ultralytics.nn.modules.", "ultralytics.nn.tasks")
#: Modules whose own (non-Module) classes a training checkpoint may reference.
PLAIN_CLASS_MODULES = ("ultralytics.utils.loss", "ultralytics.utils.tal")
GETATTR = "builtins.getattr"


def restricted_loader_available() -> bool:
    """Whether the installed ultralytics has its restricted (``weights_only``) checkpoint loader."""
    try:
        tasks = importlib.import_module("ultralytics.nn.tasks")
    except ImportError:
        return False
    safe = getattr(tasks, "_SafeLoad", None)
    return bool(safe is not None and getattr(safe, "SUPPORTED", False) and hasattr(tasks, "SAFE_LOAD"))


def checkpoint_globals(path: str | Path) -> list[str]:
    """Every global (``module.name``) that unpickling the torch zip checkpoint ``path`` would look up.

    Reads the pickle's opcodes with torch's own static scanner (``torch._weights_only_unpickler
    .get_globals_in_pkl``; nothing is executed). The full list is returned, independent of what was
    added to torch's ``weights_only`` allow-list earlier in the process (ultralytics adds its model
    classes there). A pickle using opcodes the scanner does not know, a TorchScript archive or a
    non-zip (legacy) file raises :class:`UsageError`: it cannot be checked without unpickling it.
    """
    import io
    import pickle
    import zipfile

    torch = optional_import("torch", extra="torch", purpose="checking torch checkpoints")
    p = Path(path)
    scan_all = getattr(getattr(torch, "_weights_only_unpickler", None), "get_globals_in_pkl", None)
    public = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if scan_all is None and public is None:
        raise UsageError(f"{p}: cannot check which code this checkpoint would run: torch {torch.__version__} has no "
                         f"static pickle scanner (needs torch >= 2.6)")
    refuse = f"{p}: refused, because it cannot be checked without unpickling it"
    try:
        if not zipfile.is_zipfile(p):
            raise UsageError(f"{p}: not a torch zip checkpoint (legacy format or another file type); "
                             f"{refuse[len(str(p)) + 2:]}")
        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
            if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
                raise UsageError(f"{p}: a TorchScript archive, not a torch.save checkpoint; "
                                 f"{refuse[len(str(p)) + 2:]}")
            data = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
            if len(data) != 1:
                raise UsageError(f"{p}: not a torch zip checkpoint ({len(data)} data.pkl records)")
            if scan_all is None:
                return sorted(set(public(str(p))))
            return sorted(scan_all(io.BytesIO(zf.read(data[0]))))
    except UsageError:
        raise
    except (pickle.UnpicklingError, EOFError, AssertionError, ValueError, KeyError) as exc:
        raise UsageError(f"{refuse}: its pickle uses constructs the static scanner does not read "
                         f"({' '.join(str(exc).split())[:120]})") from None
    except (OSError, RuntimeError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{p}: unreadable checkpoint ({exc})") from None


def torch_default_safe_globals() -> frozenset:
    """Globals torch's ``weights_only`` unpickler allows by default (tensor and storage rebuilding,
    dtypes, ``OrderedDict``, ...): never code a checkpoint can abuse."""
    torch = optional_import("torch", extra="torch")
    allowed = getattr(getattr(torch, "_weights_only_unpickler", None), "_get_allowed_globals", None)
    if allowed is not None:
        try:
            return frozenset(allowed().keys())
        except Exception:  # noqa: BLE001 - private API drift: fall back to the known core set
            pass
    return frozenset({"collections.OrderedDict", "torch.Size", "torch.device", "torch._utils._rebuild_tensor_v2",
                      "torch._utils._rebuild_parameter", "torch._utils._rebuild_tensor"}
                     | {f"torch.{t}Storage" for t in ("Float", "Half", "BFloat16", "Double", "Long", "Int", "Short",
                                                      "Char", "Byte", "Bool")})


def unsafe_for_weights_only(names) -> list[str]:
    """The globals among ``names`` that torch's ``weights_only`` loading does not allow by default."""
    safe = torch_default_safe_globals()
    return sorted(n for n in names if n not in safe)


def _is_allowed(name: str, *, allow_getattr: bool, torch_safe: frozenset) -> bool:
    if name in ALLOWED_DATA_GLOBALS or name in torch_safe:
        return True
    if name == GETATTR:
        return allow_getattr
    module, _, attr = name.rpartition(".")
    if not module or not attr or attr.startswith("_"):
        return False
    module_ok = module.startswith(MODULE_CLASS_PREFIXES) or module in PLAIN_CLASS_MODULES
    if not module_ok:
        return False
    try:  # importing a torch/ultralytics module named by the file is safe: only these packages qualify
        obj = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return False
    if not isinstance(obj, type):
        return False
    if module in PLAIN_CLASS_MODULES:
        return obj.__module__ == module
    torch = optional_import("torch", extra="torch")
    return issubclass(obj, torch.nn.Module)


def unsafe_yolo_globals(names, *, allow_getattr: bool | None = None) -> list[str]:
    """The globals among ``names`` that are not on the YOLO allow-list."""
    if allow_getattr is None:
        allow_getattr = restricted_loader_available()
    torch_safe = torch_default_safe_globals()
    return [n for n in names if not _is_allowed(n, allow_getattr=allow_getattr, torch_safe=torch_safe)]


def scan_yolo_weights(path: str | Path, *, allow_getattr: bool | None = None) -> list[str]:
    """Check a YOLO ``.pt`` file without unpickling it. Returns the globals it references;
    raises :class:`UsageError` when the file is missing, not a torch zip checkpoint, or needs
    arbitrary unpickling (naming the offending globals)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UsageError(f"YOLO weights file not found: {p}")
    names = checkpoint_globals(p)
    bad = unsafe_yolo_globals(names, allow_getattr=allow_getattr)
    if bad:
        shown = ", ".join(bad[:5]) + (f", ... ({len(bad) - 5} more)" if len(bad) > 5 else "")
        why = (" (builtins.getattr is only accepted with ultralytics' restricted loader, which this ultralytics "
               "lacks)" if bad == [GETATTR] else "")
        raise UsageError(f"{p}: refused: loading these YOLO weights would need arbitrary unpickling (the file "
                         f"references {shown}){why}; madpad loads only checkpoints made of torch/ultralytics "
                         f"model classes. Re-export the model with ultralytics from a trusted source")
    return names


def model_classes(names) -> list[str]:
    """The ultralytics model classes (``DetectionModel``, ``PoseModel``, ...) among checkpoint globals."""
    return sorted({n.rpartition(".")[2] for n in names if n.startswith("ultralytics.nn.tasks.")
                   and n.endswith("Model")})


@contextlib.contextmanager
def restricted_loading() -> Iterator[bool]:
    """Switch ultralytics' restricted loading on for the duration (yields whether it exists)."""
    if not restricted_loader_available():
        yield False
        return
    tasks = importlib.import_module("ultralytics.nn.tasks")
    saved = tasks.SAFE_LOAD
    tasks.SAFE_LOAD = True
    try:
        yield True
    finally:
        tasks.SAFE_LOAD = saved


def is_model_config(weights: str) -> bool:
    return str(weights).lower().endswith((".yaml", ".yml"))


def load_yolo(ul, weights: str | Path, **kwargs: Any):
    """``ul.YOLO(weights, **kwargs)`` without running code from the file.

    ``ul``: the imported ``ultralytics`` module (see :func:`madpad.face.detectors.import_ultralytics`).
    ``weights``: a ``.pt`` checkpoint (scanned by :func:`scan_yolo_weights`, then loaded with
    ultralytics' restricted loader) or a model ``.yaml`` (built with the restricted loader on:
    activation strings are parsed, never ``eval``-ed). Raises :class:`UsageError` for a refused file.
    """
    w = str(weights)
    if not is_model_config(w):
        scan_yolo_weights(w)
    with restricted_loading():
        try:
            return ul.YOLO(w, **kwargs)
        except TypeError as exc:  # ultralytics' (restricted) loader refusing the file
            msg = " ".join(str(exc).split())
            raise UsageError(f"{w}: ultralytics refused to load it: {msg}") from None


__all__ = ["ALLOWED_DATA_GLOBALS", "checkpoint_globals", "is_model_config", "load_yolo", "model_classes",
           "restricted_loader_available", "restricted_loading", "scan_yolo_weights", "torch_default_safe_globals",
           "unsafe_for_weights_only", "unsafe_yolo_globals"]
