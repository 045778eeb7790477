"""Bad input files (issue 13, part A): images that used to decode into something wrong, faces
that are turned or several, huge images and decompression bombs, corrupt checkpoints and
duplicate comparison rows. Every failure is one line naming the file (or row), never a crash."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from madpad.data.sample import sample_root
from madpad.errors import CheckpointError, ImageReadError, UsageError
from madpad.io import as_rgb_uint8, read_image


def _faces() -> list[Path]:
    return sorted((sample_root() / "neutral").glob("*.jpg"))


@pytest.fixture(scope="module")
def face_rgb() -> np.ndarray:
    return read_image(_faces()[0])


@pytest.fixture(scope="module")
def face_landmarks(face_rgb):
    from madpad.face import analyze_face

    a = analyze_face(face_rgb)
    assert a.status == "ok", a.error
    return a.landmarks


# --------------------------------------------------------------------------- 16-bit images
def test_16bit_grey_png_of_a_real_face_is_scaled_not_white(face_rgb, tmp_path):
    from madpad.face import analyze_face

    grey8 = np.asarray(Image.fromarray(face_rgb).convert("L"))
    p = tmp_path / "grey16.png"
    Image.fromarray(grey8.astype(np.uint16) * 257).save(p)  # full 16-bit range, mode I;16
    assert Image.open(p).mode in ("I;16", "I")
    img = read_image(p)
    assert img.shape == face_rgb.shape and img.dtype == np.uint8
    assert np.array_equal(img[..., 0], img[..., 2])
    assert np.abs(img[..., 0].astype(int) - grey8).max() <= 1  # was all 255 (clipped)
    assert analyze_face(p).status == "ok"


def test_16bit_rgb_png_of_a_real_face_matches_the_8bit_image(face_rgb, tmp_path):
    import cv2

    p = tmp_path / "rgb16.png"
    rgb16 = face_rgb.astype(np.uint16) * 257
    assert cv2.imwrite(str(p), np.ascontiguousarray(rgb16[..., ::-1]))
    assert np.abs(read_image(p).astype(int) - face_rgb).max() <= 1


def test_uint16_array_is_scaled_by_257():
    a = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    assert as_rgb_uint8(a)[0, :, 0].tolist() == [0, 1, 128, 255]


# --------------------------------------------------------------------------- EXIF and turned faces
def _jpeg_with_orientation(path: Path, rgb: np.ndarray, orientation: int) -> Path:
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.save(path, exif=exif.tobytes(), quality=95)
    return path


def test_exif_orientation_is_applied(face_rgb, tmp_path):
    stored = np.ascontiguousarray(np.rot90(face_rgb, 1))  # pixels turned 90 degrees counter-clockwise
    p = _jpeg_with_orientation(tmp_path / "o6.jpg", stored, 6)  # 6: display turned 90 degrees clockwise
    img = read_image(p)
    assert img.shape == face_rgb.shape
    assert np.abs(img.astype(int) - face_rgb).mean() < 3


def test_a_contradicting_exif_orientation_is_not_an_ok_face(face_rgb, tmp_path):
    from madpad.face import analyze_face

    p = _jpeg_with_orientation(tmp_path / "wrong.jpg", face_rgb, 6)  # upright pixels, tag says turn them
    a = analyze_face(p)
    assert a.status != "ok"


def test_upright_problem_from_landmark_geometry(face_landmarks, face_rgb):
    from madpad.face import upright_problem

    h, w = face_rgb.shape[:2]
    assert upright_problem(face_landmarks) is None
    flipped = np.column_stack([w - 1 - face_landmarks[:, 0], h - 1 - face_landmarks[:, 1]])  # 180 degrees
    msg = upright_problem(flipped)
    assert msg and msg.startswith("face not upright")
    turned = np.column_stack([face_landmarks[:, 1], w - 1 - face_landmarks[:, 0]])  # 90 degrees
    assert "rotated by" in upright_problem(turned)
    # upside down but with the eye order kept (mouth above the eyes): the second check catches it
    mirrored = np.column_stack([face_landmarks[:, 0], h - 1 - face_landmarks[:, 1]])
    assert "mouth is not below the eyes" in upright_problem(mirrored)


class _FiveDetector:
    """A detector that finds one face with the given five points."""

    name = "stub5"

    def __init__(self, lm5):
        self.lm5 = np.asarray(lm5, dtype=float)

    def detect(self, image):
        from madpad.face.types import FaceDetection

        lo, hi = self.lm5.min(axis=0) - 40, self.lm5.max(axis=0) + 40
        return [FaceDetection([lo[0], lo[1], hi[0], hi[1]], 1.0, landmarks5=self.lm5)]


def test_analyze_face_fails_an_upside_down_face(face_rgb):
    from madpad.face import analyze_face

    lm5 = np.array([[250.0, 284], [345, 281], [294, 328], [264, 380], [335, 378]])
    assert analyze_face(face_rgb, detector=_FiveDetector(lm5), landmarker=None).status == "ok"
    upside = np.column_stack([599 - lm5[:, 0], 599 - lm5[:, 1]])
    assert analyze_face(face_rgb, detector=_FiveDetector(upside), landmarker=None).status == "ok"  # not asked
    a = analyze_face(face_rgb, detector=_FiveDetector(upside), landmarker=None, check_upright=True)
    assert a.status == "failed" and "not upright" in a.error
    assert a.detection is not None and a.n_faces == 1


def test_generate_marks_a_morph_with_an_upside_down_contributor_failed(face_rgb, face_landmarks, tmp_path):
    from madpad.data import load_morphs
    from madpad.morph.batch import MorphRequest, run_morph_job
    from madpad.morph.landmark import LandmarkMorpher

    other = read_image(_faces()[1])
    from madpad.face import analyze_face

    other_lm = analyze_face(other).landmarks
    h, w = face_rgb.shape[:2]
    upside_img = np.ascontiguousarray(face_rgb[::-1, ::-1])
    # what a landmarker that follows the face (e.g. a rotation-aware one) finds on the turned image
    upside_lm = np.column_stack([w - 1 - face_landmarks[:, 0], h - 1 - face_landmarks[:, 1]])
    table = {face_rgb.tobytes(): face_landmarks, other.tobytes(): other_lm, upside_img.tobytes(): upside_lm}

    def landmarks(img):
        return table[np.ascontiguousarray(img).tobytes()]

    paths = {}
    for name, img in (("a", face_rgb), ("b", other), ("ud", upside_img)):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray(img).save(paths[name])
    reqs = [MorphRequest("a__b", paths["a"], paths["b"], "1", "2"),
            MorphRequest("ud__b", paths["ud"], paths["b"], "1", "2"),
            MorphRequest("a__ud", paths["a"], paths["ud"], "1", "2")]
    summary = run_morph_job(reqs, LandmarkMorpher(landmarks=landmarks), tmp_path / "out", method="landmark",
                            progress=False, max_side=None)
    rows = {r.id: r for r in load_morphs(summary.manifest)}
    assert rows["a__b"].status == "ok"
    assert rows["ud__b"].status == "failed" and rows["ud__b"].error.startswith("contributor A: face not upright")
    assert rows["a__ud"].status == "failed" and rows["a__ud"].error.startswith("contributor B: face not upright")
    assert not (tmp_path / "out" / "ud__b.png").exists()


def _read_manifest(path: Path) -> dict:
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


def test_generate_records_the_face_used_when_two_are_present(tmp_path):
    from madpad.generate import main

    a, b, c = (read_image(p) for p in _faces()[:3])
    canvas = np.full((600, 1000, 3), 255, np.uint8)
    canvas[:, :600] = a
    canvas[100:500, 600:1000] = np.asarray(Image.fromarray(b).resize((400, 400)))
    Image.fromarray(canvas).save(tmp_path / "two.png")
    Image.fromarray(c).save(tmp_path / "c.png")
    (tmp_path / "pairs.csv").write_text("id,a,b\nm1,two.png,c.png\n")
    assert main(["--method", "landmark", "--pairs", str(tmp_path / "pairs.csv"), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 0
    row = _read_manifest(tmp_path / "o" / "manifest.csv")["m1"]
    assert row["status"] == "ok"
    assert row["faces_a"] == "2" and row["faces_b"] == "1"
    x0, _, x1, _ = map(float, row["face_a_box"].split())
    assert x1 <= 600 and x1 - x0 > 150  # the larger face (left), in full-image pixels


# --------------------------------------------------------------------------- size caps and bombs
def test_max_side_bounds_the_image_read_and_the_morph(tmp_path):
    from madpad.generate import main

    big = np.asarray(Image.open(_faces()[0]).resize((2400, 2400), Image.Resampling.BICUBIC))
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=90)
    small = read_image(tmp_path / "big.jpg", max_side=500)
    assert max(small.shape[:2]) == 500
    Image.open(_faces()[1]).save(tmp_path / "b.jpg")
    (tmp_path / "pairs.csv").write_text("id,a,b\nm1,big.jpg,b.jpg\nm2,b.jpg,big.jpg\n")
    assert main(["--method", "landmark", "--pairs", str(tmp_path / "pairs.csv"), "--out", str(tmp_path / "o"),
                 "--max-side", "400", "--no-progress"]) == 0
    rows = _read_manifest(tmp_path / "o" / "manifest.csv")
    assert rows["m1"]["status"] == "ok" and rows["m2"]["status"] == "ok"
    assert max(Image.open(tmp_path / "o" / "m1.png").size) <= 400


def test_generate_rejects_a_tiny_max_side(tmp_path, capsys):
    from madpad.generate import main

    (tmp_path / "pairs.csv").write_text("a,b\nx.png,y.png\n")
    assert main(["--method", "landmark", "--pairs", str(tmp_path / "pairs.csv"), "--out", str(tmp_path / "o"),
                 "--max-side", "10"]) == 2
    assert "--max-side" in capsys.readouterr().err


def test_decompression_bomb_is_one_line_naming_the_file(tmp_path, monkeypatch):
    p = tmp_path / "bomb.png"
    Image.new("L", (100, 100)).save(p)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10000 px > 2 x limit: Pillow refuses it
    with pytest.raises(ImageReadError) as ei:
        read_image(p)
    msg = str(ei.value)
    assert msg.startswith(str(p)) and "decompression bomb" in msg and "\n" not in msg


@pytest.mark.parametrize("content", [b"", b"hello, I am text\n", "png-truncated"])
def test_undecodable_image_is_one_line_naming_the_file(content, face_rgb, tmp_path):
    p = tmp_path / "bad.png"
    if content == "png-truncated":
        buf = io.BytesIO()
        Image.fromarray(face_rgb).save(buf, format="PNG")
        content = buf.getvalue()[: len(buf.getvalue()) // 3]
    p.write_bytes(content)
    with pytest.raises(ImageReadError) as ei:
        read_image(p)
    assert str(ei.value).startswith(str(p)) and "\n" not in str(ei.value)


# --------------------------------------------------------------------------- checkpoints
@pytest.fixture
def pairs_csv(tmp_path):
    from madpad.mad.synthetic import write_synthetic_pairs

    return write_synthetic_pairs(tmp_path / "pairs", 4, seed=1, name="pairs.csv")


def _score(model, pairs, out, capsys):
    from madpad.detect import main

    rc = main(["score", "--model", str(model), "--pairs", str(pairs), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    return rc, err


def test_truncated_model_npz_is_one_line_naming_it(tmp_path, pairs_csv, capsys):
    from madpad.mad.base import load_npz, save_npz, write_header

    ck = tmp_path / "ck"
    ck.mkdir()
    write_header(ck, detector="embedding_classifier", config={}, extra={"model": "model.npz"})
    save_npz(ck / "model.npz", {"coef": np.arange(5.0)})
    data = (ck / "model.npz").read_bytes()
    (ck / "model.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.npz: truncated or corrupt"):
        load_npz(ck / "model.npz")
    rc, err = _score(ck, pairs_csv, tmp_path / "s.csv", capsys)
    assert rc == 2 and len(err.splitlines()) == 1 and "model.npz" in err and "Traceback" not in err


def test_corrupt_detector_json_is_one_line_naming_it(tmp_path, pairs_csv, capsys):
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "detector.json").write_bytes(b'{"format": "madpad-detector\xff\xfe')
    rc, err = _score(ck, pairs_csv, tmp_path / "s.csv", capsys)
    assert rc == 2 and len(err.splitlines()) == 1 and "detector.json" in err


def test_corrupt_safetensors_is_one_line_naming_the_checkpoint(tmp_path, pairs_csv, capsys):
    pytest.importorskip("safetensors")
    pytest.importorskip("torch")
    from madpad.mad.base import write_header

    ck = tmp_path / "ck"
    ck.mkdir()
    write_header(ck, detector="foundation", config={"backbone": "madpad-tiny-vit", "model_config": "madpad-tiny-vit",
                                                     "pretrained": None, "device": "cpu", "progress": False},
                 extra={"weights": "weights.safetensors"})
    (ck / "weights.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    rc, err = _score(ck, pairs_csv, tmp_path / "s.csv", capsys)
    assert rc == 2 and len(err.splitlines()) == 1 and str(ck) in err and "corrupt" in err


def test_truncated_tshirt_scorer_is_one_line(tmp_path):
    from madpad.pad.learned import LearnedScorer

    p = tmp_path / "scorer.npz"
    np.savez(p, meta=np.array(json.dumps({"format": "x"})), coef=np.zeros(3))
    p.write_bytes(p.read_bytes()[:40])
    with pytest.raises(UsageError) as ei:
        LearnedScorer.load(p)
    assert str(p) in str(ei.value) and "\n" not in str(ei.value)


# --------------------------------------------------------------------------- score files
def test_report_pad_names_the_row_of_a_bad_byte(tmp_path, capsys):
    from madpad.report.__main__ import main

    lines = ["id,score,label,species"] + [f"s{i},{i / 20},{'attack' if i % 2 else 'bona_fide'},"
                                          f"{'print' if i % 2 else ''}" for i in range(20)]
    data = "\n".join(lines).encode() + b"\n"
    rows = data.split(b"\n")
    rows[10] = rows[10].replace(b"s9", b"s\xff9")  # line 11 (header = row 1)
    (tmp_path / "bad.csv").write_bytes(b"\n".join(rows))
    assert main(["pad", "--scores", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "row 11" in err and "row 1:" not in err


def test_report_vulnerability_rejects_duplicate_comparison_rows(tmp_path, capsys):
    from madpad.report.__main__ import main

    src = Path(__file__).resolve().parents[1] / "madpad" / "report" / "examples" / "comparisons_example.csv"
    lines = src.read_text(encoding="utf-8").splitlines()
    (tmp_path / "dup.csv").write_text("\n".join(lines + [lines[3]]) + "\n", encoding="utf-8")
    assert main(["vulnerability", "--scores", str(tmp_path / "dup.csv"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"row {len(lines) + 1}" in err and "duplicate comparison" in err and "first at row 4" in err
    assert main(["vulnerability", "--scores", str(src), "--out", str(tmp_path / "ok")]) == 0
