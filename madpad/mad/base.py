"""The detector interface shared by every differential (D-MAD) and single-image (S-MAD) detector:
:class:`MorphDetector` (registry :data:`madpad.mad.MORPH_DETECTORS`).

A *pair* is (suspect image, trusted live capture of the claimed subject). The suspect image
is the one under suspicion (for example the passport photo); the live capture is taken at
the border gate. Every detector has

* keyword-only constructor parameters (the config; no work is done in ``__init__``),
* ``fit(pairs, *, dev=None) -> self`` (trainable detectors; fixed detectors accept it and
  only check the input),
* ``score(pairs) -> np.ndarray`` float64 of shape (n,), **higher = more likely a morph**; a
  threshold ``t`` classifies a pair as an attack when ``score >= t``,
* ``save(directory)`` writing ``detector.json`` plus plain-array files (safetensors / npz
  loaded with ``allow_pickle=False``), and ``load_detector(directory)`` to read it back.

Using a trainable detector before ``fit`` raises :class:`NotFittedError`.

What differs between detectors is declared on the class, not tested by name in the CLIs:
``checkpoint_kind`` (the ``detector`` field of ``detector.json``, how :func:`madpad.mad.load_detector`
finds the class), ``trainable``, ``runtime_options`` (command-line runtime options such as
``--device`` -> the keyword they set when loading), :meth:`MorphDetector.training_defaults` and
:meth:`MorphDetector.runtime_overrides`.
"""

from __future__ import annotations

import abc
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from madpad.errors import MadpadError, ManifestError
from madpad.registry import Component

LABELS = ("bona_fide", "attack")
CHECKPOINT_FORMAT = "madpad-mad-detector"
CHECKPOINT_VERSION = 1


class NotFittedError(MadpadError, ValueError):
    """A trainable detector was asked to score before it was fitted (or loaded)."""


ImageLike = Any  # a path (str / PathLike) or an RGB uint8 array (H, W, 3)


@dataclass
class Pair:
    """One D-MAD pair. ``suspect``/``live`` are paths or RGB uint8 arrays.

    ``label`` is ``"bona_fide"``, ``"attack"`` or ``None`` (unknown, scoring only);
    ``species`` names the attack species (morph method) and is empty for bona fide pairs;
    ``subjects`` lists the subject ids involved (contributors of a morph plus the live
    capture's subject), used for subject-disjoint splits.
    """

    id: str
    suspect: ImageLike
    live: ImageLike
    label: str | None = None
    species: str = ""
    subjects: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    @property
    def y(self) -> int:
        if self.label not in LABELS:
            raise ValueError(f"pair {self.id!r}: label must be one of {LABELS}; got {self.label!r}")
        return int(self.label == "attack")


class MorphDetector(Component, abc.ABC):
    """Interface of the morph detectors (D-MAD and S-MAD; registry :data:`madpad.mad.MORPH_DETECTORS`).

    Keyword-only constructor parameters (the config; no work in ``__init__``);
    ``fit(pairs, *, dev=None) -> self``; ``score(pairs, *, cache=None) -> float64 (n,)``, higher =
    more likely a morph (NaN for a pair without usable features); ``save(directory)`` writes ``detector.json`` (its ``detector`` field is
    :attr:`checkpoint_kind`) plus plain-array files; the classmethod ``load(directory, header=None,
    **overrides)`` reads them back (:func:`madpad.mad.load_detector` picks the class).

    Class-level capabilities:

    * ``checkpoint_kind``: the ``detector`` field written to ``detector.json`` (unique per class;
      several registry names may share a class and so a kind);
    * ``trainable``: whether ``fit`` learns anything;
    * ``runtime_options``: command-line runtime option -> the ``load``/constructor keyword it sets
      (e.g. ``{"device": "device", "batch_size": "eval_batch_size", "progress": "progress"}``).
    """

    checkpoint_kind: ClassVar[str] = ""
    trainable: ClassVar[bool] = True
    runtime_options: ClassVar[dict[str, str]] = {}

    @abc.abstractmethod
    def fit(self, pairs: Sequence[Pair], *, dev: Sequence[Pair] | None = None) -> MorphDetector:
        """Learn from labelled pairs (model selection on ``dev``); returns self."""

    @abc.abstractmethod
    def score(self, pairs: Sequence[Pair], *, cache: Any = None) -> np.ndarray:
        """Morph scores float64 (n,), higher = more likely a morph. ``cache``: an optional
        :class:`madpad.mad.cache.FeatureCache` for per-image features (ignore it if unused)."""

    @abc.abstractmethod
    def save(self, directory: str | os.PathLike) -> Path:
        """Write the checkpoint (``detector.json`` + plain arrays) to ``directory``."""

    @classmethod
    @abc.abstractmethod
    def load(cls, directory: str | os.PathLike, header: dict | None = None, **overrides: Any) -> MorphDetector:
        """Read a checkpoint written by :meth:`save` (``overrides`` replace runtime options)."""

    @classmethod
    def training_defaults(cls, out_dir: str | os.PathLike, seed: int) -> dict:
        """Parameters a training run into ``out_dir`` sets unless the config gives them."""
        return {}

    @classmethod
    def runtime_overrides(cls, **options: Any) -> dict:
        """``load`` keywords for the given runtime options (``device="cuda"``, ``batch_size=64``,
        ``progress=False``): options that are None, or that this class does not take, are left out."""
        return {cls.runtime_options[k]: v for k, v in options.items() if v is not None and k in cls.runtime_options}


