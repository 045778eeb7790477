"""Post-processing chains, the same chains for bona fide and morph suspects, gate-like live
captures, re-encoded pair sets, morph species per manifest, training-time augmentation of the
FR-embedding detectors, FRLL morph-family helpers and the ``tem189`` template morph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from madpad.errors import FaceNotFoundError, UsageError
from madpad.mad.chains import (
    PROFILES,
    STEPS,
    Chain,
    apply_chain,
    chain_or_profile,
    jpeg,
    parse_chain,
    random_chain,
)

REPO = Path(__file__).resolve().parents[1]


def _smooth_image(seed=0, size=96):
    """A smooth colour image (low-pass noise) with some edges: room for every step to act."""
    import cv2

    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (size // 8, size // 8, 3)).astype(np.float32)
    x = cv2.resize(x, (size, size), interpolation=cv2.INTER_CUBIC)
    x[size // 3: 2 * size // 3, size // 3: 2 * size // 3] += 40
    return np.clip(x, 0, 255).astype(np.uint8)


def _lap_energy(img):
    import cv2

    return float(cv2.Laplacian(img.astype(np.float32).mean(axis=2), cv2.CV_32F).var())


# --------------------------------------------------------------------------- chains
def test_jpeg_step_reproduces_cv2s_encoder_bytes():
    import cv2

    img = _smooth_image()
    _, buf = cv2.imencode(".jpg", img[:, :, ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, 75])
    ref = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    for spec in ("jpeg75", "jpeg(quality=75)", [{"step": "jpeg", "quality": 75}]):
        np.testing.assert_array_equal(apply_chain(img, spec, 0), ref)
    assert not np.array_equal(ref, img)


def test_each_step_changes_the_image_as_claimed():
    img = _smooth_image()
    # unsharp mask raises high-frequency (Laplacian) energy
    assert _lap_energy(apply_chain(img, "sharpen(amount=1.0,sigma=1.5)", 0)) > 1.5 * _lap_energy(img)
    # denoising removes most added sensor noise
    noisy = np.clip(img + np.random.default_rng(1).normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    for method in ("bilateral", "nlmeans"):
        out = apply_chain(noisy, f"denoise(method={method},strength=1.0)", 0)
        assert np.abs(out.astype(float) - img).mean() < 0.8 * np.abs(noisy.astype(float) - img).mean()
    # contrast 1.25 without brightness or gamma change scales the deviations from the mean by 1.25
    c = apply_chain(img, "contrast(contrast=1.25,brightness=0,gamma=1)", 0).astype(float)
    inner = (img > 40).all(axis=2) & (img < 200).all(axis=2)  # no clipping there
    ref = (img.astype(float) - img.mean()) * 1.25 + img.mean()
    assert np.abs(c[inner] - ref[inner]).max() <= 1.0
    # colour: saturation 1 and no shift leave the image alone (up to the Lab round trip)
    assert np.abs(apply_chain(img, "colour(saturation=1,shift=0;0)", 0).astype(int) - img).max() <= 3
    # a shift of +10 in b* makes the image yellower (more red+green than blue)
    y = apply_chain(img, "colour(saturation=1,shift=0;10)", 0).astype(float)
    assert (y[..., :2].mean() - y[..., 2].mean()) > (img[..., :2].mean() - img[..., 2].mean()) + 5
    # down/up resampling removes detail but keeps the size
    detailed = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    r = apply_chain(detailed, "resample(scale=0.5,down=area,up=linear)", 0)
    assert r.shape == detailed.shape and _lap_energy(r) < 0.5 * _lap_energy(detailed)
    # print-and-scan blurs the edges and adds a screen + noise (a flat area stops being flat)
    flat = np.full((64, 64, 3), 128, np.uint8)
    ps = apply_chain(flat, "print_scan(blur=1,dots=6,noise=2,tint=0;0;0,quality=90)", 0)
    assert ps.astype(float).std() > 2.0
    assert _lap_energy(apply_chain(detailed, "print_scan(blur=1.5,dots=0,noise=0,tint=0;0;0,quality=95)", 0)) \
        < 0.5 * _lap_energy(detailed)


def test_chains_are_seeded_and_record_what_they_applied():
    img = _smooth_image()
    a = apply_chain(img, "sharpen+denoise+jpeg", np.random.default_rng(5))
    np.testing.assert_array_equal(a, apply_chain(img, "sharpen+denoise+jpeg", np.random.default_rng(5)))
    assert not np.array_equal(a, apply_chain(img, "sharpen+denoise+jpeg", np.random.default_rng(6)))
    c1, c2 = random_chain(3, "attacker"), random_chain(3, "attacker")
    assert c1 == c2 and str(c1) == str(c2)
    assert len({str(random_chain(s, "attacker")) for s in range(30)}) > 20  # seeds differ
    for s in range(30):  # the spec string reads back to the same, fully specified chain
        c = random_chain(s, "attacker")
        assert parse_chain(str(c)) == c
        assert all(set(dict(st.params)) == set(STEPS[st.name].draws) for st in c.steps)
        assert set(c.names) <= set(STEPS)
    # a given parameter wins, and the noise-free steps then do not depend on the generator
    np.testing.assert_array_equal(apply_chain(img, "jpeg80", 1), jpeg(img, 80))
    assert apply_chain(img, "none", 0) is not img and np.array_equal(apply_chain(img, "", 0), img)
    assert str(parse_chain("sharpen+jpeg75")) == "sharpen+jpeg75" and str(Chain(())) == "none"


def test_attacker_profile_draws_the_issues_post_processing():
    names = [random_chain(s, "attacker").names for s in range(300)]
    seen = {n for ns in names for n in ns}
    assert seen == {"sharpen", "denoise", "colour", "contrast", "jpeg", "resample", "print_scan"}
    assert any(ns == [] for ns in names)  # sometimes nothing
    for ns in names:  # recompression or print-and-scan only at the end
        assert all(n not in ("jpeg", "print_scan") for n in ns[:-1])
    assert all(random_chain(s, "none").names == [] for s in range(5))
    assert set(PROFILES) >= {"attacker", "issuance", "jpeg", "none"}


def test_unknown_steps_and_parameters_name_the_close_match():
    with pytest.raises(UsageError, match=r"unknown processing step 'jpg'; did you mean 'jpeg'\?"):
        parse_chain("sharpen+jpg75")
    with pytest.raises(UsageError, match=r"did you mean 'amount'"):
        parse_chain("sharpen(amont=1)")
    with pytest.raises(UsageError, match=r"quality=200.0 must be in \[1, 100\]"):
        parse_chain("jpeg200")
    with pytest.raises(UsageError, match="takes no shorthand number"):
        parse_chain("sharpen5")
    with pytest.raises(UsageError, match="needs 'step'"):
        parse_chain([{"quality": 5}])
    with pytest.raises(UsageError, match=r"did you mean 'attacker'"):
        random_chain(0, "atacker")
    with pytest.raises(UsageError, match=r"unknown chain profile or step 'atacker'; did you mean 'attacker'"):
        chain_or_profile("atacker")
    assert chain_or_profile("issuance") == ("issuance", None)
    assert chain_or_profile("sharpen+jpeg75")[1] == parse_chain("sharpen+jpeg75")


# --------------------------------------------------------------------------- pair building
@pytest.fixture(scope="module")
def sample_build():
    from madpad.data import MorphRecord
    from madpad.data.frll import frll_images
    from madpad.data.sample import sample_root

    keep = {r.subject for r in frll_images(sample_root())}
    keep = set(sorted(keep)[:4])  # 4 subjects, 6 "morphs": small and fast
    images = [r for r in frll_images(sample_root()) if r.subject in keep]
    enrol = {r.subject: r.path for r in images if r.capture == "enrolment"}
    subs = sorted(enrol)
    morphs = [MorphRecord(id=f"{a}_{b}", path=enrol[a], a=str(enrol[a]), b=str(enrol[b]), subject_a=a,
                          subject_b=b, method="fake") for i, a in enumerate(subs) for b in subs[i + 1:]]
    return images, morphs


def _read(p):
    from madpad.io import read_image

    return read_image(p)


def test_suspect_chains_process_bona_fide_and_morph_suspects_alike(sample_build, tmp_path):
    from madpad.io import read_image, write_image
    from madpad.mad.pairs import (
        BuildConfig,
        build_dmad_pairs,
        prepare_suspect,
        read_pairs_csv,
    )

    images, morphs = sample_build
    base = dict(live_variants=1, suspect_long_side=48, fractions=(1.0, 0.0, 0.0), split_names=("train", "dev", "test"),
                seed=2)
    plain = build_dmad_pairs(images, morphs, tmp_path / "plain", config=BuildConfig(**base), progress=False)
    fixed = build_dmad_pairs(images, morphs, tmp_path / "fixed",
                             config=BuildConfig(**base, suspect_chains="jpeg(quality=20)"), progress=False)
    pp = read_pairs_csv(plain.files["train"], require_labels=True)
    pf = read_pairs_csv(fixed.files["train"], require_labels=True)
    assert [p.id for p in pp] == [p.id for p in pf] and {p.label for p in pf} == {"bona_fide", "attack"}
    assert "suspect_chain" not in pp[0].extra  # default: no chain, no column, names as before
    assert all(Path(p.suspect).name in (f"bf_{p.subjects[0]}.jpg", f"m_fake_{p.id.rsplit('_', 1)[0][2:]}.jpg")
               for p in pp if p.label == "bona_fide")
    for p in pf:  # every suspect, both classes: prepared, JPEG'd at quality 20, then stored at 90
        assert p.extra["suspect_chain"] == "jpeg20"
        src = next(r.path for r in images if r.capture == "enrolment" and r.subject == p.subjects[0])
        expected = jpeg(prepare_suspect(read_image(src), long_side=48, jpeg_quality=0), 20)
        f = tmp_path / "expected.jpg"
        write_image(f, expected, quality=90)
        np.testing.assert_array_equal(_read(p.suspect), _read(f))
        assert Path(p.suspect).name != Path(next(q.suspect for q in pp if q.id == p.id)).name
    # a profile draws one chain per suspect from the same distribution for both classes
    prof = build_dmad_pairs(images, morphs, tmp_path / "prof", config=BuildConfig(**base, suspect_chains="attacker"),
                            progress=False)
    pr = read_pairs_csv(prof.files["train"], require_labels=True)
    chains = {lab: {p.extra["suspect_chain"] for p in pr if p.label == lab} for lab in ("bona_fide", "attack")}
    assert all(len(c) >= 2 for c in chains.values())
    again = build_dmad_pairs(images, morphs, tmp_path / "prof2", config=BuildConfig(**base, suspect_chains="attacker"),
                             progress=False)
    assert [p.extra["suspect_chain"] for p in read_pairs_csv(again.files["train"])] == \
        [p.extra["suspect_chain"] for p in pr]
    with pytest.raises(UsageError, match="did you mean 'attacker'"):
        build_dmad_pairs(images, morphs, tmp_path / "bad", config=BuildConfig(**base, suspect_chains="atacker"))


def test_gate_live_profile_is_darker_blurrier_and_leaves_the_default_alone():
    from madpad.mad.pairs import (
        LIVE_PROFILES,
        LiveCaptureVariation,
        live_profile,
        vary_live_capture,
    )

    img = _smooth_image(size=160)
    default = [vary_live_capture(img, seed=s) for s in range(12)]
    explicit = [vary_live_capture(img, seed=s, ranges=LiveCaptureVariation()) for s in range(12)]
    assert all(np.array_equal(a, b) for a, b in zip(default, explicit))
    gate = [vary_live_capture(img, seed=s, ranges=live_profile("gate")) for s in range(12)]
    assert np.mean([g.mean() for g in gate]) < np.mean([d.mean() for d in default]) - 10
    # no exposure / perspective draw in the default profile: the generator stream is the same
    assert LIVE_PROFILES["default"].exposure == (1.0, 1.0) and LIVE_PROFILES["default"].perspective == 0
    with pytest.raises(UsageError, match="did you mean 'gate'"):
        live_profile("gates")


def test_reencode_suspects_round_trip(tmp_path):
    from madpad.io import write_image
    from madpad.mad.base import Pair
    from madpad.mad.pairs import read_pairs_csv, reencode_suspects

    pairs = []
    for i in range(3):
        s, live = tmp_path / f"s{i}.jpg", tmp_path / f"l{i}.jpg"
        write_image(s, _smooth_image(i))
        write_image(live, _smooth_image(10 + i))
        pairs.append(Pair(f"p{i}", s, live, "attack" if i else "bona_fide", "m" if i else "", (str(i),)))
    pairs.append(Pair("p3", pairs[1].suspect, pairs[0].live, "attack", "m", ("1",)))  # shared suspect
    out = reencode_suspects(pairs, "jpeg(quality=30)", tmp_path / "re")
    back = read_pairs_csv(tmp_path / "re" / "pairs.csv", require_labels=True)
    assert [(p.id, p.label, p.species, p.subjects) for p in back] == \
        [(p.id, p.label, p.species, p.subjects) for p in pairs]
    for old, new, b in zip(pairs, out, back):
        assert Path(b.live).resolve() == Path(old.live).resolve()  # live captures untouched
        assert Path(b.suspect).resolve() == Path(new.suspect).resolve() and b.extra["suspect_chain"] == "jpeg30"
        np.testing.assert_array_equal(_read(b.suspect), jpeg(_read(old.suspect), 30))
    assert out[3].suspect == out[1].suspect and len(list((tmp_path / "re" / "suspect").iterdir())) == 3
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "re" / "suspect").iterdir()}
    reencode_suspects(pairs, "jpeg(quality=30)", tmp_path / "re")  # resume: nothing rewritten
    assert stamp == {p: p.stat().st_mtime_ns for p in (tmp_path / "re" / "suspect").iterdir()}


def test_morph_manifests_can_name_their_species(sample_build, tmp_path):
    from madpad.data import write_morphs
    from madpad.mad.pairs import (
        BuildConfig,
        build_dmad_pairs,
        load_morph_manifests,
        parse_morph_source,
        read_pairs_csv,
    )

    assert parse_morph_source("a/m.csv") == ("a/m.csv", None)
    assert parse_morph_source("a/m.csv=spliced_poisson") == ("a/m.csv", "spliced_poisson")
    assert parse_morph_source({"path": "a/m.csv", "species": "tem189"}) == ("a/m.csv", "tem189")
    assert parse_morph_source("a/x=1/m.csv") == ("a/x=1/m.csv", None)
    with pytest.raises(UsageError, match="PATH=SPECIES"):
        parse_morph_source({"file": "m.csv"})
    images, morphs = sample_build
    import dataclasses
    import shutil

    for name in ("one", "two"):  # two families from the same registered method
        (tmp_path / name).mkdir()
        recs = []
        for m in morphs:
            shutil.copy(m.path, tmp_path / name / f"{m.id}.jpg")
            recs.append(dataclasses.replace(m, path=tmp_path / name / f"{m.id}.jpg"))
        write_morphs(tmp_path / name / "manifest.csv", recs, root=tmp_path / name)
    loaded = load_morph_manifests([str(tmp_path / "one" / "manifest.csv"),
                                   {"path": str(tmp_path / "two" / "manifest.csv"), "species": "fake_b"}])
    assert len(loaded) == 2 * len(morphs)
    built = build_dmad_pairs(images, loaded, tmp_path / "built", progress=False,
                             config=BuildConfig(live_variants=1, suspect_long_side=32, fractions=(1.0, 0.0, 0.0)))
    att = [p for p in read_pairs_csv(built.files["train"]) if p.label == "attack"]
    assert {p.species for p in att} == {"fake", "fake_b"}
    by = {s: {Path(p.suspect).name for p in att if p.species == s} for s in ("fake", "fake_b")}
    assert len(by["fake"]) == len(by["fake_b"]) == len(morphs) and not by["fake"] & by["fake_b"]


# --------------------------------------------------------------------------- training augmentation
@pytest.fixture(scope="module")
def tiny_pairs():
    pytest.importorskip("dlib")
    import cv2

    from madpad.data.sample import sample_root
    from madpad.mad.base import Pair

    root = sample_root()
    neutral = sorted((root / "neutral").glob("*.jpg"))[:2]
    small = {n: cv2.resize(_read(n), (240, 240), interpolation=cv2.INTER_AREA) for n in neutral}
    pairs = []
    for i, n in enumerate(neutral):
        s = n.stem.split("_")[0]
        live = cv2.resize(_read(root / "smiling" / f"{s}_08.jpg"), (240, 240), interpolation=cv2.INTER_AREA)
        blend = ((small[n].astype(np.float32) + small[neutral[1 - i]]) / 2).astype(np.uint8)
        pairs += [Pair(f"bf_{s}", small[n], live, "bona_fide", subjects=(s,)),
                  Pair(f"m_{s}", blend, live, "attack", species="blend", subjects=(s, "x"))]
    return pairs


FAST = {"embedder_params": {"detector": {"name": "dlib_hog", "upsample": 1, "max_side": 400}},
        "classifier": "logreg", "C": 1.0}


def test_augment_copies_add_seeded_training_views_and_zero_changes_nothing(tiny_pairs):
    from madpad.mad import get_detector
    from madpad.mad.augment import AugmentedView, augmented_pairs
    from madpad.mad.cache import FeatureCache

    cache = FeatureCache()
    d0 = get_detector("embedding_svm", **FAST).fit(tiny_pairs, cache=cache)
    plain = get_detector("embedding_svm", **FAST, augment_copies=0).fit(tiny_pairs, cache=cache)
    for k in d0.model_:
        assert np.array_equal(np.asarray(d0.model_[k]), np.asarray(plain.model_[k]))
    misses = cache.misses
    a1 = get_detector("embedding_svm", **FAST, augment_copies=2).fit(tiny_pairs, cache=cache)
    assert a1.class_counts_ == {"bona_fide": 6, "attack": 6}  # 3x the 2 + 2 pairs
    assert cache.misses - misses == 2 * 2 * len(tiny_pairs)  # every view analysed once
    misses = cache.misses
    a2 = get_detector("embedding_svm", **FAST, augment_copies=2).fit(tiny_pairs, cache=cache)
    assert cache.misses == misses  # the views' features come from the cache (keyed by augmentation)
    np.testing.assert_array_equal(a1.score(tiny_pairs), a2.score(tiny_pairs))
    assert not np.allclose(a1.score(tiny_pairs), d0.score(tiny_pairs))
    assert a1.get_config()["augment_copies"] == 2
    # views: seeded by (seed, copy, pair id), cache keys differ from the source's and per copy
    v = augmented_pairs(tiny_pairs, 2, seed=0)
    assert [p.id for p in v[:2]] == ["bf_001#aug1", "m_001#aug1"] if tiny_pairs[0].id == "bf_001" else True
    assert isinstance(v[0].suspect, AugmentedView)
    np.testing.assert_array_equal(np.asarray(v[0].suspect), np.asarray(augmented_pairs(tiny_pairs, 1)[0].suspect))
    assert not np.array_equal(np.asarray(v[0].suspect), np.asarray(v[len(tiny_pairs)].suspect))
    keys = {cache.key(p.suspect) for p in v} | {cache.key(tiny_pairs[0].suspect)}
    assert len(keys) == len(v) + 1
    with pytest.raises(UsageError, match="augment_copies"):
        get_detector("embedding_svm", augment_copies=-1)
    with pytest.raises(UsageError, match="did you mean 'attacker'"):
        get_detector("embedding_svm", augment_copies=1, augment_profile="atacker")


def test_low_res_live_views_shrink_only_the_drawn_live_captures(tiny_pairs):
    from madpad.mad import get_detector
    from madpad.mad.augment import (
        augmentation_rng,
        augmented_pairs,
        check_low_res,
        low_res_draw,
        shrink_to_side,
    )

    src_side = min(np.asarray(tiny_pairs[0].live).shape[:2])
    a0 = augmented_pairs(tiny_pairs, 3)
    a1 = augmented_pairs(tiny_pairs, 3, low_res=1.0, low_res_side=(100, 160))
    for p0, p1 in zip(a0, a1):
        # the suspect view and the other draws are those of the plain augmentation
        assert p1.suspect.identity == p0.suspect.identity
        np.testing.assert_array_equal(np.asarray(p1.suspect), np.asarray(p0.suspect))
        live = np.asarray(p1.live)
        assert 100 <= min(live.shape[:2]) <= 160 < src_side, live.shape
        assert "lowres-side=" in p1.live.identity and p1.live.identity != p0.live.identity
    # with p = 0.5 some views are shrunk; the others keep identity and pixels (so cached features)
    a5 = augmented_pairs(tiny_pairs, 3, low_res=0.5, low_res_side=(100, 160))
    shrunk = [p5 for p5 in a5 if "lowres-side=" in p5.live.identity]
    assert 0 < len(shrunk) < len(a5)
    for p0, p5 in zip(a0, a5):
        live = np.asarray(p5.live)
        if p5 in shrunk:
            assert min(live.shape[:2]) <= 160
        else:
            assert p5.live.identity == p0.live.identity
            np.testing.assert_array_equal(live, np.asarray(p0.live))
    # the draw: probability p, sides log-uniform inside the range, same stream length either way
    sides = [low_res_draw(augmentation_rng(0, 1, i, "live-lowres"), 0.3, (100, 240)) for i in range(3000)]
    drawn = np.array([s for s in sides if s is not None])
    assert 0.27 < len(drawn) / len(sides) < 0.33
    assert drawn.min() >= 100 and drawn.max() <= 240
    assert abs(np.median(drawn) - np.sqrt(100 * 240)) < 8  # log-uniform: median at the geometric mean
    # shrinking keeps the aspect and leaves small images alone
    img = np.zeros((300, 200, 3), np.uint8)
    assert shrink_to_side(img, 100).shape == (150, 100, 3)
    assert shrink_to_side(img, 250) is img
    # the detector passes its option through; bad values are one clear error
    det = get_detector("embedding_svm", **FAST, augment_copies=1, augment_low_res=1.0)
    views = det._with_augmented_copies(tiny_pairs)[len(tiny_pairs):]
    assert all(min(np.asarray(v.live).shape[:2]) < src_side for v in views)
    assert det.get_config()["augment_low_res"] == 1.0
    assert "augment_low_res" not in get_detector("embedding_svm", augment_copies=1).get_config()
    with pytest.raises(UsageError, match=r"augment_low_res must be a probability in \[0, 1\]; got 1.5"):
        get_detector("embedding_svm", augment_copies=1, augment_low_res=1.5)
    with pytest.raises(ValueError, match="8 <= low <= high"):
        check_low_res(0.5, (200, 100))


def test_grey_live_views_have_no_colour_and_leave_the_rest_alone(tiny_pairs):
    from madpad.mad import get_detector
    from madpad.mad.augment import augmented_pairs

    a0 = augmented_pairs(tiny_pairs, 2, low_res=0.5)
    a1 = augmented_pairs(tiny_pairs, 2, low_res=0.5, grey=1.0)
    for p0, p1 in zip(a0, a1):
        live0, live1 = np.asarray(p0.live).astype(int), np.asarray(p1.live).astype(int)
        assert np.abs(live1[..., 0] - live1[..., 1]).max() <= 1 and np.abs(live1[..., 1] - live1[..., 2]).max() <= 1
        assert np.abs(live0[..., 0] - live0[..., 1]).max() > 10  # the colour views keep their colour
        assert live1.shape == live0.shape  # the same low-resolution draw
        assert p1.live.identity == p0.live.identity + "|no-colour"
        np.testing.assert_array_equal(np.asarray(p1.suspect), np.asarray(p0.suspect))
    half = augmented_pairs(tiny_pairs, 4, low_res=0.5, grey=0.5)
    assert 0 < sum(p.live.identity.endswith("|no-colour") for p in half) < len(half)
    assert [p.live.identity for p in augmented_pairs(tiny_pairs, 2, low_res=0.5, grey=0.0)] == \
        [p.live.identity for p in a0]
    det = get_detector("embedding_svm", **FAST, augment_copies=1, augment_grey=0.3)
    assert det.get_config()["augment_grey"] == 0.3
    with pytest.raises(UsageError, match=r"augment_grey must be a probability in \[0, 1\]; got -0.1"):
        get_detector("embedding_svm", augment_copies=1, augment_grey=-0.1)


def test_out_of_focus_live_views_blur_by_a_fraction_of_the_side_and_leave_the_rest_alone(tiny_pairs):
    import cv2

    from madpad.mad import get_detector
    from madpad.mad.augment import (
        BLUR_SIDE_FRACTION,
        AugmentConfig,
        augmentation_rng,
        augmented_pairs,
        blur_draw,
        live_augmentation,
        shrink_to_side,
    )

    def sharpness(img):
        return cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64), cv2.CV_64F).var()

    a0 = augmented_pairs(tiny_pairs, 2, low_res=0.5)
    a1 = augmented_pairs(tiny_pairs, 2, low_res=0.5, blur=1.0)
    for p0, p1 in zip(a0, a1):
        assert p1.live.identity.startswith(p0.live.identity + "|blur-side=")  # the other draws are the same
        sigma = float(p1.live.identity.rsplit("=", 1)[1])
        assert BLUR_SIDE_FRACTION[0] <= sigma <= BLUR_SIDE_FRACTION[1]
        live0, live1 = np.asarray(p0.live), np.asarray(p1.live)
        assert live1.shape == live0.shape and sharpness(live1) < sharpness(live0)
        np.testing.assert_array_equal(np.asarray(p1.suspect), np.asarray(p0.suspect))
    # with p = 0.5 some views are blurred; the others keep identity and pixels (so cached features)
    half = augmented_pairs(tiny_pairs, 6, low_res=0.5, blur=0.5)
    assert 0 < sum("|blur-side=" in p.live.identity for p in half) < len(half)
    for p0, ph in zip(augmented_pairs(tiny_pairs, 6, low_res=0.5), half):
        if "|blur-side=" not in ph.live.identity:
            assert ph.live.identity == p0.live.identity
            np.testing.assert_array_equal(np.asarray(ph.live), np.asarray(p0.live))
    # its own stream: the blur draws are not the grey or low-resolution draws
    mixed = augmented_pairs(tiny_pairs, 6, low_res=0.5, grey=0.5, blur=0.5)
    flags = [("|blur-side=" in p.live.identity, "|no-colour" in p.live.identity, "lowres-side" in p.live.identity)
             for p in mixed]
    assert [f[0] for f in flags] == ["|blur-side=" in p.live.identity for p in half]
    assert [f[0] for f in flags] != [f[1] for f in flags] and [f[0] for f in flags] != [f[2] for f in flags]
    # sigma = fraction x the SHORTEST side: a 1 px line in a 300 x 600 image, fraction 0.01 -> sigma 3 px,
    # whose peak is 255 / (sqrt(2 pi) 3) = 33.9 grey levels (the longest side would give 17.0)
    line = np.zeros((300, 600, 3), np.uint8)
    line[:, 301] = 255
    still = AugmentConfig(strength=0.0)
    out = live_augmentation(line, augmentation_rng(0, 1, "x"), still, blur=0.01)
    assert abs(int(out[150, 301, 0]) - 255 / (np.sqrt(2 * np.pi) * 3)) <= 1, out[150, 299:304, 0]
    # the blur follows the shrink (a camera that sees the face small AND out of focus), scaled to the new side
    face = np.asarray(tiny_pairs[0].live)
    np.testing.assert_array_equal(live_augmentation(face, augmentation_rng(0, 1, "x"), still, side=120, blur=0.02),
                                  cv2.GaussianBlur(shrink_to_side(face, 120), (0, 0), 0.02 * 120))
    # the draw: probability p, log-uniform inside the range, the same two draws either way
    draws = [blur_draw(augmentation_rng(0, 1, i, "live-blur"), 0.3) for i in range(3000)]
    drawn = np.array([d for d in draws if d is not None])
    assert 0.27 < len(drawn) / len(draws) < 0.33
    assert drawn.min() >= BLUR_SIDE_FRACTION[0] and drawn.max() <= BLUR_SIDE_FRACTION[1]
    assert abs(np.log(np.median(drawn)) - np.log(np.sqrt(np.prod(BLUR_SIDE_FRACTION)))) < 0.05
    # the detector passes its option through; a bad value is one clear error
    det = get_detector("embedding_svm", **FAST, augment_copies=1, augment_blur=1.0)
    assert all("|blur-side=" in v.live.identity for v in det._with_augmented_copies(tiny_pairs)[len(tiny_pairs):])
    assert det.get_config()["augment_blur"] == 1.0
    assert "augment_blur" not in get_detector("embedding_svm", augment_copies=1).get_config()
    with pytest.raises(UsageError, match=r"augment_blur must be a probability in \[0, 1\]; got 2"):
        get_detector("dmad_cues", augment_copies=1, augment_blur=2)


def test_mirrored_test_time_average_is_the_mean_of_both_views(tiny_pairs, tmp_path):
    from madpad.mad import get_detector, load_detector
    from madpad.mad.augment import mirrored_pairs
    from madpad.mad.cache import FeatureCache

    cache = FeatureCache()
    plain = get_detector("embedding_svm", **FAST).fit(tiny_pairs, cache=cache)
    tta = get_detector("embedding_svm", **FAST, tta="mirror").fit(tiny_pairs, cache=cache)
    mirrored = mirrored_pairs(tiny_pairs)
    np.testing.assert_array_equal(np.asarray(mirrored[0].suspect), np.asarray(tiny_pairs[0].suspect)[:, ::-1])
    np.testing.assert_array_equal(np.asarray(mirrored[0].live), np.asarray(tiny_pairs[0].live)[:, ::-1])
    s0, sm = plain.score(tiny_pairs), plain.score(mirrored)
    assert not np.allclose(s0, sm)  # the mirror is another view of the pair
    np.testing.assert_allclose(tta.score(tiny_pairs), (s0 + sm) / 2)
    # the checkpoint keeps the option; a detector without it records nothing
    tta.save(tmp_path / "m")
    again = load_detector(tmp_path / "m")
    assert again.get_config()["tta"] == "mirror" and "tta" not in plain.get_config()
    np.testing.assert_allclose(again.score(tiny_pairs), tta.score(tiny_pairs))
    # C chosen on dev with the averaged scores: the mirrored dev pairs are analysed too
    dev = tiny_pairs[:2]
    auto = {**FAST, "C": "auto", "selection": "pooled"}
    c1, c2 = FeatureCache(), FeatureCache()
    get_detector("embedding_svm", **auto).fit(tiny_pairs, dev=dev, cache=c1)
    get_detector("embedding_svm", **auto, tta="mirror").fit(tiny_pairs, dev=dev, cache=c2)
    assert c2.misses - c1.misses == len({c2.key(p.suspect) for p in mirrored_pairs(dev)}
                                        | {c2.key(p.live) for p in mirrored_pairs(dev)})
    with pytest.raises(UsageError, match=r"tta must be one of \[None, 'mirror'\]; got 'flip'"):
        get_detector("embedding_svm", tta="flip")


def test_foundation_suspect_augmentation_goes_through_a_chain():
    from madpad.mad.foundation import FoundationDetector

    tiny = dict(backbone="madpad-tiny-vit", model_config="madpad-tiny-vit", pretrained=None, device="cpu",
                progress=False, augment=1.0)
    img = _smooth_image(size=48)
    outs = {}
    for prof in ("none", "jpeg"):
        det = FoundationDetector(**tiny, augment_chains=prof)
        det._img_cache = {det._memo_key(img): img}
        det._to_tensor = lambda x: x
        outs[prof] = {r: det._train_tensor(img, epoch=0, item=3, role=r) for r in ("suspect", "live")}
    np.testing.assert_array_equal(outs["none"]["live"], outs["jpeg"]["live"])  # live: no chain
    assert not np.array_equal(outs["none"]["suspect"], outs["jpeg"]["suspect"])
    with pytest.raises(UsageError, match="did you mean 'attacker'"):
        FoundationDetector(**tiny, augment_chains="atacker")


# --------------------------------------------------------------------------- FRLL morph families
def test_split_pairs_draw_alphas_per_pair_and_pick_similar_partners(load_script):
    m = load_script(REPO / "benchmarks" / "frll_split_morph_pairs.py")
    assert m.parse_alphas("0.4,0.5,0.6") == [0.4, 0.5, 0.6]
    with pytest.raises(UsageError, match="--alphas"):
        m.parse_alphas("0.4,1.5")
    draws = [m.pair_alpha([0.4, 0.5, 0.6], 0, f"p{i}") for i in range(60)]
    assert draws == [m.pair_alpha([0.4, 0.5, 0.6], 0, f"p{i}") for i in range(60)]
    assert set(draws) == {0.4, 0.5, 0.6} and m.pair_alpha([0.5], 0, "x") == 0.5
    assert draws != [m.pair_alpha([0.4, 0.5, 0.6], 1, f"p{i}") for i in range(60)]
    # a ~ b (cos 0.99), c ~ d, b is the woman closest to c; e is a man
    e = np.array([[1, 0, 0], [0.99, 0.14, 0], [0, 1, 0], [0.1, 0.99, 0], [1, 0, 0]], dtype=float)
    g = {"a": "f", "b": "f", "c": "f", "d": "f", "e": "m"}
    assert m.most_similar_partners(list("abcde"), e, g, 1) == [("a", "b"), ("c", "d")]
    assert ("b", "c") in m.most_similar_partners(list("abcde"), e, g, 2)


def test_template_morph_uses_the_tem_points_of_the_source(tmp_path):
    import cv2

    from madpad.data.sample import sample_root
    from madpad.morph import get_morph_method
    from madpad.morph.template import TemplateLandmarks
    from madpad.morph.warp import read_tem

    root = sample_root()
    a, b = _read(root / "neutral" / "001_03.jpg"), _read(root / "neutral" / "007_03.jpg")
    half = cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2), interpolation=cv2.INTER_AREA)
    lm = TemplateLandmarks(root / "landmarks")
    pts = read_tem(root / "landmarks" / "001_03.tem")
    np.testing.assert_allclose(lm(a), pts)
    np.testing.assert_allclose(lm(half), pts * [half.shape[1] / a.shape[1], half.shape[0] / a.shape[0]])
    with pytest.raises(FaceNotFoundError, match="no .tem template"):
        lm(np.full_like(half, 90))
    gen = get_morph_method("tem189", tem_dir=root / "landmarks")
    sa, sb = (cv2.resize(x, (300, 300), interpolation=cv2.INTER_AREA) for x in (a, b))
    m = gen.morph(sa, sb, alpha=0.5)
    assert m.shape == sa.shape and not np.array_equal(m, sa) and not np.array_equal(m, sb)
    np.testing.assert_array_equal(gen.morph(sa, sb, alpha=0.5), m)
    res = gen.morph_details(sa, sb, alpha=0.5)
    assert len(res.target_points) == 189  # the template's points, not dlib's 68
    assert gen.params()["method"] == "tem189" and gen.params()["landmarks"]["landmarker"] == "tem"
    with pytest.raises(UsageError, match="tem_dir"):
        get_morph_method("tem189")
