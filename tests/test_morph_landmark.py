"""Landmark morphs: geometry, alignment, alpha end points, splicing, identity of real morphs."""

from __future__ import annotations

import numpy as np
import pytest

from madpad.errors import FaceNotFoundError, UsageError
from madpad.morph import MORPH_METHODS, get_morph_method
from madpad.morph import warp as W
from madpad.morph.landmark import (
    EyeAlignment,
    LandmarkMorpher,
    make_landmark,
    make_landmark_spliced,
)


# --------------------------------------------------------------------------- helpers
def _sample(sample_dir, sid: str, *, scale: float = 1.0):
    """A bundled FRLL image and its 189-point .tem landmarks (optionally downscaled)."""
    import cv2

    from madpad.io import read_image

    img = read_image(sample_dir / "neutral" / f"{sid}_03.jpg")
    pts = W.read_tem(sample_dir / "landmarks" / f"{sid}_03.tem")
    if scale != 1.0:
        h, w = img.shape[:2]
        img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        pts = pts * scale
    return img, pts


class TableLandmarks:
    """Landmark strategy that looks images up by content (no face model needed)."""

    def __init__(self, pairs):
        from madpad.io import array_sha256

        self._table = {array_sha256(im): p for im, p in pairs}
        self.calls = 0

    def __call__(self, image):
        from madpad.io import array_sha256

        self.calls += 1
        key = array_sha256(image)
        if key not in self._table:
            raise FaceNotFoundError("no face (not in table)")
        return self._table[key]


# --------------------------------------------------------------------------- geometry
def test_similarity_from_points_recovers_a_known_transform(rng):
    theta, s, t = 0.3, 1.7, np.array([12.0, -5.0])
    R = s * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    src = rng.uniform(0, 100, size=(10, 2))
    dst = src @ R.T + t
    M = W.similarity_from_points(src, dst)
    np.testing.assert_allclose(M[:, :2], R, atol=1e-9)
    np.testing.assert_allclose(M[:, 2], t, atol=1e-9)
    # two points give the exact transform
    M2 = W.similarity_from_points(src[:2], dst[:2])
    np.testing.assert_allclose(W.apply_affine(M2, src), dst, atol=1e-9)
    with pytest.raises(ValueError, match="coincide"):
        W.similarity_from_points(np.ones((3, 2)), dst[:3])


def test_triangle_affines_map_destination_vertices_onto_source_vertices(rng):
    dst = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    src = dst + rng.normal(0, 1, size=dst.shape)
    tri = W.delaunay_triangles(dst)
    assert len(tri) == 2
    A = W.triangle_affines(src, dst, tri)
    for t, v in enumerate(tri):
        mapped = np.c_[dst[v], np.ones(3)] @ A[t].T
        np.testing.assert_allclose(mapped, src[v], atol=1e-9)


def test_remap_warp_with_identical_shapes_is_the_identity(rng):
    img = rng.integers(0, 256, size=(60, 80, 3), dtype=np.uint8)
    pts = np.vstack([rng.uniform(10, 50, size=(12, 2)), W.border_points((80, 60))])
    tri = W.delaunay_triangles(pts)
    plan = W.RemapWarpPlan(pts, tri, (80, 60))
    assert (plan.index >= 0).all(), "border points must make the triangulation cover the frame"
    np.testing.assert_array_equal(plan(img, pts), img)


def test_remap_warp_agrees_with_per_triangle_warp(sample_dir):
    img, pts = _sample(sample_dir, "001", scale=0.5)
    h, w = img.shape[:2]
    border = W.border_points((w, h))
    src = np.vstack([pts, border])
    # move the face landmarks a few pixels (a smooth deformation)
    dst = src.copy()
    dst[: len(pts)] += np.c_[3 * np.sin(pts[:, 1] / 40), 2 * np.cos(pts[:, 0] / 30)]
    dst = W.clip_points(dst, (w, h))
    tri = W.delaunay_triangles(dst)
    fast = W.RemapWarpPlan(dst, tri, (w, h))(img, src)
    slow = W.TriangleWarpPlan(dst, tri, (w, h))(img, src)
    diff = np.abs(fast.astype(int) - slow.astype(int))
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 2


