"""Pipeline runner: cache hits/misses, resume, atomic outputs, per-item failures, executors, CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from madpad.errors import UsageError
from madpad.io import write_image
from madpad.pipeline import ItemFailure, load_pipeline, pipeline_status, run_pipeline
from madpad.pipeline.__main__ import main as cli_main

REPO = Path(__file__).resolve().parents[1]

YAML = """
name: toy
workdir: run
params:
  manifest: data/images.csv
  root: data
  fail_ids: []
  stats_flag: ""
  summary_flag: ""
stages:
  summary:                      # declared first: order must come from the references
    fn: madpad.pipeline.examples:summary_stage
    inputs: {table: "${stages.stats.outputs.table}"}
    outputs: {summary: summary.json}
    params: {fail_if_exists: "${params.summary_flag}"}
  stats:
    fn: madpad.pipeline.examples:stats_stage
    inputs: {manifest: "${params.manifest}", root: "${params.root}"}
    outputs: {table: stats.csv}
    params: {fail_ids: "${params.fail_ids}", fail_if_exists: "${params.stats_flag}"}
"""


@pytest.fixture
def toy(tmp_path):
    """A 6-image dataset (3 subjects x enrolment/probe), its manifest and the pipeline YAML."""
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    lines = ["id,path,subject,label,species,capture,source"]
    for s in range(3):
        for cap in ("enrolment", "probe"):
            rel = f"img/{s}_{cap}.png"
            write_image(data / rel, rng.integers(0, 256, size=(24, 20, 3), dtype=np.uint8))
            lines.append(f"{s}_{cap},{rel},{s:03d},bona_fide,,{cap},toy")
    (data / "images.csv").write_text("\n".join(lines) + "\n")
    y = tmp_path / "toy.yaml"
    y.write_text(YAML)
    return y


def _run(yaml_path, *set_items, **kw):
    kw.setdefault("executor", "serial")
    kw.setdefault("quiet", True)
    spec = load_pipeline(yaml_path, set_items=list(set_items))
    return spec, run_pipeline(spec, **kw)


def test_order_from_references_and_outputs(toy):
    spec, s = _run(toy)
    assert spec.order == ["stats", "summary"]
    assert [(r.stage, r.status) for r in s.stages] == [("stats", "ran"), ("summary", "ran")]
    table = (spec.workdir / "stats" / "stats.csv").read_text().splitlines()
    assert table[0] == "id,subject,capture,brightness,contrast,sharpness,status,error" and len(table) == 7
    summ = json.loads((spec.workdir / "summary" / "summary.json").read_text())
    assert summ["n_images"] == 6 and summ["per_capture"]["probe"]["n"] == 3
    rs = json.loads((spec.workdir / "run_summary.json").read_text())
    assert rs["ok"] and [x["status"] for x in rs["stages"]] == ["ran", "ran"]
    assert rs["stages"][0]["items"] == {"total": 6, "cached": 0, "failed": 0}
    assert "=== run of stage stats" in (spec.workdir / "logs" / "stats.log").read_text()


def test_cache_hit_on_rerun(toy):
    spec, _ = _run(toy)
    out = spec.workdir / "stats" / "stats.csv"
    before = (out.stat().st_mtime_ns, out.read_bytes())
    _, s = _run(toy)
    assert [r.status for r in s.stages] == ["skipped", "skipped"]
    assert (out.stat().st_mtime_ns, out.read_bytes()) == before
    assert [r["state"] for r in pipeline_status(spec)] == ["up to date", "up to date"]


def test_cache_miss_after_param_change_and_content_addressing(toy, tmp_path):
    _run(toy)
    # a param that changes stats' output: both stages rerun
    _, s = _run(toy, "params.fail_ids=[1_probe]")
    assert [r.status for r in s.stages] == ["ran", "ran"]
    assert "params changed: ['fail_ids']" in s.stages[0].reason
    # a param change that leaves stats.csv byte-identical: stats reruns, summary is skipped
    # because its input's content hash is unchanged
    _, s = _run(toy, "params.fail_ids=[1_probe]", f"params.stats_flag={tmp_path / 'absent'}")
    assert [r.status for r in s.stages] == ["ran", "skipped"]


def test_cache_miss_after_input_file_change(toy):
    spec, _ = _run(toy)
    img = toy.parent / "data" / "img" / "2_probe.png"
    write_image(img, np.zeros((24, 20, 3), np.uint8))
    st = {r["stage"]: r for r in pipeline_status(spec)}
    assert st["stats"]["state"] == "stale" and "inputs changed: ['root']" in st["stats"]["why"]
    _, s = _run(toy)
    assert [r.status for r in s.stages] == ["ran", "ran"]
    rows = (spec.workdir / "stats" / "stats.csv").read_text().splitlines()
    assert any(r.startswith("2_probe,002,probe,0.0,0.0,0.0,ok") for r in rows)


def test_resume_after_injected_failure_skips_earlier_stage(toy, tmp_path):
    flag = tmp_path / "FAIL"
    flag.touch()
    spec, s = _run(toy, f"params.summary_flag={flag}")
    assert [r.status for r in s.stages] == ["ran", "failed"]
    assert "injected stage failure" in s.stages[1].error and not s.ok
    assert not (spec.workdir / "summary").exists()  # no partial output folder
    assert list((spec.workdir / ".madpad" / "tmp").iterdir()) == []
    assert "injected stage failure" in (spec.workdir / "logs" / "summary.log").read_text()
    assert json.loads((spec.workdir / "run_summary.json").read_text())["ok"] is False
    flag.unlink()
    _, s = _run(toy, f"params.summary_flag={flag}")
    assert [r.status for r in s.stages] == ["skipped", "ran"] and s.ok


def test_per_item_results_resume_inside_a_failed_stage(toy, tmp_path):
    flag = tmp_path / "FAIL"
    flag.touch()
    spec, s = _run(toy, f"params.stats_flag={flag}")
    assert [r.status for r in s.stages] == ["failed", "blocked"]
    assert s.stages[0].items == {"total": 6, "cached": 0, "failed": 0}
    assert not (spec.workdir / "stats").exists()
    cached = list((spec.workdir / ".madpad" / "cache" / "stats").rglob("*.npz"))
    assert len(cached) == 6
    assert not list((spec.workdir / ".madpad" / "cache").rglob("*.pkl"))  # nothing pickled
    flag.unlink()
    _, s = _run(toy, f"params.stats_flag={flag}")
    assert [r.status for r in s.stages] == ["ran", "ran"]
    assert s.stages[0].items == {"total": 6, "cached": 6, "failed": 0}  # nothing computed twice
    assert not (spec.workdir / ".madpad" / "cache" / "stats").exists()  # scratch removed on success


def test_failed_rerun_keeps_previous_complete_outputs(toy, tmp_path):
    spec, _ = _run(toy)
    old = (spec.workdir / "summary" / "summary.json").read_bytes()
    flag = tmp_path / "FAIL"
    flag.touch()
    _, s = _run(toy, f"params.summary_flag={flag}")
    assert s.status_of("summary") == "failed"
    assert (spec.workdir / "summary" / "summary.json").read_bytes() == old
    assert sorted(p.name for p in (spec.workdir / "summary").iterdir()) == [".madpad-stage.json", "summary.json"]


def test_per_item_failures_recorded_and_stage_carries_on(toy):
    spec, s = _run(toy, "params.fail_ids=[0_enrolment, 2_probe]")
    assert s.ok and s.stages[0].items["failed"] == 2
    rows = {r.split(",")[0]: r for r in (spec.workdir / "stats" / "stats.csv").read_text().splitlines()[1:]}
    assert rows["0_enrolment"].endswith(",failed,ValueError: injected failure for 0_enrolment")
    assert rows["1_probe"].split(",")[6] == "ok"
    summ = json.loads((spec.workdir / "summary" / "summary.json").read_text())
    assert summ["n_failed"] == 2 and summ["per_capture"]["enrolment"]["n"] == 2
    assert "item 0 failed: ValueError: injected failure" in (spec.workdir / "logs" / "stats.log").read_text()


def test_item_failure_value():
    f = ItemFailure(item={"id": 1}, error="ValueError: x")
    assert not f and f.item == {"id": 1}


def test_local_process_pool_matches_serial(toy, tmp_path):
    spec_a, _ = _run(toy, "params.fail_ids=[1_enrolment]", executor="serial")
    spec_b = load_pipeline(toy, set_items=["params.fail_ids=[1_enrolment]"], workdir=tmp_path / "pool")
    s_b = run_pipeline(spec_b, executor="local", workers=2, quiet=True)
    assert s_b.ok and s_b.stages[0].items["failed"] == 1
    for rel in ("stats/stats.csv", "summary/summary.json"):
        assert (spec_a.workdir / rel).read_bytes() == (spec_b.workdir / rel).read_bytes()


def test_only_and_from(toy):
    spec = load_pipeline(toy)
    s = run_pipeline(spec, only="summary", executor="serial", quiet=True)
    assert s.status_of("summary") == "failed" and "run that stage first" in s.stages[0].error
    _run(toy)
    _, s = _run(toy, from_stage="summary")
    assert [r.stage for r in s.stages] == ["summary"] and s.stages[0].status == "skipped"
    _, s = _run(toy, only="stats", force=True)
    assert [(r.stage, r.status) for r in s.stages] == [("stats", "ran")]


# ------------------------------------------------------------------- bad pipelines
def _bad(tmp_path, text: str) -> str:
    p = tmp_path / "bad.yaml"
    p.write_text(textwrap.dedent(text))
    with pytest.raises(UsageError) as ei:
        load_pipeline(p)
    return str(ei.value)


STAGE = "fn: madpad.pipeline.examples:stats_stage"


def test_bad_yaml_errors(tmp_path):
    assert "'stagez' is not a valid key" in _bad(tmp_path, f"stagez: {{a: {{{STAGE}}}}}\n") \
        and "Similar keys: ['stages']" in _bad(tmp_path, f"stagez: {{a: {{{STAGE}}}}}\n")
    msg = _bad(tmp_path, f"stages: {{a: {{{STAGE}, output: {{t: x.csv}}}}}}\n")
    assert "stages.a" in msg and "'output' is not a valid key" in msg and "'outputs'" in msg
    assert "expected 'package.module:function'" in _bad(tmp_path, "stages: {a: {fn: 'madpad.pipeline.examples'}}\n")
    msg = _bad(tmp_path, f"params: {{manifest: x}}\nstages: {{a: {{{STAGE}, inputs: {{m: '${{params.manfest}}'}}}}}}\n")
    assert "stages.a.inputs.m" in msg and "unknown param 'manfest'" in msg and "Did you mean 'manifest'" in msg
    msg = _bad(tmp_path, f"stages:\n  a: {{{STAGE}, outputs: {{t: t.csv}}}}\n"
                         f"  b: {{{STAGE}, inputs: {{t: '${{stages.aa.outputs.t}}'}}}}\n")
    assert "unknown stage 'aa'" in msg and "Did you mean 'a'" in msg
    msg = _bad(tmp_path, f"stages:\n  a: {{{STAGE}, outputs: {{t: t.csv}}}}\n"
                         f"  b: {{{STAGE}, inputs: {{t: '${{stages.a.outputs.table}}'}}}}\n")
    assert "stage 'a' has no output 'table'" in msg
    msg = _bad(tmp_path, f"stages:\n  a: {{{STAGE}, inputs: {{x: '${{stages.b.outputs.t}}'}}, outputs: {{t: t}}}}\n"
                         f"  b: {{{STAGE}, inputs: {{x: '${{stages.a.outputs.t}}'}}, outputs: {{t: t}}}}\n")
    assert "dependency cycle a -> b -> a" in msg
    assert "must stay inside the stage directory" in _bad(tmp_path, f"stages: {{a: {{{STAGE}, outputs: {{t: ../x}}}}}}\n")
    assert "invalid YAML" in _bad(tmp_path, "stages: {a: [\n")
    assert "'stages' must be a mapping" in _bad(tmp_path, "name: x\n")
    msg = _bad(tmp_path, f"stages: {{a: {{{STAGE}, inputs: {{x: '${{env.MADPAD_TEST_SURELY_UNSET}}'}}}}}}\n")
    assert "environment variable MADPAD_TEST_SURELY_UNSET is not set" in msg


def test_set_overrides_checked(toy, tmp_path):
    with pytest.raises(UsageError, match="Similar keys: \\['fail_ids'\\]"):
        load_pipeline(toy, set_items=["params.fail_id=[]"])
    with pytest.raises(UsageError, match="cannot be overridden"):
        load_pipeline(toy, set_items=[f"workdir={tmp_path / 'x'}"])
    spec = load_pipeline(toy, set_items=["stages.stats.params.fail_ids=[a]"])
    assert spec.stages["stats"].params["fail_ids"] == ["a"]


def test_cli_exit_codes_and_messages(toy, capsys):
    assert cli_main(["run", str(toy), "--from", "stat", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown stage 'stat'" in err and "valid stages: ['stats', 'summary']" in err and "'stats'" in err
    assert cli_main(["run", str(toy), "--executor", "serial", "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "run_summary.json" in out.out and "stats    ran" in out.err
    flag = toy.parent / "FLAG"
    flag.touch()
    assert cli_main(["run", str(toy), "--executor", "serial", "--set", f"params.summary_flag={flag}"]) == 1
    capsys.readouterr()
    assert cli_main(["status", str(toy)]) == 0  # the failed run kept the previous complete outputs
    assert capsys.readouterr().out == "stats: up to date\nsummary: up to date\n"
    assert cli_main(["status", str(toy), "--set", f"params.summary_flag={flag}"]) == 0
    assert "summary: stale: params changed: ['fail_if_exists']" in capsys.readouterr().out
    assert cli_main(["show", str(toy)]) == 0
    shown = capsys.readouterr().out
    assert "order:\n- stats\n- summary" in shown
    assert cli_main(["run", str(toy.parent / "nope.yaml")]) == 2


def test_shipped_example_pipeline_loads():
    spec = load_pipeline(REPO / "pipelines" / "example_small.yaml")
    assert spec.order == ["stats", "summary"]
    assert spec.stages["stats"].inputs["manifest"].is_file()
    assert spec.workdir == (REPO / "runs" / "example_small").resolve()


def test_ray_executor_outputs_equal_serial(toy, tmp_path):
    """One local Ray (num_cpus=1) run: same bytes as the serial executor, item failures included."""
    pytest.importorskip("ray", reason="ray not installed (pip install 'madpad[ray]')")
    spec_a, _ = _run(toy, "params.fail_ids=[2_enrolment]", executor="serial")
    spec_b = load_pipeline(toy, set_items=["params.fail_ids=[2_enrolment]"], workdir=tmp_path / "ray")
    s_b = run_pipeline(spec_b, executor="ray", workers=1, quiet=True)
    assert s_b.ok and s_b.executor == "ray" and s_b.stages[0].items == {"total": 6, "cached": 0, "failed": 1}
    for rel in ("stats/stats.csv", "summary/summary.json"):
        assert (spec_a.workdir / rel).read_bytes() == (spec_b.workdir / rel).read_bytes()
    import ray

    assert not ray.is_initialized()  # the runner stops the local Ray it started


def interrupting_stage(ctx):
    """A stage that computes its items, then gets interrupted (Ctrl-C) before writing outputs."""
    from madpad.pipeline.examples import image_stats

    ctx.outputs["table"].write_text("partial")
    ctx.map(image_stats, [{"id": "a", "path": str(ctx.inputs["image"])}], desc="one")
    raise KeyboardInterrupt


def test_interrupted_run_leaves_no_partial_outputs_and_a_summary(toy):
    y = toy.parent / "int.yaml"
    y.write_text("workdir: run2\nstages:\n  s:\n    fn: test_pipeline_runner:interrupting_stage\n"
                 "    inputs: {image: data/img/0_probe.png}\n    outputs: {table: t.csv}\n")
    spec = load_pipeline(y)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(spec, executor="serial", quiet=True)
    wd = spec.workdir
    assert not (wd / "s").exists() and list((wd / ".madpad" / "tmp").iterdir()) == []
    assert len(list((wd / ".madpad" / "cache" / "s").rglob("*.npz"))) == 1  # finished item kept for the rerun
    rs = json.loads((wd / "run_summary.json").read_text())
    assert [(x["stage"], x["status"]) for x in rs["stages"]] == [("s", "interrupted")]


def test_one_run_per_workdir(toy):
    fcntl = pytest.importorskip("fcntl")
    spec = load_pipeline(toy)
    lock = spec.workdir / ".madpad" / "lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        with pytest.raises(UsageError, match="another pipeline run is using"):
            run_pipeline(spec, executor="serial", quiet=True)
    assert run_pipeline(spec, executor="serial", quiet=True).ok


def crashing_stage(ctx):
    """Per-item work where one worker process dies; the others' results must be cached."""
    from madpad.pipeline.examples import image_stats

    items = [{"id": f"{i}", "path": str(ctx.inputs["image"]), "crash": i == 5 and ctx.params["crash"]}
             for i in range(6)]
    res = ctx.map(image_stats, items, desc="crash")
    ctx.outputs["out"].write_text(json.dumps([bool(r) for r in res]))


