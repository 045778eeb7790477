"""The per-item result cache of a stage (``ctx.map``): results stored as ``.npz`` files holding
JSON plus numpy arrays, loaded with ``allow_pickle=False``, so a shared work folder cannot run
code. A result that cannot be represented is simply not cached. Used by
:mod:`madpad.pipeline.runner`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------- per-item cache format
CACHE_SUFFIX = ".npz"
_TAG = "__madpad__"


def encode_cached(obj: Any) -> bytes | None:
    """A ``ctx.map`` result as the bytes of an ``.npz`` file that loads without pickle: entry
    ``json`` (UTF-8 JSON of the structure) and one entry per numpy array. Dicts with string
    keys, lists, tuples, str, int, float (NaN/inf included), bool, None, Path, numpy scalars and
    numeric/string arrays are kept exactly (:func:`decode_cached` gives an equal value of the
    same types); anything else gives None (not cacheable)."""
    import io

    import numpy as np

    arrays: dict = {}

    def enc(o: Any) -> Any:
        if o is None or isinstance(o, (bool, str)):
            return o
        if isinstance(o, (int, float)) and type(o) in (int, float):
            return o
        if isinstance(o, (np.ndarray, np.generic)):
            a = np.asarray(o)
            if a.dtype.hasobject or a.dtype.kind == "V":
                raise TypeError("object array")
            ref = f"a{len(arrays)}"
            arrays[ref] = a
            return {_TAG: "ndarray" if isinstance(o, np.ndarray) else "scalar", "ref": ref}
        if isinstance(o, Path) and type(o) in (type(Path()),):
            return {_TAG: "path", "value": str(o)}
        if type(o) is tuple:
            return {_TAG: "tuple", "items": [enc(v) for v in o]}
        if type(o) is list:
            return [enc(v) for v in o]
        if type(o) is dict:
            if _TAG in o or not all(isinstance(k, str) for k in o):
                raise TypeError("dict keys")
            return {k: enc(v) for k, v in o.items()}
        raise TypeError(type(o).__name__)

    try:
        doc = json.dumps(enc(obj), allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return None
    buf = io.BytesIO()
    np.savez(buf, json=np.frombuffer(doc.encode("utf-8"), dtype=np.uint8), **arrays)
    return buf.getvalue()


def decode_cached(path: Path) -> Any:
    """The value :func:`encode_cached` stored in ``path``; ValueError when the file is not in
    that format (a pickle, or an npz with object arrays, is refused, never loaded)."""
    import zipfile

    import numpy as np

    try:
        z = np.load(path, allow_pickle=False)  # a pickle raises ValueError here, unread
        if not hasattr(z, "files"):  # a plain .npy array
            raise ValueError(f"{path}: not a madpad cache file")
        with z:
            if "json" not in z.files:
                raise ValueError(f"{path}: not a madpad cache file")
            doc = json.loads(z["json"].tobytes().decode("utf-8"))
            arrays = {k: z[k] for k in z.files if k != "json"}
    except (zipfile.BadZipFile, UnicodeDecodeError, KeyError, EOFError) as exc:
        raise ValueError(f"{path}: not a madpad cache file ({exc})") from None

    def dec(o: Any) -> Any:
        if isinstance(o, list):
            return [dec(v) for v in o]
        if isinstance(o, dict):
            tag = o.get(_TAG)
            if tag is None:
                return {k: dec(v) for k, v in o.items()}
            if tag == "ndarray":
                return arrays[o["ref"]]
            if tag == "scalar":
                return arrays[o["ref"]][()]
            if tag == "path":
                return Path(o["value"])
            if tag == "tuple":
                return tuple(dec(v) for v in o["items"])
            raise ValueError(f"{path}: unknown tag {tag!r}")
        return o

    try:
        return dec(doc)
    except KeyError as exc:
        raise ValueError(f"{path}: missing array {exc}") from None