def test_eye_centres_for_each_landmark_scheme():
    p68 = np.zeros((68, 2))
    p68[36:42] = [30, 40]
    p68[42:48] = [70, 42]
    np.testing.assert_allclose(W.eye_centres(p68), [[30, 40], [70, 42]])
    p5 = np.array([[70, 42], [30, 40], [50, 60], [40, 80], [60, 80]], float)  # swapped: sorted left-to-right
    np.testing.assert_allclose(W.eye_centres(p5), [[30, 40], [70, 42]])
    with pytest.raises(ValueError, match="cannot find the eyes"):
        W.eye_centres(np.zeros((7, 2)))


# --------------------------------------------------------------------------- alignment
def test_portrait_alignment_puts_the_eyes_where_specified(sample_dir):
    a, pa = _sample(sample_dir, "001")
    b, pb = _sample(sample_dir, "004")
    align = EyeAlignment(mode="portrait", size=(300, 400), eye_y=0.4, eye_dist=0.3)
    al = align(a, pa, b, pb, alpha=0.5)
    assert al.image_a.shape == (400, 300, 3) and al.image_b.shape == (400, 300, 3)
    want = np.array([[(0.5 - 0.15) * 299, 0.4 * 399], [(0.5 + 0.15) * 299, 0.4 * 399]])
    np.testing.assert_allclose(W.eye_centres(al.points_a), want, atol=1e-6)
    np.testing.assert_allclose(W.eye_centres(al.points_b), want, atol=1e-6)


def test_portrait_alignment_eyes_found_again_by_dlib(sample_dir):
    """The aligned image itself (not just the transformed points) has its eyes at the targets."""
    pytest.importorskip("dlib")
    from madpad.io import read_image
    from madpad.morph.landmark import FaceLandmarks

    lm = FaceLandmarks(detect_max_side=0)
    a = read_image(sample_dir / "neutral" / "011_03.jpg")
    b = read_image(sample_dir / "neutral" / "017_03.jpg")
    align = EyeAlignment(mode="portrait", size=(360, 480), eye_y=0.45, eye_dist=0.3)
    al = align(a, lm(a), b, lm(b), alpha=0.5)
    want = align.portrait_eyes((360, 480))
    for img in (al.image_a, al.image_b):
        found = W.eye_centres(lm(img))
        assert np.abs(found - want).max() < 3.0, (found, want)


def test_weighted_alignment_leaves_a_untouched_at_alpha_0(sample_dir):
    a, pa = _sample(sample_dir, "001")
    b, pb = _sample(sample_dir, "004")
    al = EyeAlignment()(a, pa, b, pb, alpha=0.0)
    np.testing.assert_array_equal(al.image_a, a)
    np.testing.assert_allclose(W.eye_centres(al.points_b), W.eye_centres(pa), atol=1e-6)


def test_alignment_rejects_bad_settings():
    with pytest.raises(UsageError, match="alignment mode"):
        EyeAlignment(mode="center")
    with pytest.raises(UsageError, match="fractions"):
        EyeAlignment(eye_y=1.5)


# --------------------------------------------------------------------------- morphs (landmarks from .tem)
@pytest.mark.parametrize("align", ["weighted", "a", "portrait"])
def test_alpha_0_and_1_reproduce_the_aligned_sources(sample_dir, align):
    a, pa = _sample(sample_dir, "001", scale=0.5)
    b, pb = _sample(sample_dir, "004", scale=0.5)
    m = LandmarkMorpher(landmarks=TableLandmarks([(a, pa), (b, pb)]), alignment=EyeAlignment(mode=align))
    r0 = m.morph_details(a, b, alpha=0.0)
    r1 = m.morph_details(a, b, alpha=1.0)
    for got, want in ((r0.image, r0.aligned.image_a), (r1.image, r1.aligned.image_b)):
        # the morph samples the source once (alignment composed with the warp), the aligned image
        # comes from cv2.warpAffine: same positions, rounding of the sub-pixel weights may differ
        diff = np.abs(got.astype(int) - want.astype(int))
        assert diff.mean() < 0.1 and diff.max() <= 4
    if align in ("weighted", "a"):
        np.testing.assert_array_equal(r0.image, a)  # A's frame: A itself, bit-exact
    if align == "weighted":
        np.testing.assert_array_equal(r1.image, b)


