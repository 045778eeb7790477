"""D-MAD baselines (FR embeddings, texture), pair files, live-capture variation, splits."""

from __future__ import annotations

import numpy as np
import pytest

from madpad.errors import ManifestError, UsageError
from madpad.mad import NotFittedError, Pair, get_detector, list_detectors, load_detector
from madpad.mad.baselines import EmbeddingClassifierDetector, _decision
from madpad.mad.pairs import (
    BuildConfig,
    build_dmad_pairs,
    filter_pairs,
    prepare_suspect,
    read_pairs_csv,
    vary_live_capture,
)


# --------------------------------------------------------------------------- registry
def test_registry_lists_baselines_and_foundation_detectors():
    names = list_detectors()
    for n in ("embedding_distance", "embedding_logreg", "embedding_svm", "fr_texture", "foundation",
              "foundation_smad"):
        assert n in names
    with pytest.raises(Exception, match="Did you mean 'embedding_svm'"):
        get_detector("embeding_svm")


def test_unfitted_classifier_raises_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        get_detector("embedding_logreg").score([Pair("a", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))])


def test_bad_options_are_rejected():
    with pytest.raises(UsageError, match="features"):
        get_detector("embedding_logreg", features=["difff"])
    with pytest.raises(UsageError, match="classifier"):
        get_detector("embedding_logreg", classifier="forest")


