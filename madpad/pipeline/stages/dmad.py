"""Stage functions of ``pipelines/dmad_train_eval.yaml``: build subject-disjoint D-MAD pairs
(bona fide + morph attacks) -> train a detector -> score the test split -> PAD report.

The stages call the library functions behind ``python -m madpad.detect train|score`` and
``python -m madpad.report pad``, so they write the same files: pair building
(:func:`madpad.mad.pairs.build_dmad_pairs`), training (:func:`madpad.mad.training.train_from_config`),
scoring (:func:`madpad.mad.scoring.score_pairs_file`) and the report
(:func:`madpad.report.pad.write_pad_report`). The image manifest, pair selection and morph
generation stages are those of the morph-generation pipeline
(:mod:`madpad.pipeline.stages.morph_generation`).
"""

from __future__ import annotations

from pathlib import Path

from madpad.pipeline.stages._common import as_list, log, publish_folder, read_csv


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
    publish_folder(scratch, Path(ctx.outputs["pairs"]))
    log(ctx, "pairs: %s; %d morphs dropped (contributors in different splits)", built.counts, built.dropped_morphs)
    return {"counts": built.counts, "dropped_morphs": built.dropped_morphs, "failures": len(built.failures)}


def train(ctx) -> dict:
    """Train a detector (:func:`madpad.mad.training.train_from_config`, as ``python -m
    madpad.detect train --config CONFIG``) on ``pairs_train.csv``, with model selection on
    ``pairs_dev.csv`` when it has bona fide and attack pairs. params: ``config`` (a YAML in
    madpad/configs/detect or a path), ``set`` (extra ``key=value`` overrides). output ``model``
    (checkpoint folder)."""
    from madpad.mad.training import load_train_config, train_from_config

    p = ctx.params
    pairs = Path(ctx.inputs["pairs"])
    scratch = Path(ctx.cache_dir) / "model"
    items = [f"data.train={pairs / 'pairs_train.csv'}", f"out={scratch}", f"cache={Path(ctx.cache_dir) / 'features'}"]
    dev = pairs / "pairs_dev.csv"
    if _has_both_labels(dev):
        items.append(f"data.dev={dev}")
    else:
        log(ctx, "no dev set used: %s lacks bona fide or attack pairs (too few subjects/morphs)", dev)
    items += [str(item) for item in as_list(p.get("set"))]
    cfg = load_train_config(_config_path(p.get("config", "dlib_diff_logreg")), items)
    summary = train_from_config(cfg, echo=lambda msg: log(ctx, "%s", msg),
                                warn=lambda msg: log(ctx, "warning: %s", msg))
    publish_folder(scratch, Path(ctx.outputs["model"]))
    return {"dev": summary.get("dev")}


def _has_both_labels(path: Path) -> bool:
    if not path.is_file():
        return False
    return {"bona_fide", "attack"} <= {r.get("label") for r in read_csv(path)}


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
    """Score the ``split`` pairs (default ``test``) with the trained model
    (:func:`madpad.mad.scoring.score_pairs_file`, as ``python -m madpad.detect score``).
    output ``scores`` (PAD scores CSV)."""
    from madpad.mad.scoring import runtime_overrides, score_pairs_file

    split = ctx.params.get("split", "test")
    model = ctx.inputs["model"]
    r = score_pairs_file(model=model, pairs_path=Path(ctx.inputs["pairs"]) / f"pairs_{split}.csv",
                         out=ctx.outputs["scores"], cache_dir=Path(ctx.cache_dir) / "features", progress=False,
                         overrides=runtime_overrides(model))
    log(ctx, "scored %d of %d pairs -> %s", r["ok"], r["n"], ctx.outputs["scores"])
    for pid, rr in r["failed"][:5]:
        log(ctx, "  failed %s: %s: %s", pid, rr["status"], rr["error"])
    return None


def pad_report(ctx) -> dict:
    """ISO/IEC 30107-3 figures (:func:`madpad.report.pad.write_pad_report`, as ``python -m
    madpad.report pad``; json, md, html). params: ``bootstrap`` (resamples), ``title``.
    output ``report`` (folder)."""
    from madpad.report.pad import write_pad_report

    p = ctx.params
    n_bootstrap = int(p.get("bootstrap", 200))
    if n_bootstrap < 0:
        raise ValueError(f"params.bootstrap must be >= 0; got {n_bootstrap}")
    rep = write_pad_report(ctx.inputs["scores"], ctx.outputs["report"], title=p.get("title") or None,
                           n_bootstrap=n_bootstrap)
    log(ctx, "PAD report: %d bona fide, %d attacks in %d species; D-EER %.2f%%", rep["n_bona_fide"],
        rep["n_attack"], len(rep["species"]), 100 * rep["d_eer"])
    return None
