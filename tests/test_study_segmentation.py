"""The segmentation study: its metric helpers on hand-made scores, and the whole pipeline
(pipelines/segmentation_study.yaml) through the runner on a tiny subset of the bundled sample."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from madpad.pipeline.stages.segmentation.detection import (
    detection_operating_points,
    distance_dmad_scores,
)
from madpad.pipeline.stages.segmentation.images import pick_reference_and_probe
from madpad.pipeline.stages.segmentation.recognition import (
    comparison_sets,
    recognition_metrics,
)

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
    gen, imp, info, _ = comparison_sets(emb, ["1", "2", "3"], ref, probe, "original", "original")
    c = 1 / np.sqrt(1.01)
    assert np.allclose(gen, [c, c, c]) and info == {"genuine_missing": 0, "impostor_missing": 0}
    assert sorted(np.round(imp, 6).tolist()) == sorted(np.round([0.1 * c, 0, 0, 0.1 * c, 0.1 * c, 0], 6).tolist())
    m = recognition_metrics(gen, imp, fmrs=(0.5,))
    assert m["FNMR@FMR50%"] == 0.0 and m["EER"] == 0.0 and m["n_impostor"] == 6
    assert m["genuine_mean"] == pytest.approx(c)
    # a missing embedding drops that subject's comparisons (and is counted)
    del emb["original/p2"]
    gen, imp, info, _ = comparison_sets(emb, ["1", "2", "3"], ref, probe, "original", "original")
    assert gen.size == 2 and imp.size == 4 and info == {"genuine_missing": 1, "impostor_missing": 2}


def test_baseline_threshold_view():
    gen0, imp0 = np.array([0.9, 0.8, 0.7, 0.6]), np.linspace(0.0, 0.5, 10)
    base = recognition_metrics(gen0, imp0, fmrs=(0.1,))
    t = {"10%": base["threshold@FMR10%"]}
    # FMR <= 10 % of 10 impostors (0, 0.056, ..., 0.444, 0.5): one may match -> t just above 0.444
    assert 4 / 9 < t["10%"] < 0.45
    # a condition whose genuine scores drop below the baseline threshold
    m = recognition_metrics(np.array([0.9, 0.8, 0.40, 0.3]), imp0, fmrs=(0.1,), baseline_thresholds=t)
    assert m["FNMR@baseline_t10%"] == 0.5 and m["FMR@baseline_t10%"] == pytest.approx(0.1)


def test_detection_operating_points_hand_made():
    attack = np.arange(10, 20, dtype=float)  # attack scores 10..19
    bf_orig = np.arange(0, 10, dtype=float)  # perfectly separated from the attacks
    bf_seg = np.array([0, 1, 2, 3, 4, 5, 6, 7, 15, 18], float)  # two segmented images look like attacks
    rows = detection_operating_points(attack, bf_orig, {"original": bf_orig, "seg": bf_seg}, (0.2, 0.1))
    r20, r10, deer = rows
    # APCER <= 20 %: largest threshold misclassifying at most 2 of 10 attacks -> t = 12 (10, 11 missed)
    assert r20["metric"] == "BPCER" and r20["threshold"] == 12.0 and r20["apcer"] == pytest.approx(0.2)
    assert r20["original"] == 0.0 and r20["seg"] == pytest.approx(0.2)  # 15 and 18 >= 12
    assert r10["threshold"] == 11.0 and r10["seg"] == pytest.approx(0.2)
    assert deer["metric"] == "D-EER" and deer["original"] == 0.0 and deer["seg"] > 0


def test_distance_dmad_scores():
    emb = {"a": _unit([1, 0]), "b": _unit([0, 1]), "c": _unit([1, 1])}
    s = distance_dmad_scores(emb, [("a", "a"), ("a", "b"), ("a", "c"), ("a", "missing")])
    assert s[:3] == pytest.approx([0.0, 1.0, 1 - 1 / np.sqrt(2)]) and np.isnan(s[3])


def test_pick_reference_and_probe():
    from madpad.data.manifest import ImageRecord

    recs = [ImageRecord("x_2", Path("x2.jpg"), "x", "bona_fide", capture="probe"),
            ImageRecord("x_1", Path("x1.jpg"), "x", "bona_fide", capture="enrolment"),
            ImageRecord("y_1", Path("y1.jpg"), "y", "bona_fide"), ImageRecord("y_0", Path("y0.jpg"), "y", "bona_fide"),
            ImageRecord("z_1", Path("z1.jpg"), "z", "bona_fide"),  # one image only: skipped
            ImageRecord("m", Path("m.jpg"), "x;y", "attack", species="landmark")]
    out = pick_reference_and_probe(recs)
    assert {k: (a.id, b.id) for k, (a, b) in out.items()} == {"x": ("x_1", "x_2"), "y": ("y_0", "y_1")}


def test_comparison_sets_with_several_probes_per_subject():
    emb = {"original/r1": _unit([1, 0]), "original/r2": _unit([0, 1]),
           "original/p1a": _unit([1, 0]), "original/p1b": _unit([1, 1]), "original/p2": _unit([0, 1])}
    gen, imp, _, gi = comparison_sets(emb, ["1", "2"], {"1": "r1", "2": "r2"}, {"1": ["p1a", "p1b"], "2": "p2"},
                                      "original", "original")
    # columns: p1a, p1b (subject 1), p2 (subject 2)
    assert gi.scores.shape == (2, 3) and gi.same_subject.tolist() == [[True, True, False], [False, False, True]]
    assert sorted(np.round(gen, 6)) == sorted(np.round([1.0, 1 / np.sqrt(2), 1.0], 6))
    assert sorted(np.round(imp, 6)) == sorted(np.round([0.0, 0.0, 1 / np.sqrt(2)], 6))


def test_conditions_cover_both_directions():
    from madpad.pipeline.stages.segmentation.recognition import conditions

    assert conditions(["s"]) == [("original_vs_original", "original", "original", "original"),
                                 ("s_vs_original", "s", "s", "original"), ("original_vs_s", "s", "original", "s"),
                                 ("s_vs_s", "s", "s", "s")]


def _gi(scores, same):
    from madpad.face.comparisons import GenuineImpostorScores

    S = np.asarray(scores, float)
    same = np.asarray(same, bool)
    return GenuineImpostorScores(S, same, np.isfinite(S), np.zeros(S.shape, bool))


def test_paired_effect_shifts_and_decision_flips_hand_made():
    from madpad.pipeline.stages.segmentation.recognition import paired_effect

    same = np.eye(3, dtype=bool)
    base = _gi([[0.9, 0.2, 0.1], [0.3, 0.8, 0.2], [0.1, 0.4, 0.7]], same)
    cond = _gi([[0.9, 0.2, 0.6], [0.3, 0.5, 0.2], [0.1, 0.4, np.nan]], same)  # r3 x p3 missing in the condition
    rows = paired_effect(base, cond, ["a", "b", "c"], {"a": "d1", "b": "d1", "c": "d2"}, {"t": 0.6},
                         n_resamples=200)
    by = {(r["dataset"], r["kind"]): r for r in rows}
    assert set(by) == {(d, k) for d in ("all", "d1", "d2") for k in ("genuine", "impostor")}
    g = by[("all", "genuine")]  # pairs a-a (0.9 -> 0.9) and b-b (0.8 -> 0.5); c-c not compared in both
    assert g["n"] == 2 and g["shift"] == pytest.approx(-0.15) and g["base_mean"] == pytest.approx(0.85)
    assert g["lost@tt"] == 1 and g["gained@tt"] == 0 and g["unit"] == "comparison"  # b-b: 0.8 >= 0.6 > 0.5
    i = by[("all", "impostor")]  # six impostor pairs, one moved 0.1 -> 0.6: a new false match at t = 0.6
    assert i["n"] == 6 and i["shift"] == pytest.approx(0.5 / 6) and i["gained@tt"] == 1 and i["lost@tt"] == 0
    assert by[("d2", "genuine")]["n"] == 0 and by[("d1", "impostor")]["gained@tt"] == 1
    assert by[("d2", "impostor")]["shift"] == pytest.approx(0.0)


def test_mean_shift_ci_resamples_subjects_when_there_are_enough():
    from madpad.pipeline.stages.segmentation.recognition import mean_shift_ci

    rng = np.random.default_rng(0)
    d = rng.normal(0.01, 0.002, 40)
    r = mean_shift_ci(d, [f"s{i // 4}" for i in range(40)], n_resamples=300)
    assert r["unit"] == "subject" and r["shift"] == pytest.approx(d.mean()) and r["ci_low"] < r["shift"] < r["ci_high"]
    assert r["ci_low"] > 0  # a clear positive shift: the interval excludes 0
    r1 = mean_shift_ci(d[:6], ["one"] * 6, n_resamples=300)
    assert r1["unit"] == "comparison" and r1["n"] == 6
    assert mean_shift_ci([], [])["n"] == 0


def test_extra_datasets_in_the_images_stage(tmp_path, sample_dir):
    from types import SimpleNamespace

    from conftest import shared_path

    from madpad.pipeline.stages._common import read_csv
    from madpad.pipeline.stages.segmentation.images import select_images

    canada, selfie = shared_path("data/frll_canada"), shared_path("data/selfie")
    ctx = SimpleNamespace(inputs={"data": sample_dir}, outputs={"images": tmp_path / "im", "table": tmp_path / "t.csv"},
                          params={"n_subjects": 2, "seed": 0, "max_side": 200, "probe_variation": 0.5,
                                  "datasets": [{"kind": "frll_canada", "root": str(canada), "n_subjects": 2},
                                               {"kind": "selfie", "root": str(selfie), "label": "phone"}]})
    out = select_images(ctx)
    rows = read_csv(tmp_path / "t.csv")
    assert out["datasets"] == {"frll": 2, "frll_canada": 2, "phone": 1}
    by = {}
    for r in rows:
        by.setdefault(r["dataset"], []).append(r)
    assert [r["dataset"] for r in rows[:4]] == ["frll"] * 4  # the main data set first (the morphs' source)
    assert {float(r["variation"]) for r in by["frll"] if r["role"] == "probe"} == {0.5}
    # one portrait per subject: the probe is a simulated live capture of it, at strength >= 1
    cp = [r for r in by["frll_canada"] if r["role"] == "probe"]
    assert len(cp) == 2 and all(r["id"].endswith("_live") and float(r["variation"]) == 1.0 for r in cp)
    assert all(r["source_path"] == next(x["source_path"] for x in by["frll_canada"]
                                        if x["role"] == "reference" and x["subject"] == r["subject"]) for r in cp)
    # the selfie person: lisa1 enrols, the seven other real captures are probes, kept as they are
    ref = [r for r in by["phone"] if r["role"] == "reference"]
    assert [r["id"] for r in ref] == ["phone_lisa1"] and len(by["phone"]) == 8
    assert {float(r["variation"]) for r in by["phone"]} == {0.0}
    assert all((tmp_path / "im" / r["file"]).is_file() for r in rows)
    bad = SimpleNamespace(**{**ctx.__dict__, "params": {**ctx.params, "datasets": [{"kind": "selfie",
                                                                                     "root": str(tmp_path / "no")}]}})
    with pytest.raises(ValueError, match=r"params.datasets\[0\].root: folder not found"):
        select_images(bad)


def test_unavailable_fr_model_note(tmp_path):
    from madpad.pipeline.stages.segmentation.embed import unavailable_note

    assert unavailable_note("dlib", {}) == ""
    note = unavailable_note("hse_faceres", {"model_path": str(tmp_path / "x.onnx")})
    assert note.startswith("FR model 'hse_faceres' skipped (not available): ") and "x.onnx" in note


def test_det_points_hand_computed():
    from madpad.pipeline.stages.segmentation.recognition import det_points

    # genuine 0.6, 0.8; impostor 0.1, 0.7; match when score >= t. Thresholds 0.1, 0.6, 0.7, 0.8 and one
    # above every score: FMR = share of impostors >= t, FNMR = share of genuine < t
    d = det_points(np.array([0.6, 0.8]), np.array([0.1, 0.7]))
    assert d == {"fmr": [1.0, 0.5, 0.5, 0.0, 0.0], "fnmr": [0.0, 0.0, 0.5, 0.5, 1.0]}
    assert det_points(np.array([]), np.array([0.1])) == {"fmr": [], "fnmr": []}
    # thinned: about max_points thresholds per class, still monotone and ending at the extremes
    rng = np.random.default_rng(0)
    d = det_points(rng.normal(1, 1, 5000), rng.normal(0, 1, 5000), max_points=50)
    fmr, fnmr = np.array(d["fmr"]), np.array(d["fnmr"])
    assert 50 <= fmr.size <= 110 and fmr[0] == 1.0 and fnmr[-1] == 1.0
    assert np.all(np.diff(fmr) <= 0) and np.all(np.diff(fnmr) >= 0)


def test_stage_tables_round_trip(tmp_path):
    from madpad.pipeline.stages._common import read_csv, write_csv

    rows = [{"id": "a", "score": np.float64(0.1), "n": np.int64(3), "missing": float("nan"), "note": None},
            {"id": "b", "score": 0.25, "n": 4, "missing": np.float32(0.5), "extra": "x,y"}]
    path = write_csv(tmp_path / "t.csv", rows, ["n", "id"])
    # fixed columns first, then the others in first-seen order; NaN and None empty; floats with repr
    assert path.read_text() == ("n,id,score,missing,note,extra\n"
                                "3,a,0.1,,,\n"
                                '4,b,0.25,0.5,,"x,y"\n')
    back = read_csv(path)
    assert back == [{"n": "3", "id": "a", "score": "0.1", "missing": "", "note": "", "extra": ""},
                    {"n": "4", "id": "b", "score": "0.25", "missing": "0.5", "note": "", "extra": "x,y"}]


def test_each_study_stage_is_cached_on_its_own_modules(tmp_path):
    """The runner's cache key (code_hash) covers a stage's module, the shared helpers and the madpad
    modules it uses, and not the other stages' modules (editing one stage reruns only what follows)."""
    import importlib
    import inspect

    from madpad.pipeline import load_pipeline
    from madpad.pipeline.fingerprint import _code_label, _madpad_closure

    spec = load_pipeline(REPO / "pipelines" / "segmentation_study.yaml", workdir=tmp_path)
    stage_modules = {st.fn.split(":")[0].rsplit(".", 1)[1] for st in spec.stages.values()}
    assert stage_modules == {"images", "faces", "segment", "morphs", "embed", "recognition", "quality",
                             "detection", "report"}
    for st in spec.stages.values():
        module = st.fn.split(":")[0]
        files = {_code_label(f).removeprefix("madpad/")  # location-independent (any clone folder)
                 for f in _madpad_closure(module, inspect.getsourcefile(importlib.import_module(module)))}
        own = module.rsplit(".", 1)[1]
        assert f"pipeline/stages/segmentation/{own}.py" in files and "pipeline/stages/_common.py" in files
        others = {f"pipeline/stages/segmentation/{m}.py" for m in stage_modules - {own}}
        assert not files & others, (st.name, files & others)
        if st.name == "recognition":
            assert {"face/comparisons.py", "metrics/verification.py", "pipeline/stages/segmentation/common.py"} <= files


