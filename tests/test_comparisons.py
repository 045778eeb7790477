"""Comparison scores for morphing vulnerability: kinds, counts, values, CSV format, CLI."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from madpad.errors import UsageError
from madpad.face.comparisons import (
    COMPARISON_COLUMNS,
    compute_comparisons,
    genuine_impostor_scores,
    parse_system,
    write_comparisons,
)


@dataclass
class Rec:
    id: str
    path: Path
    subject: str = ""
    label: str = "bona_fide"


@dataclass
class MorphRec:
    id: str
    path: Path | None
    subject_a: str
    subject_b: str
    status: str = "ok"


class FakeEmbedder:
    """Embeds a file by a table lookup on its name; 'noface' files fail like a real embedder."""

    name = id = "fake"
    dim = 2

    def __init__(self, table):
        self.table = table

    def embed(self, images):
        from madpad.errors import FaceNotFoundError

        out = []
        for im in images:
            name = Path(str(im)).stem
            if name.startswith("noface"):
                raise FaceNotFoundError(f"{im}: no face detected")
            out.append(self.table[name])
        v = np.asarray(out, dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def embed_one(self, image):
        return self.embed([image])[0]


def _files(tmp_path, names):
    for n in names:
        (tmp_path / f"{n}.png").write_bytes(n.encode())  # distinct content (the cache hashes file bytes)
    return {n: tmp_path / f"{n}.png" for n in names}


def test_parse_system():
    s = parse_system("arcface_onnx:model_path=/m/r50.onnx,providers=[CPUExecutionProvider]@arc")
    assert (s.label, s.name) == ("arc", "arcface_onnx")
    assert s.params == {"model_path": "/m/r50.onnx", "providers": ["CPUExecutionProvider"]}
    assert parse_system("dlib") == parse_system("dlib")
    assert parse_system("dlib").label == "dlib" and parse_system("dlib").params == {}
    with pytest.raises(UsageError, match="missing an '=' sign"):
        parse_system("arcface_onnx:model.onnx")


def test_comparison_kinds_counts_and_scores(tmp_path):
    f = _files(tmp_path, ["a_ref", "a_probe", "b_ref", "b_probe", "c_ref", "c_probe", "m_ab", "m_bc", "noface_m"])
    table = {"a_ref": [1, 0], "a_probe": [1, 0.1], "b_ref": [0, 1], "b_probe": [0.1, 1], "c_ref": [-1, 0],
             "c_probe": [-1, 0.2], "m_ab": [1, 1], "m_bc": [-1, 1]}
    refs = [Rec("A0", f["a_ref"], "a"), Rec("B0", f["b_ref"], "b"), Rec("C0", f["c_ref"], "c")]
    probes = [Rec("A1", f["a_probe"], "a"), Rec("B1", f["b_probe"], "b"), Rec("C1", f["c_probe"], "c"),
              Rec("X", f["a_probe"], "a", label="attack")]  # attack rows are ignored
    morphs = [MorphRec("m1", f["m_ab"], "a", "b"), MorphRec("m2", f["m_bc"], "b", "c"),
              MorphRec("m3", f["noface_m"], "a", "c"), MorphRec("m4", None, "a", "b", status="failed")]
    res = compute_comparisons(morphs=morphs, probes=probes, references=refs, systems=["fake"],
                              embedders={"fake": FakeEmbedder(table)})
    kinds = [r["kind"] for r in res.rows]
    assert kinds.count("genuine") == 3 and kinds.count("impostor") == 6 and kinds.count("morph") == 4
    assert res.counts == {("fake", "genuine"): 3, ("fake", "impostor"): 6, ("fake", "morph"): 4}
    row = next(r for r in res.rows if r["kind"] == "morph" and r["reference"] == "m1" and r["probe"] == "B1")
    assert row["reference_subjects"] == "a;b" and row["probe_subject"] == "b"
    expected = (np.array([1, 1]) @ np.array([0.1, 1])) / (np.sqrt(2) * np.sqrt(1.01))
    assert row["score"] == pytest.approx(expected, abs=1e-6)
    gen = next(r for r in res.rows if r["kind"] == "genuine" and r["reference"] == "A0")
    assert gen["probe"] == "A1" and gen["score"] == pytest.approx(1 / np.sqrt(1.01), abs=1e-6)
    assert {r["probe_subject"] for r in res.rows if r["reference"] == "m2"} == {"b", "c"}
    # the morph without a face is reported, not compared
    assert [(x["role"], x["id"], x["status"]) for x in res.failures] == [("morph", "m3", "no_face")]
    out, failures = write_comparisons(tmp_path / "scores.csv", res)
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == COMPARISON_COLUMNS and len(rows) == 13
    assert failures is not None and "m3" in failures.read_text()


def test_genuine_never_compares_an_image_with_itself(tmp_path):
    f = _files(tmp_path, ["a1", "a2", "b1"])
    table = {"a1": [1, 0], "a2": [1, 0.2], "b1": [0, 1]}
    imgs = [Rec("a1", f["a1"], "a"), Rec("a2", f["a2"], "a"), Rec("b1", f["b1"], "b")]
    res = compute_comparisons(morphs=[], probes=imgs, references=imgs, systems=["fake"],
                              embedders={"fake": FakeEmbedder(table)})
    pairs = {(r["reference"], r["probe"]) for r in res.rows if r["kind"] == "genuine"}
    assert pairs == {("a1", "a2"), ("a2", "a1")}
    assert any("no morph comparisons" in w for w in res.warnings)


def test_genuine_impostor_scores_by_hand():
    """Subjects a, a, b as references; a, b, c as probes; the second reference failed (NaN)."""
    refs = np.array([[1, 0], [np.nan, np.nan], [0, 2]], dtype=np.float32)
    probes = np.array([[3, 4], [0, 1], [-1, 0]], dtype=np.float32)
    exclude = np.zeros((3, 3), bool)
    exclude[2, 1] = True  # b's reference is b's probe file: never compared with itself
    gi = genuine_impostor_scores(refs, probes, ["a", "a", "b"], ["a", "b", "c"], exclude=exclude)
    assert gi.genuine.tolist() == pytest.approx([0.6])
    assert gi.impostor.tolist() == pytest.approx([0.0, -1.0, 0.8, 0.0])  # reference-major, NaN and excluded out
    assert (gi.genuine_missing, gi.impostor_missing) == (1, 2)
    assert [(i, j, k) for i, j, k, _ in gi.pairs()] == [(0, 0, "genuine"), (0, 1, "impostor"), (0, 2, "impostor"),
                                                       (2, 0, "impostor"), (2, 2, "impostor")]
    empty = genuine_impostor_scores(np.zeros((0, 2)), probes, [], ["a", "b", "c"])
    assert empty.genuine.size == 0 and empty.impostor.size == 0 and list(empty.pairs()) == []


def test_duplicate_system_labels_are_refused(tmp_path):
    with pytest.raises(UsageError, match="unique"):
        compute_comparisons(morphs=[], probes=[Rec("a", tmp_path, "a")], references=[Rec("a", tmp_path, "a")],
                            systems=["dlib", "dlib"])


def test_compare_cli_with_dlib_on_real_frll(tmp_path, sample_dir, capsys):
    """End to end on bundled FRLL images: generate 2 morphs, compare with dlib, check the CSV."""
    pytest.importorskip("dlib")
    import cv2

    from madpad.data import write_images
    from madpad.data.frll import frll_images
    from madpad.generate import main
    from madpad.io import read_image, write_image

    subjects = ("001", "007", "004", "032")
    root = tmp_path / "frll"
    for sid in subjects:
        for folder, code in (("neutral", "03"), ("smiling", "08")):
            img = read_image(sample_dir / folder / f"{sid}_{code}.jpg")
            write_image(root / folder / f"{sid}_{code}.jpg", cv2.resize(img, (360, 360), interpolation=cv2.INTER_AREA))
    images = tmp_path / "images.csv"
    write_images(images, frll_images(root))
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("a,b,subject_a,subject_b\n"
                     f"{root}/neutral/001_03.jpg,{root}/neutral/007_03.jpg,001,007\n"
                     f"{root}/neutral/004_03.jpg,{root}/neutral/032_03.jpg,004,032\n")
    assert main(["--method", "landmark", "--pairs", str(pairs), "--out", str(tmp_path / "m"), "--no-progress"]) == 0
    out = tmp_path / "scores.csv"
    rc = main(["compare", "--morphs", str(tmp_path / "m" / "manifest.csv"),
               "--probes", str(images), "--root", str(root),
               "--probe-capture", "probe", "--reference-capture", "enrolment", "--systems", "dlib",
               "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    kinds = [r["kind"] for r in rows]
    assert kinds.count("genuine") == 4 and kinds.count("impostor") == 12 and kinds.count("morph") == 4
    gen = [float(r["score"]) for r in rows if r["kind"] == "genuine"]
    imp = [float(r["score"]) for r in rows if r["kind"] == "impostor"]
    mor = [float(r["score"]) for r in rows if r["kind"] == "morph"]
    assert min(gen) > max(imp)  # dlib separates these subjects
    assert np.mean(mor) > np.mean(imp)  # morphs look like their contributors
    # the report of the vulnerability layer reads the file and computes MMPMR from it
    from madpad.report.__main__ import main as report_main

    assert report_main(["vulnerability", "--scores", str(out), "--out", str(tmp_path / "report"),
                        "--thumbnails", str(tmp_path / "m" / "manifest.csv")]) == 0
    assert any((tmp_path / "report").iterdir())
    # the second run reads every embedding from the cache
    assert any((tmp_path / "cache").rglob("*.npy"))
    assert main(["compare", "--morphs", str(tmp_path / "m" / "manifest.csv"),
                 "--probes", str(images), "--root", str(root),
                 "--systems", "dlib", "--out", str(tmp_path / "s2.csv"), "--cache-dir", str(tmp_path / "cache"),
                 "--no-progress"]) == 0
    assert main(["compare", "--morphs", str(tmp_path / "m" / "manifest.csv"),
                 "--probes", str(images), "--root", str(root),
                 "--probe-capture", "nothing", "--out", str(tmp_path / "s3.csv")]) == 2
    assert "no rows with capture 'nothing'" in capsys.readouterr().err