def test_worker_crash_fails_stage_then_resumes(toy):
    y = toy.parent / "crash.yaml"
    y.write_text("workdir: run3\nparams: {crash: true}\nstages:\n  s:\n    fn: test_pipeline_runner:crashing_stage\n"
                 "    inputs: {image: data/img/0_probe.png}\n    outputs: {out: out.json}\n"
                 "    params: {crash: '${params.crash}'}\n")
    spec = load_pipeline(y)
    s = run_pipeline(spec, executor="local", workers=2, quiet=True)
    assert s.status_of("s") == "failed" and "a worker process died" in s.stages[0].error
    assert not (spec.workdir / "s").exists()
    spec = load_pipeline(y, set_items=["params.crash=false"])
    s = run_pipeline(spec, executor="local", workers=2, quiet=True)
    assert s.ok and json.loads((spec.workdir / "s" / "out.json").read_text()) == [True] * 6


# ------------------------------------------------------------------- cache format, bad input, cleanup
class _Planted:
    """Unpickling this creates a marker file (what a malicious cache file could do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_crafted_pickle_in_the_cache_folder_is_never_loaded(toy, tmp_path):
    import pickle

    flag = tmp_path / "FAIL"
    flag.touch()
    spec, _ = _run(toy, f"params.stats_flag={flag}")  # fails after caching its 6 items
    cached = sorted((spec.workdir / ".madpad" / "cache" / "stats").rglob("*.npz"))
    assert len(cached) == 6
    marker = tmp_path / "PWNED"
    evil = pickle.dumps(_Planted(marker))
    for p in cached:  # the same names, pickled content; and the names an older runner used
        p.write_bytes(evil)
        p.with_suffix(".pkl").write_bytes(evil)
    flag.unlink()
    _, s = _run(toy, f"params.stats_flag={flag}")
    assert not marker.exists()
    assert s.ok and s.stages[0].items == {"total": 6, "cached": 0, "failed": 0}  # recomputed instead


def test_cache_values_round_trip_without_pickle(tmp_path):
    from madpad.pipeline.item_cache import decode_cached, encode_cached

    value = {"a": 1, "b": [1.5, float("inf"), None, True, "x"], "t": (1, "y"), "p": Path("d") / "f.png",
             "arr": np.arange(6, dtype=np.float32).reshape(2, 3), "keys": np.array(["k1", "k2"]),
             "s": np.float64(0.25), "nan": float("nan")}
    f = tmp_path / "v.npz"
    f.write_bytes(encode_cached(value))
    got = decode_cached(f)
    assert set(got) == set(value) and got["a"] == 1 and got["b"] == [1.5, float("inf"), None, True, "x"]
    assert got["t"] == (1, "y") and isinstance(got["t"], tuple) and got["p"] == Path("d/f.png")
    assert got["arr"].dtype == np.float32 and np.array_equal(got["arr"], value["arr"])
    assert got["keys"].tolist() == ["k1", "k2"] and type(got["s"]) is np.float64 and got["s"] == 0.25
    assert np.isnan(got["nan"])
    # what JSON + plain arrays cannot hold is not cached (recomputed next time)
    for bad in ({1, 2}, {1: "int key"}, object(), np.array([object()]), {"__madpad__": "ndarray"}):
        assert encode_cached(bad) is None
    npy = tmp_path / "x.npy"
    np.save(npy, np.zeros(2))
    with pytest.raises(ValueError, match="not a madpad cache file"):
        decode_cached(npy)


def test_bad_manifest_inside_a_stage_exits_2_and_a_stage_failure_exits_1(toy, capsys):
    (toy.parent / "data" / "bad.csv").write_text("id,path,subject,label,species,capture,source\n"
                                                 "x,../../outside.png,001,bona_fide,,probe,toy\n")
    rc = cli_main(["run", str(toy), "--executor", "serial", "--no-progress", "--set", "params.manifest=data/bad.csv"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "error: stage stats:" in err and "bad.csv" in err and "escapes the dataset root" in err
    rs = json.loads((toy.parent / "run" / "run_summary.json").read_text())
    assert [(x["stage"], x["status"], x["bad_input"]) for x in rs["stages"]] == [
        ("stats", "failed", True), ("summary", "blocked", False)]
    flag = toy.parent / "FLAG"
    flag.touch()
    assert cli_main(["run", str(toy), "--executor", "serial", "--no-progress", "--set",
                     f"params.stats_flag={flag}"]) == 1


def test_run_removes_what_a_killed_run_left_and_says_so(toy, capsys):
    spec = load_pipeline(toy)
    wd = spec.workdir
    left = [wd / ".madpad" / "tmp" / "stats-abc123" / "stats.csv", wd / "stats" / ".stats.csv.a1b2c3d4.tmp.csv",
            wd / ".madpad" / "cache" / "stats" / "k" / "map" / ".x.npz.zz99yy88.tmp.npz"]
    for p in left:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("partial")
    mine = [wd / "notes.tmp.csv", wd / ".notes.tmp.csv"]  # not madpad's temp names: kept
    for p in mine:
        p.write_text("mine")
    s = run_pipeline(spec, executor="serial")
    err = capsys.readouterr().err
    assert s.ok and "cleaned up after an interrupted run: removed 3 stale temporary file(s)/folder(s)" in err
    assert ".madpad/tmp/stats-abc123" in err
    assert not any(p.exists() for p in left) and all(p.read_text() == "mine" for p in mine)


def test_segmentation_images_stage_records_an_unreadable_image_and_goes_on(tmp_path, sample_dir):
    """One undecodable file: its images.csv row is failed with the error, the other images are
    written, and the later stages (which read the table through images_table / study_roles)
    see only the usable images."""
    import shutil
    from types import SimpleNamespace

    from madpad.pipeline.runner import ItemCounts
    from madpad.pipeline.stages._common import read_csv
    from madpad.pipeline.stages.segmentation.common import images_table, study_roles
    from madpad.pipeline.stages.segmentation.images import select_images

    data = tmp_path / "data"
    lines = ["id,path,subject,label,species,capture,source"]
    for sid in ("001", "004", "007"):
        for n, cap, folder in (("03", "enrolment", "neutral"), ("08", "probe", "smiling")):
            (data / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sample_dir / folder / f"{sid}_{n}.jpg", data / folder / f"{sid}_{n}.jpg")
            lines.append(f"{sid}_{n},{folder}/{sid}_{n}.jpg,{sid},bona_fide,,{cap},frll")
    (data / "images.csv").write_text("\n".join(lines) + "\n")
    (data / "smiling" / "004_08.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
    ctx = SimpleNamespace(inputs={"data": data}, outputs={"images": tmp_path / "im", "table": tmp_path / "t.csv"},
                          params={"manifest": str(data / "images.csv"), "seed": 0, "max_side": 64,
                                  "probe_variation": 0.0}, items=ItemCounts())
    out = select_images(ctx)
    assert out["images"] == 6 and out["failed"] == 1 and (ctx.items.total, ctx.items.failed) == (6, 1)
    rows = {r["id"]: r for r in read_csv(tmp_path / "t.csv")}
    bad = rows["004_08"]
    assert bad["status"] == "failed" and bad["file"] == "" and "004_08.jpg" in bad["error"] \
        and "cannot decode image" in bad["error"]
    ok = [r for r in rows.values() if r["id"] != "004_08"]
    assert all(r["status"] == "ok" and (tmp_path / "im" / r["file"]).is_file() for r in ok)
    later = SimpleNamespace(inputs={"images": tmp_path / "im", "table": tmp_path / "t.csv"})
    _, usable = images_table(later)
    assert sorted(r["id"] for r in usable) == sorted(r["id"] for r in ok)
    subjects, _, probe_ids, _ = study_roles(list(rows.values()))
    assert subjects == ["001", "007"] and all("004_08" not in ids for ids in probe_ids.values())