# --------------------------------------------------------------------------- stored decision functions
@pytest.mark.parametrize("kind", ["logreg", "linear_svm", "rbf_svm"])
def test_decision_rebuilt_from_arrays_matches_scikit_learn(kind, rng):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    X = rng.normal(size=(80, 6)) * [1, 2, 3, 1, 1, 5] + [0, 1, 0, 2, 0, 0]
    y = (X[:, 0] + 0.5 * X[:, 1] ** 2 + rng.normal(0, 0.5, 80) > 1).astype(int)
    det = EmbeddingClassifierDetector(classifier=kind, C=2.0)
    model = det._fit_model(X, y, 2.0)
    Z = StandardScaler().fit(X).transform(X)
    ref = {"logreg": LogisticRegression(C=2.0, class_weight="balanced", max_iter=5000),
           "linear_svm": LinearSVC(C=2.0, class_weight="balanced", max_iter=5000),
           "rbf_svm": SVC(C=2.0, kernel="rbf", gamma="scale", class_weight="balanced")}[kind].fit(Z, y)
    Xt = rng.normal(size=(20, 6))
    Zt = StandardScaler().fit(X).transform(Xt)
    np.testing.assert_allclose(_decision(model, Xt), ref.decision_function(Zt), rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- real dlib on the bundled sample
@pytest.fixture(scope="module")
def sample_pairs(tmp_path_factory):
    """Bona fide (neutral, varied smiling) and crude blend "morph" pairs from the bundled FRLL sample."""
    pytest.importorskip("dlib")
    import cv2

    from madpad.data.sample import sample_root
    from madpad.io import read_image, write_image

    root = sample_root()
    neutral = sorted((root / "neutral").glob("*.jpg"))[:4]
    d = tmp_path_factory.mktemp("pairs")
    pairs = []
    for i, n in enumerate(neutral):
        subj = n.stem.split("_")[0]
        live = vary_live_capture(read_image(root / "smiling" / f"{subj}_08.jpg"), seed=i)
        lp = d / f"live_{subj}.jpg"
        write_image(lp, live)
        pairs.append(Pair(f"bf_{subj}", n, lp, "bona_fide", subjects=(subj,)))
        a, b = read_image(n), read_image(neutral[(i + 1) % len(neutral)])
        blend = ((a.astype(np.float32) + cv2.resize(b, a.shape[1::-1])) / 2).astype(np.uint8)
        mp = d / f"blend_{subj}.png"
        write_image(mp, blend)
        pairs.append(Pair(f"m_{subj}", mp, lp, "attack", species="blend", subjects=(subj, "x")))
    return pairs


FAST = {"embedder_params": {"detector": {"name": "dlib_hog", "upsample": 0, "max_side": 400}}}


def test_distance_baseline_ranks_blends_above_bona_fide(sample_pairs):
    from madpad.mad.cache import FeatureCache

    cache = FeatureCache()
    det = get_detector("embedding_distance", **FAST).fit(sample_pairs)
    s = det.score(sample_pairs, cache=cache)
    y = np.array([p.y for p in sample_pairs])
    assert s.dtype == np.float64 and np.all(np.isfinite(s))
    assert s[y == 0].max() < s[y == 1].min()
    # 1 - cosine of unit vectors lies in [0, 2]
    assert np.all((s >= 0) & (s <= 2))
    # each live capture (shared by a bona fide and an attack pair) was embedded once
    n_images = len({str(p.suspect) for p in sample_pairs} | {str(p.live) for p in sample_pairs})
    assert cache.misses == n_images < 2 * len(sample_pairs)
    np.testing.assert_array_equal(det.score(sample_pairs, cache=cache), s)
    assert cache.misses == n_images and cache.hits >= 2 * len(sample_pairs)


def test_classifier_round_trip_and_no_face_status(sample_pairs, tmp_path):
    det = get_detector("fr_texture", C=1.0, **FAST).fit(sample_pairs)
    s = det.score(sample_pairs)
    det.save(tmp_path / "ck")
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["detector.json", "model.npz"]
    loaded = load_detector(tmp_path / "ck")
    np.testing.assert_array_equal(loaded.score(sample_pairs), s)
    # a flat grey image has no face: NaN score with a status, the others still scored
    grey = np.full((200, 200, 3), 128, np.uint8)
    r = loaded.score_pairs([Pair("g", grey, sample_pairs[0].live), sample_pairs[0]])
    assert r.status[0] == "no_face" and "suspect" in r.error[0] and np.isnan(r.scores[0])
    assert r.status[1] == "ok" and r.scores[1] == pytest.approx(s[0], rel=1e-12)
    # a faceless file: its path is named once in the per-pair error, after the image's role
    import cv2

    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    r = loaded.score_pairs([Pair("g", tmp_path / "grey.png", sample_pairs[0].live)])
    assert r.error[0].startswith(f"suspect: {tmp_path / 'grey.png'}: ") and r.error[0].count("grey.png") == 1


# --------------------------------------------------------------------------- texture / variation
def test_texture_features_see_blur(rng):
    import cv2

    from madpad.mad.features import TEXTURE_DIM, texture_features

    img = rng.integers(0, 256, (160, 160, 3)).astype(np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    f_sharp = texture_features(img)
    f_blur = texture_features(cv2.GaussianBlur(img, (0, 0), 2.0))
    assert f_sharp.shape == (TEXTURE_DIM,) and np.all(np.isfinite(f_sharp))
    assert f_blur[0] < f_sharp[0]       # noise-residual std drops
    assert f_blur[3] < f_sharp[3]       # Laplacian energy drops


def test_live_capture_variation_is_seeded(rng):
    img = rng.integers(0, 256, (300, 300, 3)).astype(np.uint8)
    a = vary_live_capture(img, seed=3)
    b = vary_live_capture(img, seed=3)
    c = vary_live_capture(img, seed=4)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint8 and a.ndim == 3
    assert a.shape != c.shape or not np.array_equal(a, c)
    s = prepare_suspect(img, long_side=150, jpeg_quality=90)
    assert max(s.shape[:2]) == 150


# --------------------------------------------------------------------------- pair files
def _write(p, text):
    p.write_text(text, encoding="utf-8")
    return p


def test_read_pairs_csv_resolves_relative_paths_and_validates(tmp_path):
    from madpad.io import write_image

    (tmp_path / "img").mkdir()
    for n in ("s.png", "l.png"):
        write_image(tmp_path / "img" / n, np.zeros((4, 4, 3), np.uint8))
    f = _write(tmp_path / "p.csv", f"id,suspect,live,label,species\n1,img/s.png,{tmp_path}/img/l.png,attack,landmark\n"
                                   "2,img/s.png,img/l.png,,\n")
    pairs = read_pairs_csv(f)
    assert pairs[0].suspect == tmp_path / "img" / "s.png" and pairs[0].species == "landmark"
    assert pairs[1].label is None
    with pytest.raises(ManifestError, match=r"p2.csv.*missing required column.*live"):
        read_pairs_csv(_write(tmp_path / "p2.csv", "id,suspect\n1,img/s.png\n"))
    with pytest.raises(ManifestError, match=r"row 3: field 'label'.*'morph'"):
        read_pairs_csv(_write(tmp_path / "p3.csv", "id,suspect,live,label,species\n1,img/s.png,img/l.png,attack,x\n"
                                                   "2,img/s.png,img/l.png,morph,\n"))
    with pytest.raises(ManifestError, match=r"1 image file\(s\) not found: row 2 live=img/nope.png"):
        read_pairs_csv(_write(tmp_path / "p4.csv", "id,suspect,live\n1,img/s.png,img/nope.png\n"))
    with pytest.raises(ManifestError, match="duplicate id '1'"):
        read_pairs_csv(_write(tmp_path / "p5.csv", "id,suspect,live\n1,img/s.png,img/l.png\n1,img/s.png,img/l.png\n"))
    with pytest.raises(ManifestError, match="field 'label'.*training needs"):
        read_pairs_csv(f, require_labels=True)


def test_cross_method_filter_keeps_bona_fide():
    ps = [Pair("b", "x", "y", "bona_fide"), Pair("m1", "x", "y", "attack", "landmark"),
          Pair("m2", "x", "y", "attack", "landmark_spliced")]
    assert [p.id for p in filter_pairs(ps, species=["landmark_spliced"])] == ["b", "m2"]


def test_built_pairs_never_share_a_subject_across_splits(tmp_path):
    """Build pairs from the bundled sample with fake morph rows; check subject disjointness."""
    from madpad.data import MorphRecord
    from madpad.data.frll import frll_images
    from madpad.data.sample import sample_root

    images = frll_images(sample_root())
    subjects = sorted({r.subject for r in images})
    enrol = {r.subject: r.path for r in images if r.capture == "enrolment"}
    # every pair of subjects "morphed" (the morph image is just A's photo: only the bookkeeping matters)
    morphs = [MorphRecord(id=f"{a}_{b}", path=enrol[a], a=str(enrol[a]), b=str(enrol[b]), subject_a=a,
                          subject_b=b, method="fake") for i, a in enumerate(subjects) for b in subjects[i + 1:]]
    cfg = BuildConfig(live_variants=1, suspect_long_side=64, max_morphs_per_method=40, seed=1)
    built = build_dmad_pairs(images, morphs, tmp_path / "built", config=cfg, progress=False)
    seen: dict[str, str] = {}
    for split, f in built.files.items():
        for p in read_pairs_csv(f, require_labels=True):
            subs = set(p.subjects) | {p.extra["live_subject"]}
            if p.label == "attack":
                assert p.extra["live_subject"] in p.subjects  # live capture of a contributor
            for s in subs:
                assert seen.setdefault(s, split) == split, f"subject {s} in {seen[s]} and {split}"
    assert built.counts["train"]["attack"] > 0 and built.counts["test"]["bona_fide"] > 0
    assert built.dropped_morphs > 0  # morphs straddling splits are dropped, not moved
    # rebuilding reuses the written images (resume) and gives the same pair files
    before = (built.files["test"]).read_text()
    again = build_dmad_pairs(images, morphs, tmp_path / "built", config=cfg, progress=False)
    assert again.files["test"].read_text() == before


def test_score_csv_follows_the_pad_contract(tmp_path):
    from madpad.mad.pairs import write_scores_csv

    scores_mod = pytest.importorskip("madpad.report.scores")
    ps = [Pair("b1", "x", "y", "bona_fide", subjects=("001",), extra={"live_subject": "001"}),
          Pair("m1", "x", "y", "attack", "landmark", subjects=("001", "002"), extra={"live_subject": "002"})]
    f = write_scores_csv(tmp_path / "s.csv", ps, np.array([0.25, 0.75]))
    assert f.read_text().splitlines() == ["id,score,label,species,status,error,subject",
                                          "b1,0.25,bona_fide,,ok,,001", "m1,0.75,attack,landmark,ok,,002"]
    table = scores_mod.read_pad_scores(f)
    assert table.scores.tolist() == [0.25, 0.75] and table.subjects.tolist() == ["001", "002"]


def test_shape_features_ignore_position_scale_and_roll(rng):
    from madpad.mad.features import SHAPE_DIM, shape_features

    lm = rng.uniform(0, 100, (68, 2))
    a = np.radians(17.0)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = 2.5 * lm @ R.T + [40.0, -7.0]
    f = shape_features(lm)
    assert f.shape == (SHAPE_DIM,)
    np.testing.assert_allclose(shape_features(moved), f, atol=1e-5)
    # eye centres land on (-0.5, 0) and (0.5, 0): their mean over the eye points is fixed
    pts = f.reshape(-1, 2)
    np.testing.assert_allclose(pts[36 - 17:42 - 17].mean(0), [-0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(pts[42 - 17:48 - 17].mean(0), [0.5, 0.0], atol=1e-6)


def test_richer_cached_features_are_sliced_for_simpler_extractors():
    from madpad.mad.cache import FeatureCache
    from madpad.mad.features import SHAPE_DIM, TEXTURE_DIM, FaceFeatureExtractor

    rich = FaceFeatureExtractor(texture=True, shape=True)
    simple = FaceFeatureExtractor(shape=True)
    img = np.zeros((8, 8, 3), np.uint8)
    cache = FeatureCache()
    v = np.arange(128 + TEXTURE_DIM + SHAPE_DIM, dtype=np.float32)
    cache.put(rich.id, cache.key(img), v)
    r = simple.many([img], cache=cache)  # no face analysis: served from the richer row
    assert r.status == ["ok"] and cache.misses == 0
    np.testing.assert_array_equal(r.features[0], np.concatenate([v[:128], v[128 + TEXTURE_DIM:]]))


def test_feature_cache_persists_on_disk_and_computes_each_image_once(tmp_path):
    from madpad.mad.cache import FeatureCache, cached_features

    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(2))
    calls = []

    def compute(images):
        calls.append(len(images))
        return np.stack([im.reshape(-1)[:4].astype(np.float32) for im in images])

    first = cached_features([a, b, a], compute, model_id="m1", cache=FeatureCache(tmp_path))
    assert calls == [2] and np.array_equal(first[0], first[2])
    again = cached_features([b, a], compute, model_id="m1", cache=FeatureCache(tmp_path))  # a new process
    assert calls == [2] and np.array_equal(again, first[[1, 0]])
    cached_features([a], compute, model_id="m2", cache=FeatureCache(tmp_path))  # other model: recomputed
    assert calls == [2, 1]
