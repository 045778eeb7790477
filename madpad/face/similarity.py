"""Cosine similarity of face embeddings (FR comparison score: higher = more similar)."""

from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray, *, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32). All-zero rows stay zero; NaN rows stay NaN."""
    a = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(a, axis=axis, keepdims=True)
    return (a / np.maximum(n, eps)).astype(np.float32)


def _as_2d(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name} must be a vector (D,) or a matrix (N, D); got shape {a.shape}")
    return a


def cosine_similarity(a, b) -> np.ndarray | float:
    """Row-wise cosine similarity of ``a`` and ``b`` (both (N, D), or (D,) against (N, D)).

    Vectors are normalised here, so unnormalised inputs are fine. Returns (N,) float64, or
    a float when both inputs are vectors. Rows with NaN give NaN (failed embeddings).
    """
    A, B = _as_2d(a, "a"), _as_2d(b, "b")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"embedding dimensions differ: a has {A.shape[1]}, b has {B.shape[1]}")
    if A.shape[0] != B.shape[0] and 1 not in (A.shape[0], B.shape[0]):
        raise ValueError(f"a and b must have the same number of rows (or one row); got {A.shape[0]} and {B.shape[0]}")
    An = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)
    Bn = B / np.maximum(np.linalg.norm(B, axis=1, keepdims=True), 1e-12)
    s = np.clip(np.sum(An * Bn, axis=1), -1.0, 1.0)
    if np.ndim(a) == 1 and np.ndim(b) == 1:
        return float(s[0])
    return s


def similarity_matrix(A, B=None) -> np.ndarray:
    """(N, M) cosine similarities between the rows of ``A`` (N, D) and ``B`` (M, D)
    (``B`` defaults to ``A``). NaN rows give NaN rows/columns."""
    A2 = _as_2d(A, "A")
    B2 = A2 if B is None else _as_2d(B, "B")
    if A2.shape[1] != B2.shape[1]:
        raise ValueError(f"embedding dimensions differ: A has {A2.shape[1]}, B has {B2.shape[1]}")
    An = A2 / np.maximum(np.linalg.norm(A2, axis=1, keepdims=True), 1e-12)
    Bn = B2 / np.maximum(np.linalg.norm(B2, axis=1, keepdims=True), 1e-12)
    return np.clip(An @ Bn.T, -1.0, 1.0)
