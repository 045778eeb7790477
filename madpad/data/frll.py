"""Image manifests for the FRLL folder layouts (built from the files, never hand-written).

* :func:`frll_images` - Face Research Lab London Set as laid out in the shared data folder and
  in the bundled sample: ``neutral/NNN_03.jpg`` (frontal, neutral; capture ``enrolment``),
  ``smiling/NNN_08.jpg`` (frontal, smiling, same session; capture ``probe``) and
  ``subjects.csv`` (subject, age, gender, ethnicity -> extra columns).
* :func:`frll_canada_images` - "Young Adult White Faces" (``NNNf.jpg`` / ``NNNm.jpg``, one
  portrait per subject; capture ``portrait``). Subject ids keep the gender letter (``003f``)
  so they never collide with FRLL subject ``003``.

Attribution (CC BY 4.0): see ``madpad/data/ATTRIBUTION.md``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from madpad.data.manifest import BONA_FIDE, ImageRecord, Manifest, read_table
from madpad.errors import ManifestError

_FRLL_NAME = re.compile(r"^(\d+)_(\d\d)\.jpg$", re.IGNORECASE)
_CANADA_NAME = re.compile(r"^(\d+)([fm])\.jpg$", re.IGNORECASE)
FRLL_CAPTURES = {"neutral": ("03", "enrolment"), "smiling": ("08", "probe")}

_CC_BY = "Licensed under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)."
FRLL_CREDIT = ("Face Research Lab London Set. Lisa DeBruine and Benedict Jones (2017). figshare. "
               f"doi:10.6084/m9.figshare.5047666.v5. {_CC_BY}")
FRLL_CANADA_CREDIT = ("Young Adult White Faces with Manipulated Versions. Lisa DeBruine and Benedict Jones (2017). "
                      f"figshare. doi:10.6084/m9.figshare.4220517.v1. {_CC_BY}")


def dataset_credits(paths) -> list[str]:
    """The credit lines of the CC BY data sets that image ``paths`` come from, recognised by folder
    name: a folder whose name contains ``canada`` (``frll_canada``) -> :data:`FRLL_CANADA_CREDIT`;
    any other folder whose name contains ``frll`` -> :data:`FRLL_CREDIT`. In that order, each once;
    ``[]`` when none is recognised."""
    canada = frll = False
    for p in paths:
        parts = [q.lower() for q in Path(p).parts]
        canada |= any("canada" in q for q in parts)
        frll |= any("frll" in q and "canada" not in q for q in parts)
    return [c for c, hit in ((FRLL_CANADA_CREDIT, canada), (FRLL_CREDIT, frll)) if hit]


def _subject_table(root: Path) -> dict:
    p = root / "subjects.csv"
    if not p.is_file():
        return {}
    table = read_table(p, fmt="csv")
    if table.rows and "subject" not in table.columns:
        raise ManifestError("missing required column 'subject'", path=p, row=1, field="subject")
    return {r["subject"]: {k: v for k, v in r.items() if k != "subject"} for r in table.rows}


def frll_images(root: str | os.PathLike, *, source: str = "frll") -> Manifest:
    """Image manifest of an FRLL folder (``neutral/``, ``smiling/``, optional ``subjects.csv``).

    Rows are sorted by subject then capture (neutral first); ids are the file stems
    (``001_03``); paths are relative to ``root``; extra columns: ``expression`` and the
    columns of ``subjects.csv`` (age, gender, ethnicity).
    """
    root_p = Path(root)
    if not root_p.is_dir():
        raise ManifestError(f"FRLL folder not found: {root_p}")
    meta = _subject_table(root_p)
    rows = []
    for expression, (code, capture) in FRLL_CAPTURES.items():
        folder = root_p / expression
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            m = _FRLL_NAME.match(f.name)
            if not m or m.group(2) != code:
                continue
            subject = m.group(1).zfill(3)
            extra = {"expression": expression, **meta.get(subject, {})}
            rows.append(ImageRecord(id=f.stem, path=f.resolve(), subject=subject, label=BONA_FIDE, capture=capture,
                                    source=source, extra=extra, rel={"path": f"{expression}/{f.name}"}))
    if not rows:
        raise ManifestError(f"no FRLL images found under {root_p} (expected neutral/NNN_03.jpg, smiling/NNN_08.jpg)")
    order = {"enrolment": 0, "probe": 1}
    rows.sort(key=lambda r: (r.subject, order[r.capture]))
    cols = ["expression"] + [c for c in (next(iter(meta.values())) if meta else {})]
    return Manifest(rows, root=root_p.resolve(), kind="images", extra_columns=cols)


def frll_canada_images(root: str | os.PathLike, *, source: str = "frll_canada") -> Manifest:
    """Image manifest of the "Young Adult White Faces" folder (``NNNf.jpg``/``NNNm.jpg``)."""
    root_p = Path(root)
    if not root_p.is_dir():
        raise ManifestError(f"folder not found: {root_p}")
    rows = []
    for f in sorted(root_p.iterdir()):
        m = _CANADA_NAME.match(f.name)
        if not m:
            continue
        gender = {"f": "female", "m": "male"}[m.group(2).lower()]
        rows.append(ImageRecord(id=f.stem, path=f.resolve(), subject=f.stem.lower(), label=BONA_FIDE,
                                capture="portrait", source=source, extra={"gender": gender}, rel={"path": f.name}))
    if not rows:
        raise ManifestError(f"no images named NNNf.jpg / NNNm.jpg under {root_p}")
    return Manifest(rows, root=root_p.resolve(), kind="images", extra_columns=["gender"])
