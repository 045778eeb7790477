"""D-MAD on several FR systems: the fused detector's features, fit/score/save/load, and its
configuration errors (madpad.mad.baselines.FusedEmbeddingDetector, embedder_specs,
check_embedder_files)."""

from __future__ import annotations

import numpy as np
import pytest

from madpad.errors import MissingDependencyError, UsageError
from madpad.mad import Pair, get_detector, load_detector
from madpad.mad.baselines import FusedEmbeddingDetector, embedder_specs
from madpad.mad.features import FeatureResult


class _FakeExtractor:
    """Stands in for FaceFeatureExtractor: image id -> fixed unit vector (or NaN = no face)."""

    def __init__(self, table: dict[str, np.ndarray]):
        self.table = table
        self.embed_dim = len(next(iter(table.values())))

    def many(self, images, *, cache=None, progress=False, desc=""):
        out = np.stack([self.table[i] for i in images]).astype(np.float32)
        status = ["ok" if np.isfinite(v).all() else "no_face" for v in out]
        error = ["" if s == "ok" else f"{im}: no face detected" for s, im in zip(status, images)]
        return FeatureResult(out, status, error)


def _unit(*v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _detector(tables, **params):
    det = FusedEmbeddingDetector(embedders=["sysA", "sysB"], **params)
    det._fxs = [_FakeExtractor(t) for t in tables]
    return det


def test_feature_blocks_per_system_hand_computed():
    a = {"s1": _unit(1, 0), "l1": _unit(1, 1), "s2": _unit(0, 1), "l2": _unit(0, 1)}
    b = {"s1": _unit(1, 0, 0), "l1": _unit(1, 0, 0), "s2": _unit(1, 0, 0), "l2": _unit(0, 0, 1)}
    det = _detector([a, b], features=["cos", "diff"])
    pairs = [Pair("p1", "s1", "l1"), Pair("p2", "s2", "l2")]
    X, ok, status, _ = det._features(pairs, None)
    # columns: sysA 1-cos | sysA diff (2) | sysB 1-cos | sysB diff (3)
    assert X.shape == (2, 1 + 2 + 1 + 3) and ok.all() and status == ["ok", "ok"]
    np.testing.assert_allclose(X[0], [1 - 1 / np.sqrt(2), 1 - 1 / np.sqrt(2), -1 / np.sqrt(2), 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(X[1], [0, 0, 0, 1, 1, 0, -1], atol=1e-6)


def test_a_face_missing_in_one_system_fails_the_pair_and_names_the_system():
    a = {"s": _unit(1, 0), "l": _unit(1, 0)}
    b = {"s": np.full(2, np.nan), "l": _unit(0, 1)}
    det = _detector([a, b])
    _, ok, status, error = det._features([Pair("p", "s", "l")], None)
    assert not ok[0] and status == ["no_face"] and error[0].startswith("[sysB] suspect: s: no face")


def test_fit_score_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    ta, tb, pairs = {}, {}, []
    for i in range(40):  # attacks: larger distance in both systems; bona fide: small
        attack = i % 2 == 1
        for t, d in ((ta, 4), (tb, 6)):
            base = rng.normal(size=d)
            t[f"s{i}"] = _unit(*base)
            t[f"l{i}"] = _unit(*(base + rng.normal(scale=1.5 if attack else 0.2, size=d)))
        pairs.append(Pair(f"p{i}", f"s{i}", f"l{i}", "attack" if attack else "bona_fide", "m" if attack else "", (str(i),)))
    det = _detector([ta, tb]).fit(pairs)
    s = det.score(pairs)
    y = np.array([p.y for p in pairs])
    assert s.dtype == np.float64 and s[y == 1].min() > s[y == 0].max()  # separable: every attack above
    assert det.feature_names() == ["sysA:cos", "sysB:cos"]
    det.save(tmp_path / "ck")
    import json

    head = json.loads((tmp_path / "ck" / "detector.json").read_text())
    assert head["detector"] == "fused_embedding" and head["systems"] == ["sysA", "sysB"]
    assert head["config"]["embedders"][1] == {"label": "sysB", "name": "sysB", "params": {}}
    back = FusedEmbeddingDetector.load(tmp_path / "ck")
    back._fxs = det._fxs
    np.testing.assert_array_equal(back.score(pairs), s)


def test_embedder_specs_forms_and_errors():
    specs = embedder_specs(["dlib", "mobileface:batch_size=4@mf", {"name": "hse_faceres", "crop": "box"}])
    assert specs == [{"label": "dlib", "name": "dlib", "params": {}},
                     {"label": "mf", "name": "mobileface", "params": {"batch_size": 4}},
                     {"label": "hse_faceres", "name": "hse_faceres", "params": {"crop": "box"}}]
    with pytest.raises(UsageError, match="at least two FR systems"):
        embedder_specs(["dlib"])
    with pytest.raises(UsageError, match="labels must be unique"):
        embedder_specs(["dlib", "dlib"])
    with pytest.raises(UsageError, match="features must be a non-empty list"):
        FusedEmbeddingDetector(embedders=["a", "b"], features=["texture"])


def test_missing_model_file_fails_when_the_detector_is_built(monkeypatch):
    monkeypatch.delenv("MADPAD_SHARED", raising=False)
    for name in ("fused_embedding", "embedding_svm_mobileface", "embedding_distance_hse_faceres"):
        with pytest.raises(MissingDependencyError, match=r"model file \w+\.onnx not found.*MADPAD_SHARED"):
            get_detector(name)
    # dlib-only detectors need no shared file
    assert get_detector("embedding_distance").embedder == "dlib"


def test_registered_per_system_detectors_use_their_system(monkeypatch):
    from conftest import shared_path

    monkeypatch.setenv("MADPAD_SHARED", str(shared_path("models/fr/mobileface.onnx").parents[2]))
    assert get_detector("embedding_svm_hse_faceres").get_config()["embedder"] == "hse_faceres"
    assert get_detector("embedding_distance_faceapi_resnet128").embedder == "faceapi_resnet128"
    fused = get_detector("fused_embedding")
    assert [s["name"] for s in fused.systems] == ["dlib", "mobileface", "hse_faceres"] and fused.features == ["cos"]


def test_fused_detector_on_real_sample_images(monkeypatch, sample_dir, tmp_path):
    """Two real systems on bundled FRLL photos: bona fide (neutral vs smiling) against crude blends."""
    from conftest import shared_path

    from madpad.io import read_image

    monkeypatch.setenv("MADPAD_SHARED", str(shared_path("models/fr/mobileface.onnx").parents[2]))
    subs = ["001", "004", "007", "011"]
    neutral = {s: read_image(sample_dir / "neutral" / f"{s}_03.jpg") for s in subs}
    smiling = {s: read_image(sample_dir / "smiling" / f"{s}_08.jpg") for s in subs}
    pairs = []
    for i, s in enumerate(subs):
        other = neutral[subs[(i + 1) % len(subs)]]
        blend = ((neutral[s].astype(np.float64) + other) / 2).astype(np.uint8)
        pairs += [Pair(f"b{s}", neutral[s], smiling[s], "bona_fide", "", (s,)),
                  Pair(f"a{s}", blend, smiling[s], "attack", "blend", (s,))]
    det = get_detector("fused_embedding", embedders=["dlib", "mobileface"])
    X, ok, _, _ = det._features(pairs, None)
    y = np.array([p.y for p in pairs])
    assert ok.all() and X.shape == (8, 2)
    assert (X[y == 1].min(axis=0) > X[y == 0].max(axis=0)).all()  # every blend farther, in both systems
    det.fit(pairs)
    det.save(tmp_path / "ck")
    np.testing.assert_allclose(load_detector(tmp_path / "ck").score(pairs), det.score(pairs))