def test_half_morph_shape_is_the_average_and_differs_from_both(sample_dir):
    a, pa = _sample(sample_dir, "001", scale=0.5)
    b, pb = _sample(sample_dir, "004", scale=0.5)
    m = LandmarkMorpher(landmarks=TableLandmarks([(a, pa), (b, pb)]))
    r = m.morph_details(a, b, alpha=0.5)
    np.testing.assert_allclose(r.target_points, 0.5 * (r.aligned.points_a + r.aligned.points_b))
    assert r.image.shape == a.shape and r.image.dtype == np.uint8
    for src in (a, b):
        assert np.abs(r.image.astype(int) - src.astype(int)).mean() > 3


def test_spliced_alpha_0_reproduces_a_and_keeps_a_outside_the_face(sample_dir):
    a, pa = _sample(sample_dir, "001", scale=0.5)
    b, pb = _sample(sample_dir, "004", scale=0.5)
    m = LandmarkMorpher(spliced=True, landmarks=TableLandmarks([(a, pa), (b, pb)]))
    r0 = m.morph_details(a, b, alpha=0.0)
    assert np.abs(r0.image.astype(int) - a.astype(int)).max() <= 1
    r = m.morph_details(a, b, alpha=0.5)
    outside = r.mask < 1e-3
    # outside the face only A (warped to the morph shape) contributes: no ghost of B's hair. The
    # multi-band blend spreads the lowest frequencies a little beyond the mask (shading only).
    diff = np.abs(r.image.astype(int) - r.warped_a.astype(int)).max(axis=2)
    assert diff[outside].mean() < 1.0
    assert diff[outside & _far(r.mask, 40)].max() <= 1
    inside = r.mask > 0.99
    assert np.abs(r.image[inside].astype(int) - r.warped_a[inside].astype(int)).mean() > 2


def _far(mask, px: int = 40):
    import cv2

    near = cv2.dilate((mask > 1e-3).astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8))
    return near == 0


@pytest.mark.parametrize("blend", ["laplacian", "poisson", "feather"])
def test_spliced_blends_all_run(sample_dir, blend):
    a, pa = _sample(sample_dir, "001", scale=0.4)
    b, pb = _sample(sample_dir, "004", scale=0.4)
    m = make_landmark_spliced(blend=blend, landmarks=TableLandmarks([(a, pa), (b, pb)]))
    out = m.morph(a, b, alpha=0.5)
    assert out.shape == a.shape and out.dtype == np.uint8
    assert m.params()["splice"]["blend"] == blend


