"""Subject ids of manifest rows: the ``;``-joined subject field and the subjects a row is made of.

Both the manifest loaders (:mod:`madpad.data.manifest`) and the subject-disjoint splits
(:mod:`madpad.data.split`) use these; they import nothing else from ``madpad.data``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SUBJECT_SEP = ";"


def split_subjects(value: Any) -> tuple[str, ...]:
    """``"001;002"`` -> ``("001", "002")``; lists/tuples (JSONL) are accepted too."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        parts = [str(v).strip() for v in value]
    else:
        parts = [p.strip() for p in str(value).split(SUBJECT_SEP)]
    return tuple(p for p in parts if p)


def record_subjects(record: Any) -> tuple[str, ...]:
    """Subject ids a manifest row is made from: ``subjects`` of a pair, ``subject_a``/``subject_b``
    of a morph, the ``;``-joined ``subject`` of an image; a plain string is one subject id."""
    if isinstance(record, str):
        return split_subjects(record)
    if isinstance(record, Mapping):
        if "subjects" in record:
            return split_subjects(record["subjects"])
        if "subject_a" in record:
            return tuple(s for s in (str(record["subject_a"]), str(record["subject_b"])) if s)
        return split_subjects(record.get("subject", ""))
    subs = getattr(record, "subjects", None)
    if subs is not None:
        return tuple(subs) if not isinstance(subs, str) else split_subjects(subs)
    return split_subjects(getattr(record, "subject", ""))
