"""The segmentation study: its metric helpers on hand-made scores, and the whole pipeline
(pipelines/segmentation_study.yaml) through the runner on a tiny subset of the bundled sample."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from madpad.pipeline.stages import segmentation_study as S

REPO = Path(__file__).resolve().parents[1]


def _unit(v):
    v = np.asarray(v, float)
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_comparison_sets_and_metrics_hand_made():
    # 3 subjects; reference a_i and probe b_i; cosines are exact by construction
    emb = {"original/r1": _unit([1, 0, 0]), "original/r2": _unit([0, 1, 0]), "original/r3": _unit([0, 0, 1]),
           "original/p1": _unit([1, 0.1, 0]), "original/p2": _unit([0, 1, 0.1]), "original/p3": _unit([0.1, 0, 1])}
    ref = {"1": "r1", "2": "r2", "3": "r3"}
    probe = {"1": "p1", "2": "p2", "3": "p3"}
    gen, imp, info, _ = S.comparison_sets(emb, ["1", "2", "3"], ref, probe, "original", "original")
    c = 1 / np.sqrt(1.01)
    assert np.allclose(gen, [c, c, c]) and info == {"genuine_missing": 0, "impostor_missing": 0}
    assert sorted(np.round(imp, 6).tolist()) == sorted(np.round([0.1 * c, 0, 0, 0.1 * c, 0.1 * c, 0], 6).tolist())
    m = S.recognition_metrics(gen, imp, fmrs=(0.5,))
    assert m["FNMR@FMR50%"] == 0.0 and m["EER"] == 0.0 and m["n_impostor"] == 6
    assert m["genuine_mean"] == pytest.approx(c)
    # a missing embedding drops that subject's comparisons (and is counted)
    del emb["original/p2"]
    gen, imp, info, _ = S.comparison_sets(emb, ["1", "2", "3"], ref, probe, "original", "original")
    assert gen.size == 2 and imp.size == 4 and info == {"genuine_missing": 1, "impostor_missing": 2}


def test_baseline_threshold_view():
    gen0, imp0 = np.array([0.9, 0.8, 0.7, 0.6]), np.linspace(0.0, 0.5, 10)
    base = S.recognition_metrics(gen0, imp0, fmrs=(0.1,))
    t = {"10%": base["threshold@FMR10%"]}
    # FMR <= 10 % of 10 impostors (0, 0.056, ..., 0.444, 0.5): one may match -> t just above 0.444
    assert 4 / 9 < t["10%"] < 0.45
    # a condition whose genuine scores drop below the baseline threshold
    m = S.recognition_metrics(np.array([0.9, 0.8, 0.40, 0.3]), imp0, fmrs=(0.1,), baseline_thresholds=t)
    assert m["FNMR@baseline_t10%"] == 0.5 and m["FMR@baseline_t10%"] == pytest.approx(0.1)


def test_detection_operating_points_hand_made():
    attack = np.arange(10, 20, dtype=float)  # attack scores 10..19
    bf_orig = np.arange(0, 10, dtype=float)  # perfectly separated from the attacks
    bf_seg = np.array([0, 1, 2, 3, 4, 5, 6, 7, 15, 18], float)  # two segmented images look like attacks
    rows = S.detection_operating_points(attack, bf_orig, {"original": bf_orig, "seg": bf_seg}, (0.2, 0.1))
    r20, r10, deer = rows
    # APCER <= 20 %: largest threshold misclassifying at most 2 of 10 attacks -> t = 12 (10, 11 missed)
    assert r20["metric"] == "BPCER" and r20["threshold"] == 12.0 and r20["apcer"] == pytest.approx(0.2)
    assert r20["original"] == 0.0 and r20["seg"] == pytest.approx(0.2)  # 15 and 18 >= 12
    assert r10["threshold"] == 11.0 and r10["seg"] == pytest.approx(0.2)
    assert deer["metric"] == "D-EER" and deer["original"] == 0.0 and deer["seg"] > 0


def test_distance_dmad_scores():
    emb = {"a": _unit([1, 0]), "b": _unit([0, 1]), "c": _unit([1, 1])}
    s = S.distance_dmad_scores(emb, [("a", "a"), ("a", "b"), ("a", "c"), ("a", "missing")])
    assert s[:3] == pytest.approx([0.0, 1.0, 1 - 1 / np.sqrt(2)]) and np.isnan(s[3])


def test_pick_reference_and_probe():
    from madpad.data.manifest import ImageRecord

    recs = [ImageRecord("x_2", Path("x2.jpg"), "x", "bona_fide", capture="probe"),
            ImageRecord("x_1", Path("x1.jpg"), "x", "bona_fide", capture="enrolment"),
            ImageRecord("y_1", Path("y1.jpg"), "y", "bona_fide"), ImageRecord("y_0", Path("y0.jpg"), "y", "bona_fide"),
            ImageRecord("z_1", Path("z1.jpg"), "z", "bona_fide"),  # one image only: skipped
            ImageRecord("m", Path("m.jpg"), "x;y", "attack", species="landmark")]
    out = S.pick_reference_and_probe(recs)
    assert {k: (a.id, b.id) for k, (a, b) in out.items()} == {"x": ("x_1", "x_2"), "y": ("y_0", "y_1")}


def _read(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_study_pipeline_end_to_end(tmp_path):
    """Tiny run through the runner: 4 subjects, 2 fast segmenters, images at 360 px."""
    from madpad.pipeline import load_pipeline, run_pipeline

    sets = ["params.n_subjects=4", "params.max_side=360", "params.segmenters=[landmark_hull, mediapipe_selfie]",
            "params.note=test run"]
    spec = load_pipeline(REPO / "pipelines" / "segmentation_study.yaml", set_items=sets, workdir=tmp_path / "run")
    summary = run_pipeline(spec, executor="serial", progress=False, quiet=True)
    assert summary.ok, [(s.stage, s.status, s.error) for s in summary.stages]
    wd = tmp_path / "run"
    images = _read(wd / "images" / "images.csv")
    assert len(images) == 8 and {r["role"] for r in images} == {"reference", "probe"}
    seg = _read(wd / "segment" / "segmented.csv")
    assert len(seg) == 16 and all(r["status"] == "ok" for r in seg), seg
    assert (wd / "segment" / "segmented" / "landmark_hull" / "mattes" / f"{images[0]['id']}.png").is_file()
    rec = _read(wd / "recognition" / "recognition.csv")
    conds = {r["condition"] for r in rec}
    assert conds == {"original_vs_original", "landmark_hull_vs_original", "landmark_hull_vs_landmark_hull",
                     "mediapipe_selfie_vs_original", "mediapipe_selfie_vs_mediapipe_selfie"}
    base = next(r for r in rec if r["condition"] == "original_vs_original")
    assert int(base["n_genuine"]) == 4 and int(base["n_impostor"]) == 12 and float(base["genuine_shift"]) == 0.0
    q = {r["variant"]: r for r in _read(wd / "quality" / "quality_summary.csv")}
    assert set(q) == {"original", "landmark_hull", "mediapipe_selfie"}
    for v in ("landmark_hull", "mediapipe_selfie"):  # a white background is more uniform than the backdrop
        assert float(q[v]["background_spread"]) < float(q["original"]["background_spread"])
    det = _read(wd / "detection" / "detection.csv")
    assert [r["metric"] for r in det] == ["BPCER", "BPCER", "BPCER", "D-EER"]
    assert {"original", "landmark_hull", "mediapipe_selfie"} <= set(det[0])
    html = (wd / "report" / "report.html").read_text(encoding="utf-8")
    for text in ("Face recognition effect", "Image quality effect", "Morphing attack detection effect",
                 "data:image/", "test run", "CC BY 4.0"):
        assert text in html
    assert "src=\"http" not in html  # self-contained
    summary_json = json.loads((wd / "report" / "summary.json").read_text())
    assert summary_json["subjects"] == 4
    # unchanged inputs and parameters: every stage is a cache hit
    again = run_pipeline(load_pipeline(REPO / "pipelines" / "segmentation_study.yaml", set_items=sets,
                                       workdir=tmp_path / "run"), executor="serial", progress=False, quiet=True)
    assert {s.status for s in again.stages} == {"skipped"}


@pytest.mark.parametrize("name", ["segmentation_study", "morph_generation", "dmad_train_eval"])
def test_pipeline_files_load_and_name_real_stage_functions(name, tmp_path):
    import importlib

    from madpad.pipeline import load_pipeline

    spec = load_pipeline(REPO / "pipelines" / f"{name}.yaml", workdir=tmp_path)
    assert spec.name == name and spec.stages
    for st in spec.stages.values():
        module, func = st.fn.split(":")
        assert callable(getattr(importlib.import_module(module), func)), st.fn