def _read(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_study_pipeline_end_to_end(tmp_path):
    """Tiny run through the runner: 4 subjects, 2 fast segmenters, images at 360 px."""
    from madpad.pipeline import load_pipeline, run_pipeline

    sets = ["params.n_subjects=4", "params.max_side=360", "params.segmenters=[landmark_hull, mediapipe_selfie]",
            "params.note=test run", "params.n_resamples=100",
            (f"params.fr_models=[{{name: dlib, detector: {{name: dlib_hog, upsample: 0}}}}, "
             f"{{name: mobileface, model_path: {tmp_path / 'absent.onnx'}}}]")]
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
    assert conds == {"original_vs_original", "landmark_hull_vs_original", "original_vs_landmark_hull",
                     "landmark_hull_vs_landmark_hull", "mediapipe_selfie_vs_original",
                     "original_vs_mediapipe_selfie", "mediapipe_selfie_vs_mediapipe_selfie"}
    assert {r["model"] for r in rec} == {"dlib"}  # the FR model without its file was skipped
    base = next(r for r in rec if r["condition"] == "original_vs_original")
    assert int(base["n_genuine"]) == 4 and int(base["n_impostor"]) == 12 and float(base["genuine_shift"]) == 0.0
    shifts = _read(wd / "recognition" / "shifts.csv")
    assert len(shifts) == 6 * 2 and {r["kind"] for r in shifts} == {"genuine", "impostor"}
    g = next(r for r in shifts if r["condition"] == "landmark_hull_vs_original" and r["kind"] == "genuine")
    hull = next(r for r in rec if r["condition"] == "landmark_hull_vs_original")
    # every pair compared in both conditions: the paired shift is the difference of the means
    assert int(g["n"]) == 4 and float(g["shift"]) == pytest.approx(float(hull["genuine_shift"]), abs=1e-9)
    assert float(g["ci_low"]) <= float(g["shift"]) <= float(g["ci_high"]) and g["unit"] == "comparison"
    q = {r["variant"]: r for r in _read(wd / "quality" / "quality_summary.csv")}
    assert set(q) == {"original", "landmark_hull", "mediapipe_selfie"}
    for v in ("landmark_hull", "mediapipe_selfie"):  # a white background is more uniform than the backdrop
        assert float(q[v]["background_spread"]) < float(q["original"]["background_spread"])
    det = _read(wd / "detection" / "detection.csv")
    assert [r["metric"] for r in det] == ["BPCER", "BPCER", "BPCER", "D-EER"]
    assert {"original", "landmark_hull", "mediapipe_selfie"} <= set(det[0])
    html = (wd / "report" / "report.html").read_text(encoding="utf-8")
    for text in ("Face recognition effect", "Image quality effect", "Morphing attack detection effect",
                 "data:image/", "test run", "CC BY 4.0", "Score shifts and decision changes",
                 "FR model &#x27;mobileface&#x27; skipped (not available)", "absent.onnx"):
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


def test_detection_without_morphs_writes_a_header_and_a_note(tmp_path):
    """Every morph failed: the stage still writes its tables (header only) and says why."""
    from types import SimpleNamespace

    from madpad.pipeline.stages.segmentation.detection import detection_effect

    (tmp_path / "images.csv").write_text("id,file,subject,role,dataset\nr1,r1.jpg,1,reference,frll\n"
                                         "p1,p1.jpg,1,probe,frll\n")
    (tmp_path / "seg.csv").write_text("id,segmenter,file,matte,status,error,foreground_share\n"
                                      "r1,hull,hull/r1.jpg,hull/mattes/r1.png,ok,,0.4\n")
    (tmp_path / "morphs.csv").write_text("id,path,a,b,subject_a,subject_b,status\nm,,r1,r2,1,2,failed\n")
    (tmp_path / "emb").mkdir()
    ctx = SimpleNamespace(inputs={"images": tmp_path, "table": tmp_path / "images.csv", "segmented": tmp_path,
                                  "segmented_table": tmp_path / "seg.csv", "morphs": tmp_path,
                                  "morphs_table": tmp_path / "morphs.csv", "embeddings": tmp_path / "emb"},
                          outputs={"table": tmp_path / "d.csv", "scores": tmp_path / "s.csv", "notes": tmp_path / "n.json"},
                          params={})
    out = detection_effect(ctx)
    assert out["rows"] == 0 and out["notes"] == ["no morph was made (see morphs.csv): the MAD effect was not measured"]
    assert (tmp_path / "d.csv").read_text().splitlines() == [
        "detector,n_attack,n_bona_fide,metric,apcer_target,threshold,apcer,original,hull"]
    assert json.loads((tmp_path / "n.json").read_text())["n_attack_pairs"] == 0
