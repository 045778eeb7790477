"""``python -m madpad.detect tshirt`` end to end on a tiny synthetic set (real shipped detectors)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import shared_path

from madpad.detect import main as detect_main
from madpad.io import write_image
from madpad.pad.cli import main_fit_scorer
from madpad.pad.synth import SynthConfig, generate_set, list_sources


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def shared_person_models():
    """The default person detector's model: $MADPAD_SHARED/models/person (skipped when absent)."""
    d = shared_path("models/person/nanodet_coco.onnx").parent
    mp = pytest.MonkeyPatch()
    mp.setenv("MADPAD_SHARED", str(d.parent.parent))
    yield d
    mp.undo()


@pytest.fixture(scope="module")
def images_csv(tmp_path_factory, sample_dir):
    pytest.importorskip("mediapipe")
    pytest.importorskip("dlib")
    out = tmp_path_factory.mktemp("tshirt_set")
    cfg = SynthConfig(width=320, seed=0, species=("tshirt_face_visible", "tshirt_face_occluded"),
                      bona_fide=("extended",))
    manifest = generate_set(wearers=list_sources(sample_dir / "neutral", tag="w"),
                            faces=list_sources(sample_dir / "neutral", tag="p"), out_dir=out, cfg=cfg, limit=3,
                            progress=False)
    # add an unreadable image and a face-less image
    write_image(out / "blank.png", np.full((200, 160, 3), 128, np.uint8))
    (out / "broken.jpg").write_bytes(b"not a jpeg")
    with open(manifest, "a", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        header = _rows(manifest)[0].keys()
        for rid, path in (("blank", "blank.png"), ("broken", "broken.jpg")):
            w.writerow([{"id": rid, "path": path, "subject": "x", "label": "bona_fide"}.get(k, "") for k in header])
    return manifest


def test_cli_scores_end_to_end_and_report_reads_it(images_csv, shared_person_models, tmp_path, capsys):
    """The default detector set: nanodet persons (+ pose, mask) and the union face finder."""
    pytest.importorskip("facenet_pytorch")
    out = tmp_path / "scores.csv"
    rc = detect_main(["tshirt", "--images", str(images_csv), "--out", str(out), "--no-progress"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "failed 1" in err
    rows = {r["id"]: r for r in _rows(out)}
    assert "broken" not in rows and "blank" in rows
    failed = _rows(tmp_path / "scores.failed.csv")
    assert [r["id"] for r in failed] == ["broken"] and failed[0]["status"] == "failed" and failed[0]["error"]
    assert rows["blank"]["status"] == "no_face" and float(rows["blank"]["score"]) == 0.0
    for col in ("id", "score", "label", "species", "status", "n_faces", "n_persons", "fired", "rule_torso",
                "rule_body_above", "explanation", "f_max_head_room"):
        assert col in rows["blank"]
    bona = [r for r in rows.values() if r["label"] == "bona_fide" and r["id"] != "blank"]
    visible = [r for r in rows.values() if r["species"] == "tshirt_face_visible"]
    assert len(bona) == 3 and len(visible) == 3
    # the real detectors must find both faces on face_visible attacks and flag the chest face
    assert all(int(r["n_faces"]) >= 2 and float(r["score"]) >= 0.5 for r in visible)
    assert all(float(r["score"]) < 0.5 and r["fired"] == "" for r in bona)
    from madpad.report.scores import read_pad_scores

    table = read_pad_scores(out)
    assert len(table) == len(rows) and set(table.species[table.labels == "attack"]) == {
        "tshirt_face_visible", "tshirt_face_occluded"}


def test_a_person_without_a_face_is_a_failure_to_acquire(images_csv, tmp_path, capsys):
    """No face found (a cascade that only takes faces of 95 % of the image) but a person found:
    status person_no_face with an empty score, which the PAD report counts as a failure to acquire."""
    from madpad.report.scores import read_pad_scores

    out = tmp_path / "fta.csv"
    args = ["tshirt", "--images", str(images_csv), "--out", str(out), "--no-progress", "--limit", "3",
            "--person-detector", "mediapipe_pose:segment=false", "--face-detector", "haar:min_size=0.95"]
    assert detect_main(args) == 0
    assert "person_no_face 3 (failures to acquire: empty score)" in capsys.readouterr().err
    rows = _rows(out)
    assert [(r["status"], r["score"]) for r in rows] == [("person_no_face", "")] * 3
    assert all("failure to acquire" in r["explanation"] and int(r["n_persons"]) >= 1 for r in rows)
    table = read_pad_scores(out)
    assert table.n_failed == 3
    assert detect_main(args[:4] + [str(tmp_path / "bf.csv")] + args[5:] + ["--person-no-face", "bona_fide"]) == 0
    assert [float(r["score"]) for r in _rows(tmp_path / "bf.csv")] == [0.0] * 3
    assert detect_main(args[:4] + [str(tmp_path / "ex.csv")] + args[5:] + ["--person-no-face", "exclude"]) == 0
    assert _rows(tmp_path / "ex.csv") == [] and len(_rows(tmp_path / "ex.excluded.csv")) == 3


def test_cli_no_face_exclude_and_learned_scorer(images_csv, tmp_path):
    out = tmp_path / "s.csv"
    assert detect_main(["tshirt", "--images", str(images_csv), "--out", str(out), "--no-progress",
                        "--no-face", "exclude", "--person-detector", "mediapipe_pose:segment=true",
                        "--face-detector", "dlib_hog"]) == 0
    assert "blank" not in {r["id"] for r in _rows(out)}
    assert [r["id"] for r in _rows(tmp_path / "s.excluded.csv")] == ["blank"]
    model = tmp_path / "m.npz"
    assert main_fit_scorer(["--scores", str(out), "--out", str(model), "--apply", str(out), str(tmp_path / "re.csv")]) == 0
    re_rows = _rows(tmp_path / "re.csv")
    assert len(re_rows) == len(_rows(out)) and all(0.0 <= float(r["score"]) <= 1.0 for r in re_rows)
    out2 = tmp_path / "s2.csv"
    assert detect_main(["tshirt", "--images", str(images_csv), "--out", str(out2), "--no-progress",
                        "--scorer", str(model), "--limit", "3", "--person-detector", "mediapipe_pose:segment=true",
                        "--face-detector", "dlib_hog"]) == 0
    s2 = {r["id"]: float(r["score"]) for r in _rows(out2)}
    re_ = {r["id"]: float(r["score"]) for r in re_rows}
    for k, v in s2.items():  # rescoring stored features == scoring afresh
        assert v == pytest.approx(re_[k], abs=1e-5)


@pytest.mark.parametrize("content,needle", [
    ("id,file\na,x.jpg\n", "missing column"),
    ("id,path,label\na,x.jpg,morph\n", "'label' must be one of"),
    ("id,path,label,species\na,x.jpg,attack,\n", "attack rows need a species"),
    ("id,path\na,x.jpg\na,y.jpg\n", "duplicate id"),
])
def test_cli_bad_input_exits_2_naming_the_problem(tmp_path, capsys, content, needle):
    p = tmp_path / "images.csv"
    p.write_text(content)
    assert detect_main(["tshirt", "--images", str(p), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert needle in err and "images.csv" in err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("content,needle", [
    (b"id,path\na,x.jpg\nb,caf\xe9.jpg\n", "images.csv row 3: not UTF-8 text"),  # Latin-1 bytes
    (b"id,path\na,x.jpg\nb," + b"y" * 140_000 + b"\n", "images.csv row 3: malformed CSV (field larger than"),
])
def test_cli_unreadable_csv_is_a_one_line_error_naming_file_and_row(tmp_path, capsys, content, needle):
    p = tmp_path / "images.csv"
    p.write_bytes(content)
    assert detect_main(["tshirt", "--images", str(p), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_image_list_accepts_an_excel_bom(tmp_path):
    from madpad.pad.cli import read_image_list

    p = tmp_path / "images.csv"
    p.write_bytes(b"\xef\xbb\xbfid,path,label,species\na, x.jpg ,attack,tshirt_face_visible\n")
    rows = read_image_list(p)
    assert [(r["id"], r["path"], r["label"], r["species"]) for r in rows] == [
        ("a", tmp_path / "x.jpg", "attack", "tshirt_face_visible")]


def test_cli_bad_options_exit_2(tmp_path, capsys):
    p = tmp_path / "images.csv"
    p.write_text("id,path\na,x.jpg\n")
    assert detect_main(["tshirt", "--images", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o.csv")]) == 2
    assert detect_main(["tshirt", "--images", str(p), "--out", str(tmp_path / "o.csv"),
                        "--person-detector", "mediapipe_pos"]) == 2
    assert "Did you mean 'mediapipe_pose'" in capsys.readouterr().err
    assert detect_main(["tshirt", "--images", str(p), "--out", str(tmp_path / "o.csv"),
                        "--set", "head_region_mx=0.3"]) == 2
    assert "head_region_mx" in capsys.readouterr().err
    assert detect_main(["tshirt", "--images", str(p), "--out", str(tmp_path / "o.csv"),
                        "--scorer", str(tmp_path / "nomodel.npz")]) == 2
    assert "scorer model file not found" in capsys.readouterr().err