def test_lab_colour_transfer_matches_mean_and_std(rng):
    src = rng.integers(60, 120, size=(40, 40, 3), dtype=np.uint8)
    ref = rng.integers(120, 220, size=(40, 40, 3), dtype=np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[5:35, 5:35] = True
    out = W.match_colour_lab(src, ref, mask)
    import cv2

    lab = lambda x: cv2.cvtColor(x.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[mask]
    np.testing.assert_allclose(lab(out).mean(0), lab(ref).mean(0), atol=1.0)
    np.testing.assert_allclose(lab(out).std(0), lab(ref).std(0), rtol=0.1, atol=1.0)


def test_strategies_are_swappable(sample_dir):
    a, pa = _sample(sample_dir, "001", scale=0.4)
    b, pb = _sample(sample_dir, "004", scale=0.4)
    m = LandmarkMorpher(landmarks=TableLandmarks([(a, pa), (b, pb)]))
    seen = {}

    def my_blend(x, y, alpha):
        seen["alpha"] = alpha
        return x

    m.set_blend(my_blend).set_warp("triangle")
    out = m.morph(a, b, alpha=0.3)
    assert seen["alpha"] == 0.3
    assert m.params()["warp"] == "triangle" and m.params()["blend"] == "my_blend"
    np.testing.assert_array_equal(out, m.morph_details(a, b, alpha=0.3).warped_a)


def test_missing_face_raises_face_not_found(sample_dir):
    a, pa = _sample(sample_dir, "001", scale=0.4)
    blank = np.full_like(a, 128)
    m = LandmarkMorpher(landmarks=TableLandmarks([(a, pa)]))
    with pytest.raises(FaceNotFoundError, match="contributor B"):
        m.morph(a, blank)


def test_bad_arguments():
    with pytest.raises(UsageError, match="alpha must be in"):
        LandmarkMorpher(landmarks=lambda im: np.zeros((5, 2))).morph_from_landmarks(
            np.zeros((8, 8, 3), np.uint8), np.zeros((5, 2)), np.zeros((8, 8, 3), np.uint8), np.zeros((5, 2)),
            alpha=1.5)
    with pytest.raises(UsageError, match="landmark_spliced only"):
        make_landmark(blend="poisson")
    with pytest.raises(UsageError, match="blend must be one of"):
        make_landmark_spliced(blend="magic")


def test_registry_entries_and_cli_hooks():
    import argparse

    assert {"landmark", "landmark_spliced", "dcmorph"} <= set(MORPH_METHODS.names())
    for name in ("landmark", "landmark_spliced"):
        p = argparse.ArgumentParser()
        MORPH_METHODS.load(name).add_cli_arguments(p.add_argument_group(name))
        args = p.parse_args(["--align", "portrait", "--portrait-size", "300x400", "--detector-set", "upsample=1"]
                            + (["--blend", "poisson"] if name == "landmark_spliced" else []))
        gen = MORPH_METHODS.load(name).from_cli(args)
        params = gen.params()
        assert params["method"] == name
        assert params["alignment"]["mode"] == "portrait" and params["alignment"]["size"] == (300, 400)
        assert params["landmarks"]["detector_params"] == {"upsample": 1}
    assert get_morph_method("landmark_spliced").spliced


# --------------------------------------------------------------------------- real FRLL images, dlib
@pytest.fixture(scope="module")
def dlib_embedder():
    pytest.importorskip("dlib")
    from madpad.face import get_embedder

    return get_embedder("dlib")


@pytest.mark.parametrize("method", ["landmark", "landmark_spliced"])
def test_morph_is_closer_to_both_contributors_than_they_are_to_each_other(sample_dir, dlib_embedder, method):
    from madpad.face import cosine_similarity
    from madpad.io import read_image

    gen = get_morph_method(method)
    for sa, sb in (("001", "007"), ("004", "032")):
        a = read_image(sample_dir / "neutral" / f"{sa}_03.jpg")
        b = read_image(sample_dir / "neutral" / f"{sb}_03.jpg")
        m = gen.morph(a, b, alpha=0.5)
        ea, eb, em = dlib_embedder.embed([a, b, m])
        s_ab = float(cosine_similarity(ea, eb))
        assert float(cosine_similarity(em, ea)) > s_ab, (method, sa, sb)
        assert float(cosine_similarity(em, eb)) > s_ab, (method, sa, sb)


def test_dlib_landmarks_find_no_face_in_a_blank_image(sample_dir):
    pytest.importorskip("dlib")
    from madpad.io import read_image

    a = read_image(sample_dir / "neutral" / "001_03.jpg")
    blank = np.full_like(a, 200)
    gen = make_landmark()
    with pytest.raises(FaceNotFoundError, match="no face"):
        gen.morph(blank, a)
    # the landmark cache: the same image is analysed once
    gen.morph(a, a[:, ::-1].copy())
    calls = gen.landmarks.calls
    gen.morph(a, a[:, ::-1].copy())
    assert gen.landmarks.calls == calls


def test_sources_of_different_sizes_morph_in_a_frame(sample_dir):
    import cv2

    a, pa = _sample(sample_dir, "001", scale=0.5)
    b, pb = _sample(sample_dir, "004", scale=0.8)
    m = LandmarkMorpher(landmarks=TableLandmarks([(a, pa), (b, pb)]))
    r = m.morph_details(a, b, alpha=0.5)
    assert r.image.shape == a.shape
    # both sources' eyes land on the same (averaged) positions of A's frame
    np.testing.assert_allclose(W.eye_centres(r.aligned.points_a), W.eye_centres(r.aligned.points_b), atol=1e-6)
    # at alpha 1 the output is B rescaled into A's frame, not a crop of B
    r1 = m.morph_details(a, b, alpha=1.0)
    b_small = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(r1.image.astype(int) - b_small.astype(int)).mean() < 6
