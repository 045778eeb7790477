"""Images, atomic file writes, content hashes, safe paths and optional imports.

Conventions used everywhere in madpad:

* an image in memory is a ``numpy.ndarray`` of shape (H, W, 3), dtype uint8, **RGB**
  (OpenCV's BGR appears only inside functions that call OpenCV, never at an interface);
* masks/mattes are float32 (H, W) in [0, 1];
* every file a batch job produces is written atomically (temporary file in the same
  folder, then ``os.replace``), so an interrupted run never leaves a truncated output.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io as _io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from madpad.errors import ImageReadError, ManifestError, MissingDependencyError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


# --------------------------------------------------------------------------- images
def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3). EXIF orientation is applied.

    Raises :class:`ImageReadError` naming the file when it is missing or undecodable.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"{p}: image file not found")
    try:
        with Image.open(p) as im:
            im = ImageOps.exif_transpose(im)
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, ImportError, Image.DecompressionBombError) as exc:
        # ImportError: some libraries (ultralytics) patch Image.open and try to import extra codecs
        raise ImageReadError(f"{p}: cannot decode image ({type(exc).__name__}: {exc})") from exc
    return np.ascontiguousarray(arr)


def as_rgb_uint8(image: Any, *, name: str = "image") -> np.ndarray:
    """Validate/convert an in-memory image to RGB uint8 (H, W, 3); accepts paths too."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"{name} must have shape (H, W, 3) RGB; got shape {arr.shape}")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def downscale(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Shrink ``image`` (area interpolation) so its longer side is at most ``max_side``.

    Returns ``(image, factor)`` with ``factor = max_side / longer side`` (<= 1): coordinates
    found on the small image divided by ``factor`` are those of the original. Images already
    small enough, and ``max_side`` None or 0, come back unchanged with factor 1.0.
    """
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= int(max_side):
        return image, 1.0
    import cv2

    f = float(max_side) / float(max(h, w))
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small), f


def encode_image(image: np.ndarray, suffix: str = ".png", *, quality: int = 95) -> bytes:
    """Encode an RGB uint8 image to bytes in the format given by ``suffix``."""
    from PIL import Image

    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP",
           ".tif": "TIFF", ".tiff": "TIFF"}.get(suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported image suffix {suffix!r}; use one of {IMAGE_SUFFIXES}")
    buf = _io.BytesIO()
    im = Image.fromarray(as_rgb_uint8(image))
    kwargs = {"quality": int(quality)} if fmt in ("JPEG", "WEBP") else {}
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def write_image(path: str | os.PathLike, image: np.ndarray, *, quality: int = 95) -> Path:
    """Write an RGB uint8 image atomically; the format follows the file suffix."""
    p = Path(path)
    atomic_write_bytes(p, encode_image(image, p.suffix or ".png", quality=quality))
    return p


# --------------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp" + p.suffix, dir=p.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp makes 0600; published files follow the umask
    try:
        yield tmp_path
        os.replace(tmp_path, p)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# --------------------------------------------------------------------------- hashing
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def array_sha256(arr: np.ndarray) -> str:
    """Content hash of an array (shape and dtype included)."""
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256()
    h.update(str(a.shape).encode())
    h.update(str(a.dtype).encode())
    h.update(a.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- safe paths
def resolve_under_root(root: str | os.PathLike, relative: str, *, manifest=None, row=None, field=None) -> Path:
    """Join ``relative`` to ``root`` and refuse results that escape ``root``.

    Absolute paths and ``..`` components that leave the root raise :class:`ManifestError`
    naming the manifest file, row and field.
    """
    rel = str(relative).strip()
    if not rel:
        raise ManifestError("empty path", path=manifest, row=row, field=field)
    root_p = Path(root).resolve()
    cand = Path(rel)
    if cand.is_absolute():
        raise ManifestError(f"path {rel!r} is absolute; manifest paths must be relative to the dataset root",
                            path=manifest, row=row, field=field)
    full = (root_p / cand).resolve()
    try:
        full.relative_to(root_p)
    except ValueError:
        raise ManifestError(f"path {rel!r} escapes the dataset root {str(root_p)!r}",
                            path=manifest, row=row, field=field) from None
    return full


def resolve_relative_to(base_dir: str | os.PathLike, path: str) -> Path:
    """CLI inputs: absolute paths stay, relative ones are taken relative to ``base_dir``
    (for example the folder of the CSV that names them)."""
    p = Path(str(path).strip())
    return p if p.is_absolute() else (Path(base_dir) / p)


# --------------------------------------------------------------------------- optional deps
def optional_import(module: str, *, extra: str, purpose: str = ""):
    """Import ``module`` or raise :class:`MissingDependencyError` naming the pip extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" (needed for {purpose})" if purpose else ""
        raise MissingDependencyError(
            f"{module} is not installed{what}; install it with: pip install 'madpad[{extra}]'"
        ) from exc


def env_path(var: str) -> Path | None:
    """Path from environment variable ``var`` or None when unset/empty."""
    v = os.environ.get(var, "").strip()
    return Path(v).expanduser() if v else None
