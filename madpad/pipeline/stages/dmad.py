"""Stage functions of ``pipelines/dmad_train_eval.yaml``: build subject-disjoint D-MAD pairs
(bona fide + morph attacks) -> train a detector -> score the test split -> PAD report.

Pair building calls :func:`madpad.mad.pairs.build_dmad_pairs`; training, scoring and the
report call ``python -m madpad.detect train|score`` and ``python -m madpad.report pad``
through their ``main(argv)`` functions (same files as the command lines). The image
manifest, pair selection and morph generation stages are those of the morph-generation
pipeline (:mod:`madpad.pipeline.stages.morph_generation`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from madpad.pipeline.stages._common import as_list, log
from madpad.pipeline.stages.morph_generation import run_cli


def build_pairs(ctx) -> dict:
    """Pairs for train/dev/test (subject-disjoint). inputs ``manifest`` + ``data`` (image
    manifest and its root), ``morphs`` (generate output folder). params: ``fractions``,
    ``seed``, ``live_variants``, ``attack_live``. output ``pairs`` folder (``pairs_<split>.csv``,
    ``suspect/``, ``live/``). Built in the stage cache folder (resumable), then published."""
    from madpad.data import load_images, load_morphs
    from madpad.mad.pairs import BuildConfig, build_dmad_pairs

    p = ctx.params
    images = load_images(ctx.inputs["manifest"], root=ctx.inputs["data"])
    morphs = list(load_morphs(Path(ctx.inputs["morphs"]) / "manifest.csv"))
    cfg = BuildConfig(fractions=tuple(float(x) for x in as_list(p.get("fractions", [0.6, 0.2, 0.2]))),
                      seed=int(p.get("seed", 0)), live_variants=int(p.get("live_variants", 2)),
                      attack_live=str(p.get("attack_live", "both")))
    scratch = Path(ctx.cache_dir) / "pairs"
    built = build_dmad_pairs(images, morphs, scratch, config=cfg, progress=False)
    out = Path(ctx.outputs["pairs"])
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(scratch, out)
    log(ctx, "pairs: %s; %d morphs dropped (contributors in different splits)", built.counts, built.dropped_morphs)
    return {"counts": built.counts, "dropped_morphs": built.dropped_morphs, "failures": len(built.failures)}


def train(ctx) -> dict:
    """``python -m madpad.detect train --config CONFIG`` on ``pairs_train.csv`` (model selection
    on ``pairs_dev.csv``). params: ``config`` (a YAML in madpad/configs/detect or a path),
    ``set`` (extra ``key=value`` overrides). output ``model`` (checkpoint folder)."""
    from madpad.detect import main

    p = ctx.params
    pairs = Path(ctx.inputs["pairs"])
    scratch = Path(ctx.cache_dir) / "model"
    argv = ["train", "--config", _config_path(p.get("config", "dlib_diff_logreg")),
            "--set", f"data.train={pairs / 'pairs_train.csv'}", "--set", f"out={scratch}",
            "--set", f"cache={Path(ctx.cache_dir) / 'features'}"]
    dev = pairs / "pairs_dev.csv"
    if _has_both_labels(dev):
        argv += ["--set", f"data.dev={dev}"]
    else:
        log(ctx, "no dev set used: %s lacks bona fide or attack pairs (too few subjects/morphs)", dev)
    for item in as_list(p.get("set")):
        argv += ["--set", str(item)]
    run_cli(main, argv, what="python -m madpad.detect train", ctx=ctx)
    out = Path(ctx.outputs["model"])
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(scratch, out)
    summary = out / "train_summary.json"
    return {"dev": json.loads(summary.read_text()).get("dev")} if summary.is_file() else None


def _has_both_labels(path: Path) -> bool:
    import csv

    if not path.is_file():
        return False
    with open(path, newline="", encoding="utf-8") as fh:
        labels = {r.get("label") for r in csv.DictReader(fh)}
    return {"bona_fide", "attack"} <= labels


def _config_path(name: str) -> str:
    p = Path(str(name))
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return str(p)
    from importlib import resources

    cand = Path(str(resources.files("madpad") / "configs" / "detect" / f"{name}.yaml"))
    if cand.is_file():
        return str(cand)
    raise ValueError(f"detector config {name!r} is neither a YAML file nor one of madpad/configs/detect/*.yaml")


def score(ctx) -> dict:
    """``python -m madpad.detect score`` on the test split. output ``scores`` (PAD scores CSV)."""
    from madpad.detect import main

    split = ctx.params.get("split", "test")
    argv = ["score", "--model", ctx.inputs["model"], "--pairs", Path(ctx.inputs["pairs"]) / f"pairs_{split}.csv",
            "--out", ctx.outputs["scores"], "--cache", Path(ctx.cache_dir) / "features", "--no-progress"]
    run_cli(main, argv, what="python -m madpad.detect score", ctx=ctx)
    return None


def pad_report(ctx) -> dict:
    """``python -m madpad.report pad``: ISO/IEC 30107-3 figures (json, md, html)."""
    from madpad.report.__main__ import main

    p = ctx.params
    argv = ["pad", "--scores", ctx.inputs["scores"], "--out", ctx.outputs["report"],
            "--bootstrap", int(p.get("bootstrap", 200))]
    if p.get("title"):
        argv += ["--title", p["title"]]
    run_cli(main, argv, what="python -m madpad.report pad", ctx=ctx)
    return None
