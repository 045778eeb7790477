"""The bundled sample: 24 FRLL subjects (neutral + smiling, 600x600), shipped in the package.

See ``madpad/sample_data/frll24/ATTRIBUTION.md`` for the CC BY 4.0 attribution and changes.
"""

from __future__ import annotations

from pathlib import Path

FRLL_ATTRIBUTION = (
    "Face Research Lab London Set. Lisa DeBruine and Benedict Jones (2017). figshare. "
    "doi:10.6084/m9.figshare.5047666.v5. CC BY 4.0."
)


def sample_root() -> Path:
    """Folder of the bundled FRLL sample (neutral/, smiling/, landmarks/, subjects.csv)."""
    return Path(__file__).resolve().parents[1] / "sample_data" / "frll24"


def sample_subjects() -> list[dict]:
    """Rows of the sample's subjects.csv (subject, age, gender, ethnicity)."""
    from madpad.data.manifest import read_table

    return read_table(sample_root() / "subjects.csv").rows


def sample_manifest_path() -> Path:
    """The bundled sample's image manifest (``images.csv`` inside the sample folder)."""
    return sample_root() / "images.csv"


def sample_manifest(*, check_files: bool = True):
    """The bundled sample as a validated image manifest rooted at :func:`sample_root`.

    48 bona fide rows: for each of the 24 subjects (ids zero-padded, e.g. ``"001"``) the
    neutral image (capture ``enrolment``) and the smiling image (capture ``probe``); extra
    columns ``expression``, ``age``, ``gender``, ``ethnicity``.
    """
    from madpad.data.manifest import load_images

    return load_images(sample_manifest_path(), root=sample_root(), check_files=check_files)
