"""``python -m madpad.generate`` end to end, in-process: manifest, failures, resumption, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from madpad.generate import main
from madpad.morph.batch import item_seed, read_pairs_csv


@pytest.fixture(scope="module")
def small_frll(tmp_path_factory, sample_dir) -> Path:
    """Six bundled FRLL images at 300 px in a folder named like the data set, plus a blank image."""
    import cv2

    from madpad.io import read_image, write_image

    root = tmp_path_factory.mktemp("data") / "frll"
    for sid in ("001", "004", "007", "011", "017", "020"):
        img = read_image(sample_dir / "neutral" / f"{sid}_03.jpg")
        write_image(root / f"{sid}_03.png", cv2.resize(img, (300, 300), interpolation=cv2.INTER_AREA))
    write_image(root / "099_blank.png", np.full((300, 300, 3), 190, np.uint8))
    return root


def _write_pairs(path: Path, rows: list[dict]) -> Path:
    cols = list(rows[0])
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return path


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _pairs(small_frll: Path, tmp_path: Path) -> Path:
    return _write_pairs(tmp_path / "pairs.csv", [
        {"a": str(small_frll / "001_03.png"), "b": str(small_frll / "007_03.png"), "alpha": "", "id": ""},
        {"a": str(small_frll / "004_03.png"), "b": str(small_frll / "017_03.png"), "alpha": "0.3", "id": "m2"},
        {"a": str(small_frll / "011_03.png"), "b": str(small_frll / "099_blank.png"), "alpha": "", "id": "with_blank"},
    ])


def test_generate_end_to_end_with_failures_and_resume(small_frll, tmp_path, capsys, monkeypatch):
    pytest.importorskip("dlib")
    from madpad.morph.landmark import LandmarkMorpher

    calls = []
    real = LandmarkMorpher.morph

    def counting(self, a, b, **kw):
        calls.append(kw)
        return real(self, a, b, **kw)

    monkeypatch.setattr(LandmarkMorpher, "morph", counting)
    pairs = _pairs(small_frll, tmp_path)
    out = tmp_path / "morphs"
    rc = main(["--method", "landmark", "--pairs", str(pairs), "--out", str(out), "--subject-pattern", r"^(\w+?)_",
               "--seed", "7", "--no-progress"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "3 morph(s) requested: 2 made, 0 already done (skipped), 1 failed" in err
    assert "with_blank" in err and "no face" in err
    rows = _read(out / "manifest.csv")
    assert [r["id"] for r in rows] == ["001_03__007_03", "m2", "with_blank"]
    assert list(rows[0]) == ["id", "path", "a", "b", "subject_a", "subject_b", "alpha", "method", "seed", "params",
                             "status", "error", "face_a_box", "faces_a", "face_b_box", "faces_b"]
    ok = rows[0]
    assert ok["status"] == "ok" and ok["error"] == "" and ok["path"] == "001_03__007_03.png"
    assert (ok["subject_a"], ok["subject_b"]) == ("001", "007")
    assert float(rows[1]["alpha"]) == 0.3 and float(ok["alpha"]) == 0.5
    assert int(ok["seed"]) == item_seed(7, "001_03__007_03")
    assert json.loads(ok["params"])["method"] == "landmark"
    bad = rows[2]
    assert bad["status"] == "failed" and "no face" in bad["error"] and "contributor B" in bad["error"]
    assert bad["path"] == ""
    assert (out / "001_03__007_03.png").is_file() and (out / "m2.png").is_file()
    assert not (out / "with_blank.png").exists()
    att = (out / "ATTRIBUTION.md").read_text()
    assert "Face Research Lab London Set" in att and "morphed with madpad `landmark`" in att
    # the manifest loads with madpad.data
    from madpad.data import load_morphs

    recs = load_morphs(out / "manifest.csv")
    assert recs[0].ok and recs[0].path.is_file() and not recs[2].ok
    assert len(calls) == 3 and [c["alpha"] for c in calls] == [0.5, 0.3, 0.5]

    # resume: finished morphs are skipped (not recomputed, files untouched), the failed one is retried
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    calls.clear()
    rc = main(["--method", "landmark", "--pairs", str(pairs), "--out", str(out), "--subject-pattern", r"^(\w+?)_",
               "--seed", "7", "--no-progress"])
    assert rc == 0
    assert "0 made, 2 already done (skipped), 1 failed" in capsys.readouterr().err
    assert len(calls) == 1
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == mtimes
    # a deleted output is made again; changed parameters redo everything
    (out / "m2.png").unlink()
    calls.clear()
    assert main(["--method", "landmark", "--pairs", str(pairs), "--out", str(out), "--subject-pattern",
                 r"^(\w+?)_", "--seed", "7", "--no-progress"]) == 0
    assert len(calls) == 2 and (out / "m2.png").is_file()
    calls.clear()
    assert main(["--method", "landmark", "--pairs", str(pairs), "--out", str(out), "--subject-pattern",
                 r"^(\w+?)_", "--seed", "7", "--no-progress", "--warp", "triangle", "--limit", "2"]) == 0
    assert len(calls) == 2
    rows = _read(out / "manifest.csv")
    assert len(rows) == 2 and json.loads(rows[0]["params"])["warp"] == "triangle"


def test_generate_from_manifest_with_a_strategy(tmp_path, sample_dir, capsys):
    pytest.importorskip("dlib")
    from madpad.data import write_images
    from madpad.data.frll import frll_images

    images = tmp_path / "images.csv"
    write_images(images, frll_images(sample_dir))
    out = tmp_path / "spliced"
    rc = main(["--method", "landmark_spliced", "--manifest", str(images), "--root", str(sample_dir), "--capture",
               "enrolment", "--strategy", "same_gender", "--n-pairs", "2", "--seed", "1", "--format", "jpg",
               "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    rows = _read(out / "manifest.csv")
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    assert all(r["path"].endswith(".jpg") and (out / r["path"]).is_file() for r in rows)
    gender = {r["subject"]: r["gender"] for r in _read(sample_dir / "subjects.csv")}
    for r in rows:
        assert r["subject_a"] != r["subject_b"] and gender[r["subject_a"]] == gender[r["subject_b"]]
    # the selected pairs are saved, so the job can be rerun with --pairs
    saved = read_pairs_csv(out / "pairs.csv")
    assert [p.id for p in saved] == [r["id"] for r in rows]


@pytest.mark.parametrize("content, field, row, message", [
    ("x,b\n1.png,2.png\n", "a", 1, "missing required column"),
    ("a,b\n{A},\n", "b", 2, "is empty"),
    ("a,b,alpha\n{A},{B},half\n", "alpha", 2, "must be a number"),
    ("a,b,alpha\n{A},{B},1.5\n", "alpha", 2, "must be in [0, 1]"),
    ("a,b,id\n{A},{B},m\n{B},{A},m\n", "id", 3, "duplicate morph id"),
    ("a,b,id\n{A},{B},../escape\n", "id", 2, "not a usable morph id"),
    ("a,b\n{A},missing.png\n", "b", 2, "not found"),
    ("a,b\n{A},{A}\n", "subject_b", 2, "a morph needs two subjects"),
])
def test_bad_pairs_csv_exits_2_naming_row_and_field(small_frll, tmp_path, capsys, content, field, row, message):
    p = tmp_path / "bad.csv"
    p.write_text(content.format(A=small_frll / "001_03.png", B=small_frll / "004_03.png"))
    rc = main(["--method", "landmark", "--pairs", str(p), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and str(p) in err
    assert f"row {row}" in err and f"field '{field}'" in err and message in err


def test_relative_paths_are_taken_from_the_csv_folder(small_frll):
    p = small_frll / "rel_pairs.csv"
    p.write_text("a,b\n001_03.png,004_03.png\n")
    (req,) = read_pairs_csv(p)
    assert req.a == small_frll / "001_03.png" and req.subject_a == "001_03"


def test_usage_errors_and_listing(tmp_path, capsys):
    assert main(["--list-methods"]) == 0
    out = capsys.readouterr().out
    assert "landmark " in out and "landmark_spliced" in out and "dcmorph" in out
    assert main(["--method", "landmarks", "--pairs", "x.csv", "--out", str(tmp_path)]) == 2
    assert "Did you mean 'landmark'" in capsys.readouterr().err
    assert main(["--method", "landmark", "--out", str(tmp_path)]) == 2
    assert "exactly one of --pairs" in capsys.readouterr().err
    assert main(["--method", "landmark", "--pairs", str(tmp_path / "nope.csv"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    # method options exist only with their method; --help shows them
    assert main(["--method", "landmark_spliced", "--help"]) == 0
    assert "--blend" in capsys.readouterr().out
    assert main(["--method", "landmark", "--blend", "poisson", "--pairs", "x.csv", "--out", str(tmp_path)]) == 2
    capsys.readouterr()


def test_unknown_components_are_usage_errors_not_per_item_failures(small_frll, tmp_path, capsys):
    pairs = tmp_path / "p.csv"
    pairs.write_text(f"a,b\n{small_frll / '001_03.png'},{small_frll / '004_03.png'}\n")
    for opts, message in ((["--detector", "dlib_hgo"], "Did you mean 'dlib_hog'"),
                          (["--face-policy", "biggest"], "face selection policy"),
                          (["--landmarker", "dlib86"], "not registered")):
        rc = main(["--method", "landmark", "--pairs", str(pairs), "--out", str(tmp_path / "o"), *opts])
        assert rc == 2 and message in capsys.readouterr().err
        assert not (tmp_path / "o" / "manifest.csv").exists()


def test_morph_attribution_credits_each_source_data_set_by_its_folder():
    from madpad.data.frll import FRLL_CANADA_CREDIT, FRLL_CREDIT, dataset_credits
    from madpad.morph.batch import MorphRequest, attribution_text

    canada = dataset_credits(["/d/shared/data/frll_canada"])
    assert canada == [FRLL_CANADA_CREDIT] and "Young Adult White Faces" in canada[0] and "4220517" in canada[0]
    assert dataset_credits(["/d/shared/data/frll/neutral"]) == [FRLL_CREDIT]
    assert dataset_credits(["/x/FRLL_Canada", "/y/frll/smiling"]) == [FRLL_CANADA_CREDIT, FRLL_CREDIT]
    assert dataset_credits(["/d/photos/lab"]) == []
    req = [MorphRequest("a__b", Path("/d/frll_canada/003f.jpg"), Path("/d/frll_canada/010f.jpg"), "003f", "010f")]
    text = attribution_text(req, method="tem189", params={})
    assert "Young Adult White Faces" in text and "London Set" not in text and "morphed with madpad `tem189`" in text
    plain = attribution_text([MorphRequest("x", Path("/p/a.jpg"), Path("/p/b.jpg"), "a", "b")], method="landmark",
                             params={})
    assert "Keep the licence and attribution terms" in plain and "CC BY" not in plain
