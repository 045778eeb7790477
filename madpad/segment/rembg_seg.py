"""rembg sessions (IS-Net, U2-Net, BiRefNet, ...) as madpad segmenters.

The model file is looked up in ``model_dir`` (parameter) or else in ``$U2NET_HOME``, under
rembg's own file name ``<model>.onnx`` (e.g. ``isnet-general-use.onnx``,
``u2net_human_seg.onnx``, ``birefnet-portrait.onnx``). A missing file is an error naming
the folder, the variable and the expected file name: madpad never lets rembg download.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from madpad.errors import UnknownComponentError, UsageError
from madpad.io import optional_import
from madpad.segment.base import (
    ModelFileNotFoundError,
    Segmenter,
    check_image,
    clean_matte,
    finish_matte,
)

DEFAULT_MODEL = "isnet-general-use"


def _session_classes() -> dict:
    """rembg's session classes by model name (works with both layouts rembg has used)."""
    optional_import("rembg", extra="segment", purpose="rembg segmentation")
    import importlib

    sessions = importlib.import_module("rembg.sessions")
    table = getattr(sessions, "sessions", None)
    if isinstance(table, dict) and table:
        return dict(table)
    return {cls.name(): cls for cls in getattr(sessions, "sessions_class", [])}


def rembg_model_names() -> list[str]:
    """Model names rembg knows (whether or not their files are present)."""
    return sorted(_session_classes())


def resolve_model_file(model: str, model_dir: str | os.PathLike | None = None) -> Path:
    """``<model_dir or $U2NET_HOME>/<model>.onnx``; raise a clear error when it is missing."""
    if model_dir is not None and str(model_dir).strip():
        base, where = Path(model_dir).expanduser(), f"model_dir={str(model_dir)!r}"
    else:
        env = os.environ.get("U2NET_HOME", "").strip()
        if not env:
            raise ModelFileNotFoundError(
                f"rembg model {model!r}: no model folder given; set U2NET_HOME to the folder that holds "
                f"'{model}.onnx' or pass model_dir=... (madpad does not download models)")
        base, where = Path(env).expanduser(), f"U2NET_HOME={env!r}"
    path = base / f"{model}.onnx"
    if not path.is_file():
        raise ModelFileNotFoundError(
            f"rembg model {model!r}: expected file '{model}.onnx' in {base} ({where}), but it is not there; "
            f"place the model file there (madpad does not download models)")
    return path


class RembgSegmenter(Segmenter):
    """Background removal with a rembg session; the matte is the model's own soft output.

    ``model``: rembg model name (``isnet-general-use``, ``u2net``, ``u2net_human_seg``,
    ``birefnet-portrait``, ...). ``model_dir``: folder holding ``<model>.onnx`` (default:
    ``$U2NET_HOME``). ``threads``: onnxruntime intra-op threads (None = runtime default).
    ``clean``: post-process with :func:`madpad.segment.base.clean_matte` (drop specks away from
    the person, fill the person's interior; hair edges unchanged). Off by default: the raw model
    output. The uint8-quantized IS-Net file leaves specks on plain backdrops and small dips
    inside the face (see docs/segmentation.md).
    The session is created on first use and not pickled (workers build their own).
    """

    needs_face = False
    required_files = ("model_dir",)  # or $U2NET_HOME

    def __init__(self, *, model: str = DEFAULT_MODEL, model_dir: str | os.PathLike | None = None,
                 threads: int | None = None, clean: bool = False):
        if not isinstance(model, str) or not model.strip():
            raise UsageError(f"rembg model must be a non-empty name; got {model!r}")
        self.model = model.strip()
        self.model_dir = None if model_dir is None else str(model_dir)
        self.threads = None if threads is None else int(threads)
        self.clean = bool(clean)
        self._session = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"rembg:{self.model}"

    def params(self) -> dict:
        return {"model": self.model, "threads": self.threads, "clean": self.clean}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_session"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def check(self) -> Path:
        """Raise the error :meth:`segment` would raise for a missing model file or package;
        return the model file's path. Cheap: loads nothing."""
        import importlib.util

        from madpad.errors import MissingDependencyError

        for mod in ("rembg", "onnxruntime"):
            if importlib.util.find_spec(mod) is None:
                raise MissingDependencyError(f"{mod} is not installed (needed for rembg segmentation); "
                                             f"install it with: pip install 'madpad[segment]'")
        return resolve_model_file(self.model, self.model_dir)

    def _load(self):
        with self._lock:
            if self._session is not None:
                return self._session
            path = resolve_model_file(self.model, self.model_dir)  # before importing rembg (slow import)
            classes = _session_classes()
            if self.model not in classes:
                import difflib

                close = difflib.get_close_matches(self.model, list(classes), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise UnknownComponentError(
                    f"rembg model {self.model!r} is unknown to rembg; known: {sorted(classes)}.{hint}")
            base = classes[self.model]
            # A subclass whose download hook returns the checked local file: rembg never
            # reaches the network and the process environment is left alone.
            local_cls = type(f"Local{base.__name__}", (base,),
                             {"download_models": classmethod(lambda cls, *a, **k: str(path))})
            ort = optional_import("onnxruntime", extra="segment", purpose="rembg segmentation")
            opts = ort.SessionOptions()
            if self.threads:
                opts.intra_op_num_threads = self.threads
                opts.inter_op_num_threads = 1
            self._session = local_cls(self.model, opts)
            return self._session

    def segment(self, image, *, face=None) -> np.ndarray:
        """Float32 matte (H, W) in [0, 1], 1 = person. ``face`` is ignored."""
        from PIL import Image

        img = check_image(image)
        session = self._load()
        masks = session.predict(Image.fromarray(img))
        if not masks:
            return np.zeros(img.shape[:2], np.float32)
        stack = [np.asarray(m.convert("L"), dtype=np.float32) / 255.0 for m in masks]
        matte = finish_matte(np.max(np.stack(stack), axis=0), img.shape[:2])
        return clean_matte(matte) if self.clean else matte
