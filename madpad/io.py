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
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from madpad.errors import ImageReadError, ManifestError, MissingDependencyError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


# --------------------------------------------------------------------------- images
def read_image(path: str | os.PathLike, *, max_side: int | None = None) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3). EXIF orientation is applied.

    16-bit data (greyscale ``I;16``/``I`` PNG and TIFF, 16-bit RGB) is scaled to 8 bits
    (``round(v / 257)``), not clipped; 32-bit float images in [0, 1] are scaled by 255.
    ``max_side``: when given, the image is shrunk (area interpolation, and the decoder's own
    reduction for JPEG) so its longer side is at most ``max_side`` pixels, which bounds the
    memory of everything done with it afterwards. Pillow's decompression-bomb limit applies.

    Raises :class:`ImageReadError` naming the file when it is missing or undecodable.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"{p}: image file not found")
    try:
        with Image.open(p) as im:
            if max_side and im.format == "JPEG" and max(im.size) > 2 * int(max_side):
                im.draft("RGB", (int(max_side), int(max_side)))  # decoder-side reduction (power of 2)
            im = ImageOps.exif_transpose(im)
            if max_side and max(im.size) > int(max_side):
                f = float(max_side) / float(max(im.size))
                im = im.resize((max(1, round(im.size[0] * f)), max(1, round(im.size[1] * f))),
                               Image.Resampling.BOX if im.mode in ("I;16", "I;16B", "I;16L", "I", "F")
                               else Image.Resampling.LANCZOS, reducing_gap=3.0)
            arr = _pil_to_rgb_uint8(im)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{p}: refused as a possible decompression bomb ({exc})".replace("\n", " ")) from exc
    except (UnidentifiedImageError, OSError, ValueError, ImportError, SyntaxError, EOFError) as exc:
        # ImportError: some libraries (ultralytics) patch Image.open and try to import extra codecs
        raise ImageReadError(f"{p}: cannot decode image ({type(exc).__name__}: {exc})".replace("\n", " ")) from exc
    return np.ascontiguousarray(arr)


def _pil_to_rgb_uint8(im) -> np.ndarray:
    """A Pillow image of any mode as RGB uint8; high-bit-depth greyscale is scaled, not clipped."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        a = np.asarray(im).astype(np.float64) / 257.0
    elif im.mode == "I":
        a = np.asarray(im).astype(np.float64)
        # 16-bit PNG/TIFF greyscale decoded as 32-bit integers: values up to 65535
        a = a / 257.0 if a.size and a.max() > 255 else a
    elif im.mode == "F":
        a = np.asarray(im).astype(np.float64)
        a = a * 255.0 if a.size and np.nanmax(a) <= 1.0 else a
    else:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    g = np.clip(np.rint(np.nan_to_num(a)), 0, 255).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


def as_rgb_uint8(image: Any, *, name: str = "image") -> np.ndarray:
    """Validate/convert an in-memory image to RGB uint8 (H, W, 3); accepts paths too.

    uint16 arrays are 16-bit data and are scaled by 1/257; float arrays with values in [0, 1]
    are scaled by 255; other values are clipped to [0, 255].
    """
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
        elif arr.dtype == np.uint16:
            arr = arr.astype(np.float64) / 257.0  # 16-bit data: scale, do not clip to white
        arr = np.clip(np.rint(np.nan_to_num(arr.astype(np.float64))), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def luminance(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma (0..255, float32) of an RGB uint8 image."""
    img = np.asarray(image, dtype=np.float32)
    return 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]


def resize_by(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` resized by ``factor`` (area interpolation; each side rounded, at least 1 pixel)."""
    import cv2

    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)


def downscale(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Shrink ``image`` (area interpolation) so its longer side is at most ``max_side``.

    Returns ``(image, factor)`` with ``factor = max_side / longer side`` (<= 1): coordinates
    found on the small image divided by ``factor`` are those of the original. Images already
    small enough, and ``max_side`` None or 0, come back unchanged with factor 1.0.
    """
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= int(max_side):
        return image, 1.0
    f = float(max_side) / float(max(h, w))
    return np.ascontiguousarray(resize_by(image, f)), f


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
        test_kill_point(f"atomic.replace{p.suffix}")  # test-only: a kill -9 between writing and renaming
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


# --------------------------------------------------------------------------- stale temporaries
#: the names :func:`atomic_path` gives its temporary files: ``.NAME.XXXXXXXX.tmp.SUFFIX``
#: (``XXXXXXXX``: tempfile.mkstemp's 8 random characters)
TEMP_NAME_PATTERN = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")


def is_madpad_temporary(path: str | os.PathLike) -> bool:
    """True when ``path``'s name is one :func:`atomic_path` gives its temporary files."""
    return bool(TEMP_NAME_PATTERN.match(Path(path).name))


def remove_stale_temporaries(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """Remove the temporary files an interrupted (e.g. ``kill -9``) atomic write left in
    ``folder`` (and its sub-folders with ``recursive``): only regular files whose name matches
    :data:`TEMP_NAME_PATTERN`. Call it at the start of a batch job that owns ``folder`` (one job
    per output folder at a time). Returns the removed paths."""
    root = Path(folder)
    if not root.is_dir():
        return []
    removed = []
    for p in sorted(root.rglob(".*.tmp*") if recursive else root.glob(".*.tmp*")):
        if p.is_file() and not p.is_symlink() and is_madpad_temporary(p):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


_KILL_COUNTS: dict = {}


def test_kill_point(event: str) -> None:
    """Test-only fault injection (used by ``tests/test_fault_injection.py``; inert otherwise).

    With the environment variable ``MADPAD_TEST_KILL_AT=EVENT:N`` the process sends itself
    SIGKILL the N-th time it reaches ``test_kill_point(EVENT)`` - a ``kill -9`` at a
    well-defined point, with no chance to clean up. Events: ``atomic.replace.SUFFIX`` (an
    atomic write of a ``.SUFFIX`` file: its temporary file is complete, not yet renamed),
    ``generate.item`` (after a morph and the manifest are written), ``pipeline.item`` (after a
    ``ctx.map`` result is cached).
    """
    spec = os.environ.get("MADPAD_TEST_KILL_AT", "")
    if not spec:
        return
    name, _, n = spec.rpartition(":")
    if name != event:
        return
    _KILL_COUNTS[event] = _KILL_COUNTS.get(event, 0) + 1
    if n.isdigit() and _KILL_COUNTS[event] == int(n):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


test_kill_point.__test__ = False  # not a pytest test despite its name


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
