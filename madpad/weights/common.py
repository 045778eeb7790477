"""Shared pieces of the weight-file checks: the report row, file hashing, header-only readers.

Nothing here unpickles: ``.safetensors`` headers are parsed as JSON (the tensors are not read),
torch files go through ``torch.load(weights_only=True)`` (memory-mapped when the file allows).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from madpad.errors import UsageError
from madpad.io import file_sha256, optional_import

#: Licence notes shown in the report, by kind of file.
LICENCES = {
    "faceid": "non-commercial research only (IP-Adapter FaceID model card: trained on insightface identities)",
    "insightface": "insightface models: non-commercial research only",
    "sd15": "CreativeML Open RAIL-M (use restrictions; see the model card)",
    "sdxl": "CreativeML Open RAIL++-M (SDXL base; fine-tunes: see their model card)",
    "yolo": "Ultralytics weights: AGPL-3.0; third-party weights: check their source",
    "rembg": "per model: u2net/IS-Net Apache-2.0, BiRefNet MIT, BRIA RMBG non-commercial",
    "open_clip": "per checkpoint (OpenAI CLIP: MIT; LAION OpenCLIP: MIT); check its model card",
    "timm": "per checkpoint (timm model card)",
    "onnx": "unknown: check where the file came from",
}
#: insightface recognition models by file stem (buffalo_l, buffalo_s, antelopev2 packs).
INSIGHTFACE_STEMS = ("w600k_r50", "w600k_mbf", "glintr100")


@dataclass
class WeightCheck:
    """One row of the report: a file (or folder), what it is, and whether it fits."""

    path: str
    kind: str = "unknown"
    summary: str = ""
    dtypes: str = ""
    size_bytes: int = 0
    sha256: str | None = None
    licence: str = ""
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def verdict(self) -> str:
        return "ok" if self.ok else f"REFUSED: {self.problems[0]}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "summary": self.summary, "dtypes": self.dtypes,
                "size_bytes": self.size_bytes, "sha256": self.sha256, "licence": self.licence,
                "ok": self.ok, "problems": list(self.problems), "notes": list(self.notes)}


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def new_row(path: Path, *, hash_files: bool) -> WeightCheck:
    row = WeightCheck(path=str(path))
    if path.is_file():
        row.size_bytes = path.stat().st_size
        if hash_files:
            row.sha256 = file_sha256(path)
    return row


# --------------------------------------------------------------------------- safetensors, header only
SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
                      "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
                      "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}


@dataclass(frozen=True)
class TensorInfo:
    """Shape and dtype of one stored tensor (what the checks need; the data is never read)."""

    shape: tuple
    dtype: str

    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= int(d)
        return n


def read_safetensors_header(path: Path) -> dict[str, TensorInfo]:
    """Tensor name -> :class:`TensorInfo` from a ``.safetensors`` header; checks that the data
    offsets fit the file (a truncated download is reported, not loaded)."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) != 8:
                raise ValueError("shorter than a safetensors header")
            (n,) = struct.unpack("<Q", head)
            if n > min(size - 8, 100 * 2**20):
                raise ValueError(f"header length {n} does not fit the file ({size} bytes)")
            header = json.loads(fh.read(n).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a readable .safetensors file ({exc})") from None
    out: dict[str, TensorInfo] = {}
    end = 0
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        try:
            shape = tuple(int(d) for d in meta["shape"])
            dtype = SAFETENSORS_DTYPES.get(meta["dtype"], meta["dtype"].lower())
            end = max(end, int(meta["data_offsets"][1]))
        except (KeyError, TypeError, ValueError, IndexError):
            raise UsageError(f"{path}: malformed safetensors header entry {name!r}") from None
        out[name] = TensorInfo(shape, dtype)
    if 8 + n + end > size:
        raise UsageError(f"{path}: truncated: the header describes {8 + n + end} bytes but the file has {size} "
                         f"(download it again)")
    return out


def meta_tensors(infos: dict[str, TensorInfo]) -> dict[str, Any]:
    """Meta-device tensors with the stored shapes and dtypes (for shape-only code paths)."""
    torch = optional_import("torch", extra="torch", purpose="checking weight files")
    out = {}
    for name, info in infos.items():
        dtype = getattr(torch, info.dtype, None)
        out[name] = torch.empty(info.shape, dtype=dtype if isinstance(dtype, torch.dtype) else torch.float32,
                                device="meta")
    return out


# --------------------------------------------------------------------------- torch files, weights_only
def load_weights_only(path: Path):
    """``torch.load(path, weights_only=True)`` (memory-mapped for zip checkpoints, so a multi-GB file
    is not read into memory). A file that needs arbitrary unpickling raises :class:`UsageError`."""
    torch = optional_import("torch", extra="torch", purpose="checking torch weight files")
    import pickle

    try:
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc) and "zip" not in str(exc).lower():
                raise
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        names = _unsafe_globals(path)
        what = f" (it references {', '.join(names[:4])})" if names else ""
        raise UsageError(f"{path}: refused: reading it needs arbitrary unpickling{what}; nothing was unpickled "
                         f"({first[:160]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable torch file ({' '.join(str(exc).split())[:200]})") from None


def _unsafe_globals(path: Path) -> list[str]:
    from madpad.face.yolo_weights import checkpoint_globals, unsafe_for_weights_only

    try:
        return unsafe_for_weights_only(checkpoint_globals(path))
    except UsageError:
        return []


def flatten_tensors(obj, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": tensor}}`` -> ``{"a.b": tensor}`` (tensors only)."""
    torch = optional_import("torch", extra="torch")
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}{k}"
            if isinstance(v, torch.Tensor):
                out[key] = v
            elif isinstance(v, dict):
                out.update(flatten_tensors(v, key + "."))
    return out


def dtype_summary(tensors) -> str:
    """``"float16 x 412, float32 x 3"`` from tensors or :class:`TensorInfo` values."""
    from collections import Counter

    c = Counter(str(t.dtype).replace("torch.", "") for t in tensors)
    return ", ".join(f"{k} x {v}" for k, v in c.most_common())


def param_count(tensors) -> int:
    total = 0
    for t in tensors:
        n = 1
        for d in t.shape:
            n *= int(d)
        total += n
    return total


def millions(n: int) -> str:
    return f"{n / 1e6:.1f}M params" if n >= 1e5 else f"{n} params"


__all__ = ["LICENCES", "INSIGHTFACE_STEMS", "WeightCheck", "TensorInfo", "human_size", "new_row",
           "read_safetensors_header", "meta_tensors", "load_weights_only", "flatten_tensors", "dtype_summary",
           "param_count", "millions"]
