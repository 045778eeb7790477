"""The stages of pipelines/morph_generation.yaml and pipelines/dmad_train_eval.yaml call the
library functions behind the command lines: they must write the same files as the CLIs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from madpad.data import read_table, write_table

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "madpad" / "sample_data" / "frll24"


def _subset_manifest(path: Path, n_subjects: int) -> Path:
    table = read_table(SAMPLE / "images.csv")
    subjects = sorted({r["subject"] for r in table.rows})[:n_subjects]
    return write_table(path, [r for r in table.rows if r["subject"] in subjects], columns=table.columns)


def _json_without_source(path: Path) -> dict:
    rep = json.loads(path.read_text(encoding="utf-8"))
    rep.pop("source", None)
    return rep


def test_morph_generation_pipeline_writes_what_the_clis_write(tmp_path):
    """6 subjects, 2 morphs: pairs -> morphs -> comparisons -> vulnerability report, then the same
    comparisons and report through ``python -m madpad.generate compare`` / ``madpad.report``."""
    from madpad.generate import main as generate_main
    from madpad.pipeline import load_pipeline, run_pipeline
    from madpad.report.__main__ import main as report_main

    manifest = _subset_manifest(tmp_path / "subset.csv", 6)
    sets = [f"params.root={SAMPLE}", f"params.manifest={manifest}", "params.n_pairs=2"]
    wd = tmp_path / "run"
    summary = run_pipeline(load_pipeline(REPO / "pipelines" / "morph_generation.yaml", set_items=sets, workdir=wd),
                           executor="serial", progress=False, quiet=True)
    assert summary.ok, [(s.stage, s.status, s.error) for s in summary.stages]
    morphs = read_table(wd / "generate" / "morphs" / "manifest.csv").rows
    assert len(morphs) == 2 and all(m["status"] == "ok" and m["method"] == "landmark" for m in morphs)
    assert all((wd / "generate" / "morphs" / m["path"]).is_file() for m in morphs)
    assert (wd / "generate" / "morphs" / "ATTRIBUTION.md").is_file()
    scores = read_table(wd / "compare" / "comparison_scores.csv").rows
    kinds = {k: sum(r["kind"] == k for r in scores) for k in ("genuine", "impostor", "morph")}
    # 6 enrolment x 6 probe images: 6 genuine, 30 impostor; each morph x the probe of both contributors
    assert kinds == {"genuine": 6, "impostor": 30, "morph": 4}
    rep = _json_without_source(wd / "report" / "report" / "report.json")
    assert set(rep["systems"]["dlib"]["at_fmr"]) == {"0.001", "0.01"}

    cli = tmp_path / "cli"
    assert generate_main(["compare", "--morphs", str(wd / "generate" / "morphs" / "manifest.csv"),
                          "--probes", str(wd / "images" / "images.csv"), "--root", str(SAMPLE),
                          "--probe-capture", "probe", "--references", str(wd / "images" / "images.csv"),
                          "--reference-capture", "enrolment", "--systems", "dlib", "--no-progress",
                          "--cache-dir", str(cli / "emb"), "--out", str(cli / "comparison_scores.csv")]) == 0
    assert (cli / "comparison_scores.csv").read_bytes() == (wd / "compare" / "comparison_scores.csv").read_bytes()
    assert report_main(["vulnerability", "--scores", str(cli / "comparison_scores.csv"), "--out", str(cli / "report"),
                        "--fmr", "0.001", "0.01", "--title", "Morphing vulnerability",
                        "--thumbnails", str(wd / "generate" / "morphs" / "manifest.csv")]) == 0
    assert _json_without_source(cli / "report" / "report.json") == rep

    again = run_pipeline(load_pipeline(REPO / "pipelines" / "morph_generation.yaml", set_items=sets, workdir=wd),
                         executor="serial", progress=False, quiet=True)
    assert {s.status for s in again.stages} == {"skipped"}


def _ctx(tmp_path: Path, name: str, *, inputs: dict, outputs: dict, params: dict) -> SimpleNamespace:
    cache, out = tmp_path / "cache" / name, tmp_path / "out" / name
    cache.mkdir(parents=True)
    out.mkdir(parents=True)
    return SimpleNamespace(inputs=inputs, outputs={k: out / v for k, v in outputs.items()}, params=params,
                           cache_dir=cache)


def test_dmad_stages_train_score_and_report_like_the_clis(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("open_clip")
    pytest.importorskip("peft")
    from madpad.detect import main as detect_main
    from madpad.mad.synthetic import write_synthetic_pairs
    from madpad.pipeline.stages import dmad
    from madpad.report.__main__ import main as report_main

    pairs = tmp_path / "pairs"
    for split, n, seed in (("train", 32, 1), ("dev", 16, 2), ("test", 16, 3)):
        write_synthetic_pairs(pairs, n, seed=seed, name=f"pairs_{split}.csv")
    ctx = _ctx(tmp_path, "train", inputs={"pairs": pairs}, outputs={"model": "model"},
               params={"config": str(REPO / "madpad" / "configs" / "detect" / "tiny_foundation.yaml"),
                       "set": ["params.epochs=1"]})
    result = dmad.train(ctx)
    model = ctx.outputs["model"]
    assert (model / "detector.json").is_file() and (model / "scores_dev.csv").is_file()
    summary = json.loads((model / "train_summary.json").read_text())
    assert summary["counts"]["dev"]["attack"] > 0 and result["dev"] == summary["dev"] != {}
    assert summary["config"]["data"]["train"] == str(pairs / "pairs_train.csv")

    ctx = _ctx(tmp_path, "score", inputs={"model": model, "pairs": pairs}, outputs={"scores": "scores_test.csv"},
               params={"split": "test"})
    dmad.score(ctx)
    stage_scores = ctx.outputs["scores"]
    assert len(read_table(stage_scores).rows) == 16
    cli_scores = tmp_path / "cli_scores.csv"
    assert detect_main(["score", "--model", str(model), "--pairs", str(pairs / "pairs_test.csv"),
                        "--out", str(cli_scores), "--no-progress"]) == 0
    assert cli_scores.read_bytes() == stage_scores.read_bytes()

    ctx = _ctx(tmp_path, "report", inputs={"scores": stage_scores}, outputs={"report": "report"},
               params={"bootstrap": 20, "title": "D-MAD test split"})
    dmad.pad_report(ctx)
    assert report_main(["pad", "--scores", str(stage_scores), "--out", str(tmp_path / "cli_report"),
                        "--bootstrap", "20", "--title", "D-MAD test split"]) == 0
    assert _json_without_source(ctx.outputs["report"] / "report.json") == \
        _json_without_source(tmp_path / "cli_report" / "report.json")
