"""The demo as a pipeline (``pipelines/demo.yaml``): its segmentation stages stay those of the
study, a failed or skipped step still gets its report section, a failure is not cached, and a
run after an interrupted one finishes the rest while reusing what finished."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBJECTS = ("001", "007", "011", "020", "004", "017", "024", "036")


def test_segmentation_stages_are_those_of_the_study(tmp_path):
    """demo.yaml runs the study's stages as seg_*: same functions, inputs, outputs and (for the
    demo's settings) the same params, so the two pipelines cannot drift apart."""
    from madpad.pipeline import load_pipeline
    from madpad.pipeline.stages.demo.common import (
        SEGMENTATION_STUDY_STAGES,
        STEP_STAGES,
    )

    demo = load_pipeline(ROOT / "pipelines" / "demo.yaml", workdir=tmp_path / "demo")
    note = demo.stages["seg_report"].params["note"]
    study = load_pipeline(ROOT / "pipelines" / "segmentation_study.yaml", workdir=tmp_path / "study",
                          set_items=["params.n_subjects=6", "params.segmenters=[mediapipe_selfie, landmark_hull, grabcut]",
                                     f"params.note={json.dumps(note)}"])
    assert tuple(study.order) == SEGMENTATION_STUDY_STAGES
    assert STEP_STAGES["segmentation"] == tuple(f"seg_{s}" for s in study.order) + ("segmentation",)
    for name, st in study.stages.items():
        mine = demo.stages[f"seg_{name}"]
        assert mine.fn == st.fn, name
        assert mine.outputs == st.outputs, name
        assert mine.params == st.params, name
        assert set(mine.inputs) == set(st.inputs), name
        assert mine.input_refs == {k: (f"seg_{s}", o) for k, (s, o) in st.input_refs.items()}, name
    assert demo.stages["seg_images"].inputs["data"] == study.stages["images"].inputs["data"]
    # every stage names a real function; the summary and the report come after the study, and the
    # report reads every step's status
    import importlib

    for st in demo.stages.values():
        module, func = st.fn.split(":")
        assert callable(getattr(importlib.import_module(module), func)), st.fn
    assert demo.order.index("segmentation") > demo.order.index("seg_report")
    assert set(demo.stages["report"].deps) == {"data", "generate", "vulnerability", "detect", "tshirt", "segmentation"}


# --------------------------------------------------------------------------- failures, skips, resume
def _manifest(path: Path) -> Path:
    from madpad.data import read_table, write_table
    from madpad.data.sample import sample_manifest_path

    t = read_table(sample_manifest_path())
    write_table(path, [r for r in t.rows if r["subject"] in SUBJECTS], columns=t.columns)
    return path


def _run(argv) -> tuple[int, str]:
    from madpad.demo import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, err.getvalue()


def test_failed_and_skipped_steps_are_reported_and_an_interrupted_run_resumes(tmp_path, monkeypatch):
    pytest.importorskip("dlib")
    from madpad.data.sample import sample_root
    from madpad.pipeline.stages.demo import generate, tshirt, vulnerability
    from madpad.pipeline.stages.demo.common import StepSkipped

    out = tmp_path / "out"
    argv = ["--out", str(out), "--data", str(_manifest(tmp_path / "images.csv")), "--root", str(sample_root()),
            "--pairs", "2", "--steps", "generate,vulnerability,tshirt", "--no-progress"]
    real_generate = generate._generate

    def boom(run):
        raise RuntimeError("boom")

    def nothing_to_do(run):
        raise StepSkipped("nothing to do here")

    def interrupted(run):
        raise KeyboardInterrupt

    # 1. generate fails: its section says why, vulnerability (which needs its morphs) is skipped, the
    #    independent tshirt step still runs (here: skips with its reason); exit code 1
    monkeypatch.setattr(generate, "_generate", boom)
    monkeypatch.setattr(tshirt, "_tshirt", nothing_to_do)
    rc, err = _run(argv)
    assert rc == 1, err[-2000:]
    assert "step generate failed: RuntimeError: boom" in err
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    steps = doc["steps"]
    assert steps["generate"]["status"] == "failed" and steps["generate"]["error"] == "RuntimeError: boom"
    assert (out / steps["generate"]["log"]).is_file()
    assert steps["vulnerability"] == {**steps["vulnerability"], "status": "skipped",
                                      "reason": "needs the outputs of step 'generate', which failed"}
    assert steps["tshirt"]["status"] == "skipped" and steps["tshirt"]["reason"] == "nothing to do here"
    assert steps["detect"]["status"] == steps["segmentation"]["status"] == "not run"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Failed: RuntimeError: boom" in html and "Skipped: nothing to do here" in html
    assert not (out / "generate" / "status.json").exists()  # a failure publishes nothing

    # 2. generate works now (the failure was not cached); vulnerability is interrupted (Ctrl-C)
    monkeypatch.setattr(generate, "_generate", real_generate)
    real_vulnerability = vulnerability._vulnerability
    monkeypatch.setattr(vulnerability, "_vulnerability", interrupted)
    rc, err = _run(argv)
    assert rc == 130, err[-2000:]
    gen = json.loads((out / "generate" / "status.json").read_text(encoding="utf-8"))
    assert gen["status"] == "ok" and gen["result"]["methods"]["landmark"]["made"] == 2
    assert not (out / "vulnerability" / "status.json").exists()

    # 3. the rerun reuses generate (and the cached skip of tshirt) and finishes vulnerability
    monkeypatch.setattr(vulnerability, "_vulnerability", real_vulnerability)
    rc, err = _run(argv)
    assert rc == 0, err[-2000:]
    assert err.count("done before, reusing") == 2 and "(skipped: nothing to do here)" in err
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert {k: v["status"] for k, v in doc["steps"].items()} == {
        "generate": "ok", "vulnerability": "ok", "detect": "not run", "tshirt": "skipped", "segmentation": "not run"}
    assert json.loads((out / "generate" / "status.json").read_text())["started"] == gen["started"]
    v = doc["results"]["vulnerability"]["methods"]["landmark"]
    assert v["n_morphs"] == 2 and v["n_genuine"] == 8
    from madpad.data import read_table

    kinds = {r["kind"] for r in read_table(out / v["comparisons"]).rows}
    assert kinds == {"genuine", "impostor", "morph"}
    # the whole run in one summary: every stage with its status
    summary = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    assert [(s["stage"], s["status"]) for s in summary["stages"]] == [
        ("data", "ran"), ("generate", "skipped"), ("vulnerability", "ran"), ("tshirt", "skipped"), ("report", "ran")]


