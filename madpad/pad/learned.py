"""Learned T-shirt PAD scorer: logistic regression over the spatial features.

The features are :data:`madpad.pad.spatial.FEATURE_NAMES` (the same ones the rules use, plus the
rule score). Missing values (NaN: e.g. no shoulders visible) are replaced by the training median
(or 0 when a feature was never defined in training); features are standardised. The fitted model
is stored **without pickle**: an ``.npz`` of plain float arrays plus a JSON metadata string, so
loading a model file cannot execute code.

Scores are the predicted attack probability: **higher = more likely attack**; classify attack when
``score >= threshold``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from madpad.errors import UsageError
from madpad.pad.spatial import FEATURE_NAMES

FORMAT = "madpad.pad.learned/logistic/v1"


@dataclass
class LearnedScorer:
    """A fitted logistic-regression scorer (see :func:`fit_scorer`)."""

    feature_names: tuple[str, ...]
    fill: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    meta: dict = field(default_factory=dict)

    def _prep(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.shape[1] != len(self.feature_names):
            raise ValueError(f"X has {X.shape[1]} features, but the scorer expects {len(self.feature_names)} "
                             f"({list(self.feature_names)})")
        X = np.where(np.isfinite(X), X, self.fill[None, :])
        return (X - self.mean) / self.scale

    def decision_function(self, X) -> np.ndarray:
        return self._prep(X) @ self.coef + self.intercept

    def score(self, X) -> np.ndarray:
        """Attack probability per row, float64 (n,); higher = attack."""
        z = self.decision_function(X)
        return 1.0 / (1.0 + np.exp(-z))

    def save(self, path) -> Path:
        from madpad.io import atomic_path

        p = Path(path)
        meta = {"format": FORMAT, "feature_names": list(self.feature_names), **self.meta}
        with atomic_path(p) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, fill=self.fill, mean=self.mean, scale=self.scale, coef=self.coef,
                     intercept=np.array([self.intercept]), meta=np.array(json.dumps(meta)))
        return p

    @classmethod
    def load(cls, path) -> LearnedScorer:
        import zipfile

        p = Path(path)
        if not p.is_file():
            raise UsageError(f"scorer model file not found: {p}")
        try:
            with np.load(p, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                arrays = {k: np.asarray(z[k], dtype=np.float64) for k in ("fill", "mean", "scale", "coef", "intercept")}
        except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # truncated/corrupt file
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"{p}: not a madpad T-shirt scorer file, or truncated/corrupt ({msg})") from None
        if meta.get("format") != FORMAT:
            raise UsageError(f"{p}: unsupported scorer format {meta.get('format')!r}; expected {FORMAT!r}")
        names = tuple(meta.pop("feature_names"))
        if names != FEATURE_NAMES:
            raise UsageError(f"{p}: scorer was trained on features {list(names)}; this madpad computes "
                             f"{list(FEATURE_NAMES)}; retrain it")
        meta.pop("format", None)
        return cls(feature_names=names, fill=arrays["fill"], mean=arrays["mean"], scale=arrays["scale"],
                   coef=arrays["coef"], intercept=float(arrays["intercept"][0]), meta=meta)


def fit_scorer(X, y, *, C: float = 1.0, class_weight: str | None = "balanced", seed: int = 0) -> LearnedScorer:
    """Fit the scorer on features ``X`` (n, len(FEATURE_NAMES)) and labels ``y`` (1 = attack, 0 = bona fide)."""
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(int).reshape(-1)
    if X.ndim != 2 or X.shape[1] != len(FEATURE_NAMES):
        raise ValueError(f"X must have shape (n, {len(FEATURE_NAMES)}); got {X.shape}")
    if len(X) != len(y):
        raise ValueError(f"Found inconsistent numbers of samples: X {len(X)}, y {len(y)}")
    if set(np.unique(y)) != {0, 1}:
        raise ValueError(f"training needs both bona fide (0) and attack (1) rows; got labels {sorted(set(y.tolist()))}")
    fill = np.array([np.nanmedian(c) if np.isfinite(c).any() else 0.0 for c in X.T])
    Xf = np.where(np.isfinite(X), X, fill[None, :])
    mean = Xf.mean(axis=0)
    scale = Xf.std(axis=0)
    scale[scale < 1e-12] = 1.0
    clf = LogisticRegression(C=C, class_weight=class_weight, max_iter=2000, random_state=seed)
    clf.fit((Xf - mean) / scale, y)
    return LearnedScorer(feature_names=FEATURE_NAMES, fill=fill, mean=mean, scale=scale,
                         coef=clf.coef_.reshape(-1).astype(np.float64), intercept=float(clf.intercept_[0]),
                         meta={"C": C, "class_weight": class_weight, "n_train": len(y),
                               "n_attack": int(y.sum()), "n_bona_fide": int((y == 0).sum())})
