"""IAPMR of dlib face recognition against T-shirt attacks (tiny set from the bundled sample)."""

from __future__ import annotations

import csv
import json

import pytest

from madpad.pad.synth import SynthConfig, generate_set, list_sources


def test_iapmr_end_to_end(tmp_path, sample_dir):
    pytest.importorskip("dlib")
    from madpad.pad.iapmr import main

    subjects = sorted(p.stem.split("_")[0] for p in (sample_dir / "neutral").glob("*.jpg"))[:5]
    for sub in ("neutral", "smiling", "landmarks"):
        (tmp_path / sub).mkdir()
    for s in subjects:
        (tmp_path / "neutral" / f"{s}_03.jpg").symlink_to(sample_dir / "neutral" / f"{s}_03.jpg")
        (tmp_path / "smiling" / f"{s}_08.jpg").symlink_to(sample_dir / "smiling" / f"{s}_08.jpg")
        (tmp_path / "landmarks" / f"{s}_03.tem").symlink_to(sample_dir / "landmarks" / f"{s}_03.tem")
    faces = list_sources(tmp_path / "neutral", tag="frll")
    cfg = SynthConfig(width=400, seed=0, species=("tshirt_face_visible", "tshirt_face_occluded"), bona_fide=())
    man = generate_set(wearers=faces[:1], faces=faces, out_dir=tmp_path / "set", cfg=cfg, progress=False)
    rc = main(["--manifest", str(man), "--references", str(tmp_path / "smiling"), "--enrol",
               str(tmp_path / "neutral"), "--out", str(tmp_path / "out"), "--no-progress"])
    assert rc == 0
    res = json.loads((tmp_path / "out" / "iapmr.json").read_text())
    assert res["n_genuine"] == 5 and res["n_impostor"] == 20 and res["n_attack"] == 2
    with open(tmp_path / "out" / "comparisons.csv", newline="") as fh:
        kinds = [r["kind"] for r in csv.DictReader(fh)]
    assert kinds.count("genuine") == 5 and kinds.count("impostor") == 20 and len(kinds) == 25
    with open(tmp_path / "out" / "attack_comparisons.csv", newline="") as fh:
        attacks = list(csv.DictReader(fh))
    assert sorted((a["selection"], a["species"]) for a in attacks) == sorted(
        (sel, sp) for sel in ("largest", "any") for sp in ("tshirt_face_visible", "tshirt_face_occluded"))
    assert all(a["printed_subject"] != a["wearer_subject"] for a in attacks)
    # the licit comparisons are a standard comparison-scores file: the vulnerability report's reader
    # takes it, and the threshold it sets from the impostor rows is the one in iapmr.json
    from madpad.metrics import threshold_at_fmr
    from madpad.report import read_comparison_scores

    table = read_comparison_scores(tmp_path / "out" / "comparisons.csv")
    assert table.systems == ["dlib"] and int((table.kind == "genuine").sum()) == 5
    for op in res["operating_points"]:
        t = threshold_at_fmr(table.score[table.kind == "impostor"], op["fmr_target"])
        assert t == pytest.approx(op["threshold"], abs=2e-6)
    op = res["operating_points"][0]
    assert op["fmr_target"] == 0.001 and op["fmr"] == 0.0  # 20 impostors: threshold above all of them
    # the printed face (neutral photo) matches its subject's smiling reference when the wearer's face is hidden
    assert op["iapmr"]["largest"]["tshirt_face_occluded"] == 1.0
    # with the wearer's own (larger) face visible, a largest-face FR system compares the wearer instead
    assert op["iapmr"]["largest"]["tshirt_face_visible"] == 0.0
    assert op["iapmr"]["any"]["tshirt_face_visible"] == 1.0