def as_pairs(pairs: Iterable[Pair] | Pair) -> list[Pair]:
    """Validate the input of ``fit``/``score``: a sequence of :class:`Pair`."""
    if isinstance(pairs, Pair):
        return [pairs]
    out = list(pairs)
    for i, p in enumerate(out):
        if not isinstance(p, Pair):
            raise TypeError(f"pairs[{i}] must be a madpad.mad.Pair; got {type(p).__name__}")
    return out


def labels_of(pairs: Sequence[Pair], *, where: str = "pairs") -> np.ndarray:
    """0/1 labels (1 = attack) of labelled pairs; both classes must be present for training."""
    missing = [p.id for p in pairs if p.label not in LABELS]
    if missing:
        raise ValueError(f"{where}: {len(missing)} pair(s) have no valid label (bona_fide/attack), "
                         f"e.g. {missing[:5]}")
    y = np.array([p.y for p in pairs], dtype=np.int64)
    if y.size == 0 or y.min() == y.max():
        raise ValueError(f"{where}: training needs both bona_fide and attack pairs; got "
                         f"{int((y == 0).sum())} bona fide and {int((y == 1).sum())} attack")
    return y


def check_is_fitted(detector: Any, attribute: str) -> None:
    if getattr(detector, attribute, None) is None:
        raise NotFittedError(f"This {type(detector).__name__} instance is not fitted yet. Call 'fit' with "
                             f"labelled pairs, or load a trained one with madpad.mad.load_detector(path).")


def image_key(image: ImageLike) -> str:
    """Content hash of an image (file bytes for paths, pixels for arrays): the cache key part
    (the face toolkit's :func:`madpad.face.image_key`)."""
    from madpad.face.cache import image_key as _face_image_key

    return _face_image_key(image)


def load_image(image: ImageLike) -> np.ndarray:
    from madpad.io import as_rgb_uint8

    return as_rgb_uint8(image)


# --------------------------------------------------------------------------- checkpoint header
def write_header(directory: str | os.PathLike, *, detector: str, config: dict, extra: dict | None = None) -> None:
    from madpad.io import atomic_write_json

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    atomic_write_json(d / "detector.json", {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "detector": detector,
        "config": config, **(extra or {}),
    })


def read_header(directory: str | os.PathLike) -> dict:
    d = Path(directory)
    p = d / "detector.json"
    if not p.is_file():
        raise ManifestError(f"not a madpad detector checkpoint: {p} is missing "
                            f"(train one with 'python -m madpad.detect train')", path=d)
    try:
        head = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"invalid JSON ({exc}); the checkpoint is truncated or corrupt", path=p) from None
    if not isinstance(head, dict) or head.get("format") != CHECKPOINT_FORMAT:
        raise ManifestError(f"'format' must be {CHECKPOINT_FORMAT!r}", path=p, field="format")
    if int(head.get("version", 0)) > CHECKPOINT_VERSION:
        raise ManifestError(f"checkpoint version {head.get('version')} is newer than this madpad "
                            f"supports ({CHECKPOINT_VERSION}); upgrade madpad", path=p, field="version")
    return head


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write plain numeric arrays atomically (no object arrays: loading never unpickles)."""
    from madpad.io import atomic_path

    for k, v in arrays.items():
        if np.asarray(v).dtype == object:
            raise TypeError(f"array {k!r} has dtype object; only numeric arrays are stored")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Arrays of an ``.npz`` file (``allow_pickle=False``); a missing, truncated or corrupt file
    raises :class:`~madpad.errors.CheckpointError` naming it."""
    import zipfile

    from madpad.errors import CheckpointError

    if not Path(path).is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({type(exc).__name__}: {msg})") from None
