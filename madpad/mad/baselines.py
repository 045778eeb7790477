"""Classic differential MAD baselines on face-recognition embeddings (and texture).

* :class:`EmbeddingDistanceDetector` - untrained: ``score = 1 - cosine(suspect, live)`` of FR
  embeddings. A morph resembles the live capture's subject less than a bona fide photo
  does, so the distance is larger. Higher = more likely a morph.
* :class:`EmbeddingClassifierDetector` - trained: a pair feature built from per-image FR
  embeddings (``diff`` = suspect - live, the classic D-MAD feature of Scherhag et al.;
  ``absdiff``, ``prod``, ``cos``, ``suspect``) and optionally texture statistics of the
  aligned faces (``texture`` of the suspect, ``texture_diff`` = suspect - live) and face
  geometry (``shape_absdiff`` = per-coordinate |suspect - live| of the eye-normalised brow,
  nose and eye landmarks, ``shape_dist`` = their RMS distance), then
  standardisation and a scikit-learn classifier (``logreg``, ``linear_svm``, ``rbf_svm``).
  The score is the classifier's decision value: higher = more likely a morph; attack when
  ``score >= threshold``.
* :class:`FusedEmbeddingDetector` - trained: the same pair blocks (``cos``, ``diff``, ...) of
  **several** FR systems concatenated (e.g. dlib, mobileface, hse_faceres) -> one classifier.

Fitted models are stored as plain arrays (``model.npz``, read with ``allow_pickle=False``):
scaler mean/scale, and the linear coefficients, or the RBF support vectors, dual
coefficients, intercept and gamma. Scoring after loading rebuilds the decision function in
numpy, so no pickle (and no scikit-learn object) is involved.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from madpad.errors import UsageError
from madpad.mad.base import (
    MorphDetector,
    Pair,
    as_pairs,
    check_is_fitted,
    labels_of,
    load_npz,
    read_header,
    save_npz,
    write_header,
)
from madpad.mad.cache import FeatureCache
from madpad.mad.features import FaceFeatureExtractor, params_mapping

log = logging.getLogger(__name__)

FEATURE_BLOCKS = ("diff", "absdiff", "prod", "cos", "suspect", "texture", "texture_diff", "shape_absdiff",
                  "shape_dist")
CLASSIFIERS = ("logreg", "linear_svm", "rbf_svm")
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
#: ``C: ensemble``: one classifier per C here, each member's decision z-scored on its own training
#: decisions, the members averaged (no C to choose, so no choice among near-tied dev keys)
ENSEMBLE_C = (0.1, 1.0, 10.0)


@dataclass
class ScoreResult:
    """Scores (float64, NaN where a pair failed) with per-pair ``status`` and ``error``."""

    scores: np.ndarray
    status: list
    error: list


def _pair_status(st_s: str, er_s: str, st_l: str | None, er_l: str | None) -> tuple[str, str]:
    if st_s != "ok":
        return st_s, f"suspect: {er_s}"
    if st_l is not None and st_l != "ok":
        return st_l, f"live: {er_l}"
    return "ok", ""


def check_embedder_files(embedder: str, params: dict | None = None) -> None:
    """Raise now (a one-line :class:`~madpad.errors.MadpadError` naming the file and the option)
    when the FR embedder is one of the ONNX networks of :mod:`madpad.face.fr_onnx` and its model
    file is missing or not the expected one; nothing is loaded."""
    from madpad.face.fr_onnx import ONNX_FR_MODELS

    cls = ONNX_FR_MODELS.get(str(embedder))
    if cls is not None:
        p = dict(params or {})
        cls.model_file(model_path=p.get("model_path"), check_sha256=p.get("check_sha256", True))


class _FaceFeaturePairs(MorphDetector):
    """Shared per-image feature extraction (suspect and live, each image once, cached)."""

    needs_live = True
    runtime_options = {"progress": "progress"}

    def _extractor(self) -> FaceFeatureExtractor:
        if getattr(self, "_fx", None) is None:
            self._fx = FaceFeatureExtractor(embedder=self.embedder, embedder_params=self.embedder_params,
                                            texture=self._uses_texture(), texture_size=self.texture_size,
                                            shape=self._uses_shape())
        return self._fx

    def _uses_texture(self) -> bool:
        return False

    def _uses_shape(self) -> bool:
        return False

    def _image_features(self, pairs: Sequence[Pair], cache: FeatureCache | None):
        fx = self._extractor()
        cache = cache if cache is not None else self.feature_cache
        sus = fx.many([p.suspect for p in pairs], cache=cache, progress=self.progress, desc="suspect images")
        live = (fx.many([p.live for p in pairs], cache=cache, progress=self.progress, desc="live captures")
                if self.needs_live else None)
        status, error = [], []
        for i in range(len(pairs)):
            st, er = _pair_status(sus.status[i], sus.error[i], None if live is None else live.status[i],
                                  None if live is None else live.error[i])
            status.append(st)
            error.append(er)
        return sus.features, (None if live is None else live.features), status, error

    def score(self, pairs: Sequence[Pair], *, cache: FeatureCache | None = None) -> np.ndarray:
        """Scores float64 (n,), higher = more likely a morph; NaN where a face was not found."""
        return self.score_pairs(pairs, cache=cache).scores


class EmbeddingDistanceDetector(_FaceFeaturePairs):
    """Untrained D-MAD: ``1 - cosine(FR(suspect), FR(live))`` (higher = more likely a morph)."""

    name = "embedding_distance"
    checkpoint_kind = "embedding_distance"
    trainable = False

    def __init__(self, *, embedder: str = "dlib", embedder_params: dict | None = None, progress: bool = False,
                 texture_size: int = 160):
        self.embedder = embedder
        self.embedder_params = params_mapping(embedder_params)
        self.progress = progress
        self.texture_size = texture_size
        self.feature_cache = FeatureCache()
        check_embedder_files(self.embedder, self.embedder_params)

    def get_config(self) -> dict:
        return {"embedder": self.embedder, "embedder_params": self.embedder_params}

    def fit(self, pairs: Sequence[Pair], *, dev: Sequence[Pair] | None = None) -> EmbeddingDistanceDetector:
        """Nothing to learn; checks that the pairs are valid and returns self."""
        as_pairs(pairs)
        return self

    def score_pairs(self, pairs: Sequence[Pair], *, cache: FeatureCache | None = None) -> ScoreResult:
        pairs = as_pairs(pairs)
        s, l, status, error = self._image_features(pairs, cache)
        d = self._extractor().embed_dim
        cos = np.sum(s[:, :d].astype(np.float64) * l[:, :d].astype(np.float64), axis=1)
        return ScoreResult(1.0 - cos, status, error)

    def save(self, directory) -> Path:
        write_header(directory, detector=self.checkpoint_kind, config=self.get_config(), extra={
            "score": "1 - cosine similarity of FR embeddings; higher = more likely a morph"})
        return Path(directory)

    @classmethod
    def load(cls, directory, header: dict | None = None, **overrides) -> EmbeddingDistanceDetector:
        head = header or read_header(directory)
        return cls(**{**head["config"], **overrides})


#: pair features computed from the two L2-normalised embeddings alone
EMBEDDING_PAIR_BLOCKS = ("diff", "absdiff", "prod", "cos")


def embedding_pair_block(feature: str, es: np.ndarray, el: np.ndarray) -> np.ndarray:
    """One pair-feature block of suspect (``es``) and live (``el``) embeddings, (n, D) or (n, 1)."""
    if feature == "diff":
        return es - el
    if feature == "absdiff":
        return np.abs(es - el)
    if feature == "prod":
        return es * el
    if feature == "cos":
        return 1.0 - np.sum(es * el, axis=1, keepdims=True)
    raise ValueError(f"not an embedding pair feature: {feature!r}")


def check_classifier_options(features: Any, blocks: Any, *, classifier: str, class_weight: Any, C: Any) -> list[str]:
    """Validate the options shared by the trained FR-embedding detectors; returns the feature list."""
    if not isinstance(features, (str, list, tuple)):
        raise UsageError(f"features must be a non-empty list of {list(blocks)}; got {features!r}")
    feats = [features] if isinstance(features, str) else list(features)
    bad = [f for f in feats if f not in blocks]
    if not feats or bad:
        raise UsageError(f"features must be a non-empty list of {list(blocks)}; got {feats}")
    if classifier not in CLASSIFIERS:
        raise UsageError(f"classifier must be one of {list(CLASSIFIERS)}; got {classifier!r}")
    if class_weight not in ("balanced", None):
        raise UsageError(f"class_weight must be 'balanced' or null; got {class_weight!r}")
    if C not in ("auto", "ensemble") and (isinstance(C, bool) or not isinstance(C, (int, float)) or C <= 0):
        raise UsageError(f"C must be a positive number, 'auto' or 'ensemble'; got {C!r}")
    return feats


#: test-time averaging of the trained FR detectors (``tta``): None, or "mirror" (the mean of the
#: decision values of the pair and of the pair with both images mirrored left-right)
TTA_MODES = (None, "mirror")


def check_selection(selection: Any) -> str:
    """The dev selection mode of ``C="auto"`` (:data:`madpad.mad.selection.SELECTION_MODES`)."""
    from madpad.mad.selection import SELECTION_MODES

    if selection not in SELECTION_MODES:
        raise UsageError(f"selection must be one of {list(SELECTION_MODES)}; got {selection!r}")
    return selection


class EmbeddingClassifierDetector(_FaceFeaturePairs):
    """Trained D-MAD on FR-embedding pair features (+ optional texture); see module docstring.

    Parameters (keyword-only): ``embedder``/``embedder_params`` (madpad.face embedder),
    ``features`` (blocks from FEATURE_BLOCKS), ``classifier`` (logreg | linear_svm | rbf_svm),
    ``C`` (a number; ``"auto"``: chosen on the dev pairs from ``C_GRID`` with the tie-free key of
    :mod:`madpad.mad.selection`; ``"ensemble"``: the classifiers of every C in ``ENSEMBLE_C``,
    decisions z-scored on the training pairs and averaged), ``selection`` (``"lomo"``:
    leave-one-method-out dev selection when the pairs hold several attack species, else pooled;
    ``"pooled"``),
    ``gamma`` (RBF: ``"scale"`` or a number), ``class_weight`` (``"balanced"`` weights the
    classes by inverse frequency; ``None`` = unweighted), ``texture_size``.
    """

    name = "embedding_classifier"
    checkpoint_kind = "embedding_classifier"
    feature_blocks = FEATURE_BLOCKS  # the blocks ``features`` may name (subclasses with other blocks override)
    suspect_only_blocks = ("suspect", "texture")  # blocks computed from the suspect image alone
    demorph_blocks: tuple[str, ...] = ()  # blocks made from demorphed suspects (``demorph_sharpness`` applies)

    def __init__(self, *, embedder: str = "dlib", embedder_params: dict | None = None,
                 features: Sequence[str] = ("diff",), classifier: str = "logreg", C: Any = 1.0,
                 gamma: Any = "scale", class_weight: str | None = "balanced", texture_size: int = 160,
                 max_iter: int = 5000, progress: bool = False, selection: str = "lomo", augment_copies: int = 0,
                 augment_profile: str = "attacker", augment_seed: int = 0, augment_low_res: float = 0.0,
                 augment_grey: float = 0.0, augment_blur: float = 0.0, tta: str | None = None,
                 demorph_sharpness: bool | str = False):
        feats = check_classifier_options(features, self.feature_blocks, classifier=classifier,
                                         class_weight=class_weight, C=C)
        from madpad.mad.demorph import check_sharpness_mode

        self.demorph_sharpness = check_sharpness_mode(demorph_sharpness)
        if self.demorph_sharpness and not set(feats) & set(self.demorph_blocks):
            raise UsageError(f"demorph_sharpness needs a demorphing feature block (demorph_diff or demorph_cos of "
                             f"dmad_cues and demorph_svm); features {feats} have none")
        self.selection = check_selection(selection)
        self._set_augment(augment_copies, augment_profile, augment_seed, augment_low_res, tta, augment_grey,
                          augment_blur)
        self.embedder = embedder
        self.embedder_params = params_mapping(embedder_params)
        self.features = feats
        self.classifier = classifier
        self.C = C
        self.gamma = gamma
        self.class_weight = class_weight
        self.texture_size = int(texture_size)
        self.max_iter = int(max_iter)
        self.progress = progress
        self.needs_live = any(f not in self.suspect_only_blocks for f in feats)
        self.feature_cache = FeatureCache()
        self.model_: dict | None = None
        check_embedder_files(self.embedder, self.embedder_params)

    def _uses_texture(self) -> bool:
        return any(f.startswith("texture") for f in self.features)

    def _uses_shape(self) -> bool:
        return any(f.startswith("shape") for f in self.features)

    def get_config(self) -> dict:
        return {"embedder": self.embedder, "embedder_params": self.embedder_params, "features": self.features,
                "classifier": self.classifier, "C": self.C, "gamma": self.gamma, "class_weight": self.class_weight,
                "texture_size": self.texture_size, "max_iter": self.max_iter, "selection": self.selection,
                **self._augment_config(),
                # absent when off, so older checkpoints' configs read the same
                **({"demorph_sharpness": self.demorph_sharpness} if self.demorph_sharpness else {})}

    # ------------------------------------------------------------------ training-time augmentation
    def _set_augment(self, copies: Any, profile: str, seed: Any, low_res: Any = 0.0, tta: Any = None,
                     grey: Any = 0.0, blur: Any = 0.0) -> None:
        from madpad.mad.augment import check_live_draws
        from madpad.mad.chains import check_profile

        if isinstance(copies, bool) or not isinstance(copies, (int, np.integer)) or copies < 0:
            raise UsageError(f"augment_copies must be an integer >= 0; got {copies!r}")
        self.augment_copies, self.augment_profile, self.augment_seed = int(copies), check_profile(profile), int(seed)
        self.augment_low_res, self.augment_grey, self.augment_blur = check_live_draws(low_res, grey, blur)
        if tta not in TTA_MODES:
            raise UsageError(f"tta must be one of {list(TTA_MODES)}; got {tta!r}")
        self.tta = tta

    def _augment_config(self) -> dict:
        out = {"augment_copies": self.augment_copies, "augment_profile": self.augment_profile,
               "augment_seed": self.augment_seed}
        if self.augment_low_res:  # absent when off, so older checkpoints' configs read the same
            out["augment_low_res"] = self.augment_low_res
        if self.augment_grey:
            out["augment_grey"] = self.augment_grey
        if self.augment_blur:
            out["augment_blur"] = self.augment_blur
        if self.tta:
            out["tta"] = self.tta
        return out

    def _mirrored_features(self, pairs, cache):
        """(features, ok) of the mirrored pairs (``tta: mirror``), or None without test-time averaging."""
        if not self.tta:
            return None
        from madpad.mad.augment import mirrored_pairs

        X, ok, _, _ = self._features(mirrored_pairs(pairs), cache)
        return X, ok

    @staticmethod
    def _averaged_decision(model: dict, X: np.ndarray, mirrored) -> np.ndarray:
        """Decision values of ``X``; with mirrored features, the mean of the pair's and its mirror's
        (the pair's own where the mirror has no usable features)."""
        d = _decision(model, X)
        if mirrored is not None:
            Xm, okm = mirrored
            if okm.any():
                d[okm] = 0.5 * (d[okm] + _decision(model, Xm[okm]))
        return d

    def _with_augmented_copies(self, pairs: list[Pair]) -> list[Pair]:
        """``pairs`` plus ``augment_copies`` augmented views of each (madpad.mad.augment.augmented_pairs:
        suspect through an ``augment_profile`` chain + photometric/geometric augmentation, live capture
        through the augmentation, shrunk first with probability ``augment_low_res``, blurred with
        probability ``augment_blur`` and turned grey with probability ``augment_grey``; seeded by
        (augment_seed, copy, pair id); features cached per view)."""
        if not self.augment_copies:
            return pairs
        from madpad.mad.augment import augmented_pairs

        return pairs + augmented_pairs(pairs, self.augment_copies, seed=self.augment_seed,
                                       suspect_profile=self.augment_profile, low_res=self.augment_low_res,
                                       grey=self.augment_grey, blur=self.augment_blur)

    # ------------------------------------------------------------------ features
    def pair_matrix(self, s: np.ndarray, l: np.ndarray | None) -> np.ndarray:
        """Pair features (n, F) from per-image features (n, D) laid out as embedding|texture|shape."""
        lay = self._extractor().layout()
        es = s[:, lay["embedding"]].astype(np.float64)
        el = None if l is None else l[:, lay["embedding"]].astype(np.float64)

        def part(x, name):
            return x[:, lay[name]].astype(np.float64)

        blocks = []
        for f in self.features:
            if f in EMBEDDING_PAIR_BLOCKS:
                blocks.append(embedding_pair_block(f, es, el))
            elif f == "suspect":
                blocks.append(es)
            elif f == "texture":
                blocks.append(part(s, "texture"))
            elif f == "texture_diff":
                blocks.append(part(s, "texture") - part(l, "texture"))
            elif f == "shape_absdiff":
                blocks.append(np.abs(part(s, "shape") - part(l, "shape")))
            elif f == "shape_dist":
                d = (part(s, "shape") - part(l, "shape")).reshape(len(s), -1, 2)
                blocks.append(np.sqrt((d ** 2).sum(-1).mean(-1, keepdims=True)))
        return np.concatenate(blocks, axis=1)

    def _features(self, pairs, cache):
        s, l, status, error = self._image_features(pairs, cache)
        X = self.pair_matrix(s, l)
        ok = np.array([st == "ok" for st in status]) & np.all(np.isfinite(X), axis=1)
        return X, ok, status, error

    # ------------------------------------------------------------------ fit / score
    def fit(self, pairs: Sequence[Pair], *, dev: Sequence[Pair] | None = None,
            cache: FeatureCache | None = None, selection: str | None = None) -> EmbeddingClassifierDetector:
        """Fit scaler + classifier on labelled pairs (pairs without a usable face are skipped,
        with a warning naming how many). ``C="auto"`` picks C from ``C_GRID`` on ``dev`` with the
        tie-free key of :mod:`madpad.mad.selection` (D-EER, then BPCER@APCER=1 %, 5 %, partial
        AUC, tail margin, then the smaller C); ``selection`` (default: the detector's
        ``selection`` option, ``"lomo"``) = ``"lomo"``: each C is judged per held-out dev attack
        species, fitted on the training pairs of the other species (generalisation to an unseen
        morph method), ``"pooled"``: fitted on all training pairs, judged on all dev pairs. The
        table is kept in ``selection_`` (and in the checkpoint's ``C_selection``). With
        ``augment_copies`` > 0 the training pairs get that many augmented views each (dev pairs
        are not augmented)."""
        pairs = self._with_augmented_copies(as_pairs(pairs))
        y = labels_of(pairs, where="training pairs")
        sp = np.array([p.species if p.label == "attack" else "" for p in pairs], dtype=object)
        X, ok, _, error = self._features(pairs, cache)
        if not ok.all():
            log.warning("skipping %d of %d training pairs without usable features (e.g. %s)",
                        int((~ok).sum()), len(pairs), next(e for e, k in zip(error, ok) if not k))
        X, y, sp = X[ok], y[ok], sp[ok]
        if y.min() == y.max():
            raise UsageError("after skipping pairs without a face, training has only one class")
        self.n_skipped_ = int((~ok).sum())
        C = self.C
        self.selection_ = []
        if C == "ensemble" and dev:  # no choice to make: the dev table records the ensemble's own key
            self._dev_selection(["ensemble"], X, y, sp, dev, cache, selection)
        elif C == "auto":
            if not dev:
                log.warning("C='auto' without dev pairs: using C=1")
                C = 1.0
            else:
                sel = self._dev_selection(list(C_GRID), X, y, sp, dev, cache, selection)
                C = C_GRID[sel.index]
                log.info("C=%g chosen on dev (%s, decided by %s)", C, sel.mode, sel.decided_by)
        self.model_ = self._fit_model(X, y, C)
        self.C_ = C if C == "ensemble" else float(C)
        self.class_counts_ = {"bona_fide": int((y == 0).sum()), "attack": int((y == 1).sum())}
        return self

    def _dev_selection(self, candidates: list, X, y, sp, dev, cache, selection):
        """The dev key of each candidate C (leave-one-method-out or pooled, :mod:`madpad.mad.selection`),
        kept in ``selection_``; returns the :class:`~madpad.mad.selection.Selection`."""
        from madpad.mad.selection import select_candidates

        dev = as_pairs(dev)
        yd = labels_of(dev, where="dev pairs")
        spd = np.array([p.species if p.label == "attack" else "" for p in dev], dtype=object)
        Xd, okd, _, _ = self._features(dev, cache)
        Xd, yd, spd = Xd[okd], yd[okd], spd[okd]
        mirrored = self._mirrored_features(dev, cache)
        if mirrored is not None:
            mirrored = (mirrored[0][okd], mirrored[1][okd])

        def dev_decision(c, ti, di):
            m = None if mirrored is None else (mirrored[0][di], mirrored[1][di])
            return self._averaged_decision(self._fit_model(X[ti], y[ti], c), Xd[di], m)

        prefer = [c if isinstance(c, float) else 0.0 for c in candidates]
        sel = select_candidates(candidates, dev_decision, train_y=y, train_species=sp, dev_y=yd, dev_species=spd,
                                mode=selection or self.selection, prefer=prefer)
        self.selection_ = [{"C": r.pop("candidate"), **r} for r in sel.table]
        self.selection_mode_ = sel.mode
        return sel

    def _fit_model(self, X, y, C) -> dict:
        """One classifier at ``C``; for ``C="ensemble"`` one per :data:`ENSEMBLE_C`, each with the mean
        and std of its decisions on ``X`` (``z``) that put the members on one scale."""
        if C == "ensemble":
            members = []
            for c in ENSEMBLE_C:
                m = self._fit_model(X, y, c)
                d = _decision(m, X)
                m["z"] = np.array([d.mean(), max(float(d.std()), 1e-12)])
                members.append(m)
            return {"kind": "ensemble", "members": members}
        C = float(C)
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC, LinearSVC

        scaler = StandardScaler().fit(X)
        Z = scaler.transform(X)
        cw = self.class_weight
        model = {"mean": scaler.mean_, "scale": scaler.scale_, "kind": self.classifier}
        if self.classifier == "logreg":
            clf = LogisticRegression(C=C, class_weight=cw, max_iter=self.max_iter).fit(Z, y)
            model.update(coef=clf.coef_.ravel(), intercept=np.asarray(clf.intercept_, dtype=np.float64))
        elif self.classifier == "linear_svm":
            clf = LinearSVC(C=C, class_weight=cw, max_iter=self.max_iter).fit(Z, y)
            model.update(coef=clf.coef_.ravel(), intercept=np.asarray(clf.intercept_, dtype=np.float64))
        else:
            clf = SVC(C=C, kernel="rbf", gamma=self.gamma, class_weight=cw).fit(Z, y)
            model.update(support_vectors=clf.support_vectors_, dual_coef=clf.dual_coef_.ravel(),
                         intercept=np.asarray(clf.intercept_, dtype=np.float64),
                         gamma=np.asarray([clf._gamma], dtype=np.float64))
        model["classes"] = np.asarray(clf.classes_)
        if list(model["classes"]) != [0, 1]:
            raise RuntimeError(f"unexpected classes {model['classes']}")
        return model

    def score_pairs(self, pairs: Sequence[Pair], *, cache: FeatureCache | None = None) -> ScoreResult:
        check_is_fitted(self, "model_")
        pairs = as_pairs(pairs)
        X, ok, status, error = self._features(pairs, cache)
        out = np.full(len(pairs), np.nan)
        if ok.any():
            mirrored = self._mirrored_features([p for p, k in zip(pairs, ok) if k], cache)
            out[ok] = self._averaged_decision(self.model_, X[ok], mirrored)
        return ScoreResult(out, status, error)

    def decision_from_features(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "model_")
        return _decision(self.model_, np.asarray(X, dtype=np.float64))

    # ------------------------------------------------------------------ persistence
    def save(self, directory) -> Path:
        check_is_fitted(self, "model_")
        d = Path(directory)
        save_npz(d / "model.npz", _model_arrays(self.model_))
        write_header(d, detector=self.checkpoint_kind, config=self.get_config(), extra={
            "model": "model.npz", "classifier": self.classifier, "C_selected": getattr(self, "C_", None),
            "C_selection": getattr(self, "selection_", []), "class_counts": getattr(self, "class_counts_", None),
            "n_skipped": getattr(self, "n_skipped_", 0),
            "score": "classifier decision value; higher = more likely a morph; attack when score >= threshold",
            **self._checkpoint_extra()})
        return d

    def _checkpoint_extra(self) -> dict:
        """More header entries of a subclass (what its features were computed with)."""
        return {}

    @classmethod
    def load(cls, directory, header: dict | None = None, **overrides) -> EmbeddingClassifierDetector:
        d = Path(directory)
        head = header or read_header(d)
        det = cls(**{**head["config"], **overrides})
        det.model_ = _model_from_arrays(load_npz(d / head.get("model", "model.npz")), det.classifier)
        det.C_ = head.get("C_selected")
        return det


def _model_arrays(model: dict) -> dict:
    """The arrays of ``model.npz``: a single classifier's as they are, an ensemble's members prefixed
    ``m0_``, ``m1_``, ..."""
    if model["kind"] != "ensemble":
        return {k: np.asarray(v) for k, v in model.items() if k != "kind"}
    return {f"m{i}_{k}": np.asarray(v) for i, m in enumerate(model["members"]) for k, v in m.items() if k != "kind"}


def _model_from_arrays(arrays: dict, classifier: str) -> dict:
    """Inverse of :func:`_model_arrays`."""
    if "m0_mean" not in arrays:
        return {**arrays, "kind": classifier}
    members = []
    while f"m{len(members)}_mean" in arrays:
        pre = f"m{len(members)}_"
        members.append({**{k[len(pre):]: v for k, v in arrays.items() if k.startswith(pre)}, "kind": classifier})
    return {"kind": "ensemble", "members": members}


def _decision(model: dict, X: np.ndarray) -> np.ndarray:
    """Decision function rebuilt from stored arrays (higher = class 1 = attack); an ensemble's is the
    mean of its members' z-scored decisions."""
    if model["kind"] == "ensemble":
        return np.mean([(_decision(m, X) - m["z"][0]) / m["z"][1] for m in model["members"]], axis=0)
    Z = (np.asarray(X, dtype=np.float64) - model["mean"]) / model["scale"]
    if model["kind"] in ("logreg", "linear_svm"):
        return Z @ np.asarray(model["coef"], dtype=np.float64) + float(np.ravel(model["intercept"])[0])
    sv = np.asarray(model["support_vectors"], dtype=np.float64)
    gamma = float(np.ravel(model["gamma"])[0])
    d2 = (Z ** 2).sum(1)[:, None] + (sv ** 2).sum(1)[None, :] - 2 * Z @ sv.T
    K = np.exp(-gamma * np.maximum(d2, 0.0))
    return K @ np.asarray(model["dual_coef"], dtype=np.float64) + float(np.ravel(model["intercept"])[0])


# --------------------------------------------------------------------------- several FR systems
FUSED_BLOCKS = EMBEDDING_PAIR_BLOCKS


def embedder_specs(embedders: Any) -> list[dict]:
    """FR systems of a fused detector as ``[{"label", "name", "params"}]`` from names,
    ``"NAME[:key=value,...][@LABEL]"`` strings or ``{name, label?, **params}`` mappings."""
    from madpad.cli import parse_component_spec

    items = [embedders] if isinstance(embedders, (str, dict)) else list(embedders or [])
    out = []
    for e in items:
        if isinstance(e, dict):
            if not e.get("name"):
                raise UsageError(f"embedders: a mapping needs a 'name' key; got {e!r}")
            params = dict(e.get("params") or {k: v for k, v in e.items() if k not in ("name", "label", "params")})
            out.append({"label": str(e.get("label", e["name"])), "name": str(e["name"]), "params": params})
        else:
            text, _, label = str(e).partition("@")
            name, params = parse_component_spec(text, what=f"embedders entry {e!r}")
            out.append({"label": label.strip() or name, "name": name, "params": params})
    labels = [o["label"] for o in out]
    if len(out) < 2:
        raise UsageError(f"a fused detector needs at least two FR systems; got {labels}")
    if len(set(labels)) != len(labels):
        raise UsageError(f"embedders labels must be unique; got {labels} (add @LABEL)")
    return out


class FusedEmbeddingDetector(EmbeddingClassifierDetector):
    """Trained D-MAD on the pair features of **several** FR systems at once.

    For each system in ``embedders`` (names, ``NAME:key=value`` strings or ``{name, **params}``)
    the per-pair blocks ``features`` (``cos`` = 1 - cosine, ``diff`` = suspect - live,
    ``absdiff``, ``prod``) are computed on that system's L2-normalised embeddings and
    concatenated (system order as given), then standardised and fed to ``classifier``
    (``logreg`` | ``linear_svm`` | ``rbf_svm``; ``C="auto"`` picks C on the dev pairs by D-EER).
    Default: the per-system cosine distances of dlib, mobileface and hse_faceres (three
    independent networks; ``faceapi_resnet128`` is a port of dlib and adds little) -> logistic
    regression, i.e. a learned weighting of the per-system distance detectors. Score: the
    classifier's decision value, higher = more likely a morph. Each image is analysed once per
    system (features cached per system and image, shared with the single-system detectors).
    """

    name = "fused_embedding"
    checkpoint_kind = "fused_embedding"

    def __init__(self, *, embedders: Any = ("dlib", "mobileface", "hse_faceres"), features: Sequence[str] = ("cos",),
                 classifier: str = "logreg", C: Any = 1.0, gamma: Any = "scale",
                 class_weight: str | None = "balanced", max_iter: int = 5000, progress: bool = False,
                 selection: str = "lomo", augment_copies: int = 0, augment_profile: str = "attacker",
                 augment_seed: int = 0, augment_low_res: float = 0.0, augment_grey: float = 0.0,
                 augment_blur: float = 0.0, tta: str | None = None):
        feats = check_classifier_options(features, FUSED_BLOCKS, classifier=classifier, class_weight=class_weight,
                                         C=C)
        self.selection = check_selection(selection)
        self._set_augment(augment_copies, augment_profile, augment_seed, augment_low_res, tta, augment_grey,
                          augment_blur)
        self.systems = embedder_specs(embedders)
        for s in self.systems:
            check_embedder_files(s["name"], s["params"])
        self.embedder = "+".join(s["label"] for s in self.systems)  # for messages and reports
        self.embedder_params = {}
        self.features = feats
        self.classifier = classifier
        self.C = C
        self.gamma = gamma
        self.class_weight = class_weight
        self.texture_size = 160
        self.max_iter = int(max_iter)
        self.progress = progress
        self.needs_live = True
        self.feature_cache = FeatureCache()
        self.model_: dict | None = None
        self._fxs = None

    def get_config(self) -> dict:
        return {"embedders": [dict(s) for s in self.systems], "features": self.features,
                "classifier": self.classifier, "C": self.C, "gamma": self.gamma, "class_weight": self.class_weight,
                "max_iter": self.max_iter, "selection": self.selection, **self._augment_config()}

    def extractors(self) -> list[FaceFeatureExtractor]:
        """One embedding-only :class:`FaceFeatureExtractor` per system (built once)."""
        if self._fxs is None:
            self._fxs = [FaceFeatureExtractor(embedder=s["name"], embedder_params=s["params"]) for s in self.systems]
        return self._fxs

    def feature_names(self) -> list[str]:
        """Name of every column of the pair-feature matrix (``<system>:<block>[<i>]``)."""
        names = []
        for s, fx in zip(self.systems, self.extractors()):
            for f in self.features:
                names += [f"{s['label']}:cos"] if f == "cos" else [f"{s['label']}:{f}[{i}]" for i in range(fx.embed_dim)]
        return names

    def _features(self, pairs, cache):
        cache = cache if cache is not None else self.feature_cache
        n = len(pairs)
        status, error = ["ok"] * n, [""] * n
        blocks = []
        for s, fx in zip(self.systems, self.extractors()):
            sus = fx.many([p.suspect for p in pairs], cache=cache, progress=self.progress,
                          desc=f"suspect images ({s['label']})")
            live = fx.many([p.live for p in pairs], cache=cache, progress=self.progress,
                           desc=f"live captures ({s['label']})")
            for i in range(n):
                st, er = _pair_status(sus.status[i], sus.error[i], live.status[i], live.error[i])
                if st != "ok" and status[i] == "ok":
                    status[i], error[i] = st, f"[{s['label']}] {er}"
            es, el = sus.features.astype(np.float64), live.features.astype(np.float64)
            blocks += [embedding_pair_block(f, es, el) for f in self.features]
        X = np.concatenate(blocks, axis=1) if n else np.zeros((0, len(self.features)))
        ok = np.array([st == "ok" for st in status], dtype=bool) & np.all(np.isfinite(X), axis=1)
        return X, ok, status, error

    def save(self, directory) -> Path:
        d = super().save(directory)
        extra = {k: v for k, v in read_header(d).items() if k not in ("format", "version", "detector", "config")}
        extra.update(systems=[s["label"] for s in self.systems],
                     score="classifier decision value on the pair features of several FR systems; higher = more "
                           "likely a morph; attack when score >= threshold")
        write_header(d, detector=self.checkpoint_kind, config=self.get_config(), extra=extra)
        return d