def test_data_stage_writes_the_chosen_images_and_reads_back(tmp_path):
    """The data stage's table names each subject's enrolment and probe image with its size (so the
    later stages' cache keys change when a file is replaced), and reads back to the same choice."""
    from types import SimpleNamespace

    from madpad.data import read_table
    from madpad.data.sample import sample_root
    from madpad.pipeline.stages.demo.common import DemoData, load_data
    from madpad.pipeline.stages.demo.data import select_data

    manifest = _manifest(tmp_path / "images.csv")
    ctx = SimpleNamespace(params={"data": str(manifest), "root": str(sample_root())},
                          outputs={"images": tmp_path / "data" / "images.csv", "info": tmp_path / "data" / "data.json"})
    (tmp_path / "data").mkdir()
    assert select_data(ctx) == {"subjects": 8, "source": "manifest"}
    rows = read_table(ctx.outputs["images"]).rows
    assert [(r["subject"], r["capture"]) for r in rows] == (
        [(s, "enrolment") for s in sorted(SUBJECTS)] + [(s, "probe") for s in sorted(SUBJECTS)])
    for r in rows:
        assert not r["path"].startswith("/") and int(r["bytes"]) == (sample_root() / r["path"]).stat().st_size
    info = json.loads(ctx.outputs["info"].read_text(encoding="utf-8"))
    assert info["is_frll"] is True and info["subjects"] == sorted(SUBJECTS) and info["root"] == str(sample_root())
    back = DemoData.read(ctx.outputs["images"], ctx.outputs["info"])
    direct = load_data(str(manifest), sample_root())
    assert [r.id for r in back.enrolment] == [r.id for r in direct.enrolment]
    assert [r.path for r in back.probe] == [r.path for r in direct.probe]
    assert back.splits(0) == direct.splits(0) and back.gender("001") == "female"


def test_a_step_time_includes_the_earlier_stages_it_gathers(tmp_path):
    """The segmentation step's seconds include the study stages that ran before its summary stage."""
    import json
    from types import SimpleNamespace

    from madpad.pipeline.stages.demo.common import run_step

    ctx = SimpleNamespace(inputs={}, outputs={"status": tmp_path / "status.json"}, params={}, workdir=tmp_path,
                          log=None)
    result = {"stages": {"seg_images": {"seconds": 2.5}, "seg_embed": {"seconds": 10.25}, "seg_x": {}}}
    status = run_step(ctx, "segmentation", lambda run: result,
                      earlier_seconds=lambda r: sum(float(s.get("seconds") or 0) for s in r["stages"].values()))
    assert 12.7 <= status["seconds"] < 13.5
    assert json.loads((tmp_path / "status.json").read_text())["seconds"] == status["seconds"]
    plain = run_step(ctx, "segmentation", lambda run: result)
    assert plain["seconds"] < 1.0
