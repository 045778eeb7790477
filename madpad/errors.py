"""Exception types shared by every layer.

Messages follow one shape: which input, what was expected, what was received and,
where possible, how to fix it.
"""

from __future__ import annotations


class MadpadError(Exception):
    """Base class of madpad's own errors."""


class UsageError(MadpadError, ValueError):
    """Bad command-line or configuration input. CLIs exit with code 2."""


class UnknownComponentError(MadpadError, KeyError):
    """A registry was asked for a name it does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ManifestError(MadpadError, ValueError):
    """A manifest (CSV/JSONL) or score file is malformed.

    The message names the file, the row (1-based data row, header excluded, as a
    spreadsheet user counts it when the header is row 1: ``row`` is the line number)
    and the field.
    """

    def __init__(self, message: str, *, path=None, row: int | None = None, field: str | None = None):
        self.path = None if path is None else str(path)
        self.row = row
        self.field = field
        where = []
        if self.path is not None:
            where.append(self.path)
        if row is not None:
            where.append(f"row {row}")
        prefix = " ".join(where)
        if field is not None:
            message = f"field '{field}': {message}"
        super().__init__(f"{prefix}: {message}" if prefix else message)


class MissingDependencyError(MadpadError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class CheckpointError(MadpadError, ValueError):
    """A saved model (checkpoint, weights, detector JSON) is truncated, corrupt or not the
    expected kind; the message names the file. CLIs exit with code 2."""


class ImageReadError(MadpadError, OSError):
    """An image file could not be read or decoded."""


class FaceNotFoundError(MadpadError):
    """No usable face in an image (per-item failure in batch jobs)."""
