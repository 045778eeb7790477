"""Dataset manifests (CSV/JSONL), boundary validation and subject-disjoint splits.

Format reference: ``data_manifests/README.md`` (and ``docs/manifests.md``).

>>> from madpad.data import load_images, split_by_subject          # doctest: +SKIP
>>> images = load_images("data_manifests/frll_images.csv", root="/data/frll")  # doctest: +SKIP
>>> splits = split_by_subject(images.subjects(), fractions=(0.6, 0.2, 0.2), seed=0)  # doctest: +SKIP
"""

from madpad.data.manifest import (
    ATTACK,
    BONA_FIDE,
    IMAGE_COLUMNS,
    LABELS,
    MORPH_COLUMNS,
    PAIR_COLUMNS,
    ImageRecord,
    Manifest,
    MorphRecord,
    PairRecord,
    Table,
    load_images,
    load_morphs,
    load_pairs,
    read_table,
    relative_to_root,
    with_rel,
    write_images,
    write_morphs,
    write_pairs,
    write_table,
)
from madpad.data.split import (
    SplitAssignment,
    SubjectLeakageError,
    assign_by_subject,
    check_disjoint,
    split_by_subject,
    split_manifest,
)
from madpad.data.subjects import SUBJECT_SEP, record_subjects, split_subjects
from madpad.data.columnar import ColumnarTable, read_columns  # large score files (polars)

__all__ = [
    "ATTACK",
    "BONA_FIDE",
    "IMAGE_COLUMNS",
    "LABELS",
    "MORPH_COLUMNS",
    "PAIR_COLUMNS",
    "SUBJECT_SEP",
    "ColumnarTable",
    "ImageRecord",
    "Manifest",
    "MorphRecord",
    "PairRecord",
    "SplitAssignment",
    "SubjectLeakageError",
    "Table",
    "assign_by_subject",
    "check_disjoint",
    "load_images",
    "load_morphs",
    "load_pairs",
    "read_columns",
    "read_table",
    "record_subjects",
    "relative_to_root",
    "split_by_subject",
    "split_manifest",
    "split_subjects",
    "with_rel",
    "write_images",
    "write_morphs",
    "write_pairs",
    "write_table",
]
