"""Demo step 3, stage ``detect``: differential MAD, trained on the train subjects and evaluated on
the disjoint test subjects.

Pairs: suspect = an enrolment image (bona fide) or a morph (attack); live capture = a varied,
simulated capture of the probe image (:func:`madpad.mad.pairs.build_dmad_pairs`). Detectors:
the untrained dlib distance, dlib embedding difference + logistic regression / RBF SVM, and with
``clip`` params the open_clip + LoRA foundation detector (fine-tuned from a checkpoint file, or
a saved detector folder evaluated as is). ISO/IEC 30107-3 figures (:func:`madpad.report.pad_report`).

inputs: ``images``, ``data``, ``generate`` (its status) and ``morphs``. params: ``seed``,
``live_variants``, ``bootstrap``, ``clip`` (None, or ``checkpoint``, ``model``, ``epochs``,
``device``). outputs: ``pairs/`` (suspect/, live/, pairs_train.csv, pairs_test.csv),
``detectors/<label>/`` (saved detector, scores_test.csv, pad_report.json), ``status``.
Features are cached in ``<run folder>/cache/mad-features``; the pair images and a fine-tuning
run's state survive an interruption.
"""

from __future__ import annotations

import time
from pathlib import Path

from madpad.errors import MadpadError
from madpad.pipeline.stages.demo.common import (
    DLIB_EMBEDDER,
    SPLIT_FRACTIONS,
    SPLIT_NAMES,
    StepRun,
    StepSkipped,
    first_line,
    publish,
    run_step,
)
from madpad.pipeline.stages.demo.generate import read_morphs
from madpad.pipeline.stages.demo.pad import pad_figures, pad_summary

LIVE_CAPTURE = ("simulated: crop, scale, rotation, colour, blur, noise and JPEG of the probe (smiling) image, "
                "seeded (madpad.mad.pairs.vary_live_capture)")


def detect(ctx) -> dict:
    return run_step(ctx, "detect", _detect)


def mad_detectors(clip: dict | None, *, progress: bool = True) -> dict:
    """label -> (registry name, params, saved detector folder or None): the dlib baselines, and
    the foundation detector when ``clip`` names a checkpoint (a file to fine-tune, or a folder
    saved by ``python -m madpad.detect train``)."""
    emb = {"embedder": "dlib", "embedder_params": DLIB_EMBEDDER, "progress": progress}
    dets = {
        "dlib_distance": ("embedding_distance", dict(emb), None),
        "dlib_diff_logreg": ("embedding_logreg", {**emb, "features": ["diff"], "classifier": "logreg"}, None),
        "dlib_diff_svm": ("embedding_svm", {**emb, "features": ["diff"], "classifier": "rbf_svm"}, None),
    }
    if clip and clip.get("checkpoint"):
        p = Path(clip["checkpoint"]).expanduser()
        if p.is_dir():
            dets["foundation"] = ("foundation", {}, p)
        else:
            dets["foundation"] = ("foundation", foundation_params(clip, progress=progress), None)
    return dets


def foundation_params(clip: dict, *, progress: bool = True) -> dict:
    """The shipped DifFoundMAD-style config (``madpad/configs/detect/foundation_lora.yaml``) with
    the user's checkpoint and architecture."""
    from importlib import resources

    import yaml

    from madpad.mad.backbone import shipped_model_configs

    cfg_file = Path(str(resources.files("madpad") / "configs" / "detect" / "foundation_lora.yaml"))
    params = dict(yaml.safe_load(cfg_file.read_text(encoding="utf-8"))["params"])
    model = clip.get("model") or "ViT-B-16"
    params.update(backbone=model, pretrained=str(Path(clip["checkpoint"]).expanduser().resolve()),
                  epochs=int(clip.get("epochs") or 5), device=clip.get("device") or "auto", progress=progress)
    if model in shipped_model_configs():
        params["model_config"] = model
    return params


def training_params(name: str, params: dict, *, state_dir: Path, seed: int) -> dict:
    """``params`` over the detector class's training defaults for a run into ``state_dir``
    (:meth:`madpad.mad.MorphDetector.training_defaults`: e.g. the foundation detector's
    resumable state folder and seed)."""
    from madpad.mad import MORPH_DETECTORS

    defaults = getattr(MORPH_DETECTORS.load(name), "training_defaults", None)
    return {**(defaults(state_dir, seed) if defaults else {}), **params}


def fit_detector(name: str, params: dict, trained_dir: Path | None, train, *, cache, out_dir: Path,
                 state_dir: Path, seed: int):
    """Load the saved detector ``trained_dir``, or build ``name`` and fit it on ``train``
    (with the class's training defaults, e.g. a resumable state folder under ``state_dir``)
    and save it to ``out_dir``; returns (detector, training seconds)."""
    import inspect

    from madpad.mad import get_detector, load_detector

    t0 = time.perf_counter()
    if trained_dir is not None:
        return load_detector(trained_dir), 0.0
    det = get_detector(name, **training_params(name, params, state_dir=state_dir, seed=seed))
    kwargs = {"cache": cache} if "cache" in inspect.signature(det.fit).parameters else {}
    det.fit(train, **kwargs)
    det.save(out_dir)
    return det, time.perf_counter() - t0


def _detect(run: StepRun) -> dict:
    from madpad.io import atomic_write_json
    from madpad.mad.cache import FeatureCache
    from madpad.mad.pairs import (
        BuildConfig,
        build_dmad_pairs,
        read_pairs_csv,
        write_scores_csv,
    )
    from madpad.mad.scoring import score_with_status

    p = run.params
    live_variants = int(p.get("live_variants", 2))
    n_bootstrap = int(p.get("bootstrap", 200))
    morphs = [m for recs in read_morphs(run).values() for m in recs]
    images = [*run.data.enrolment, *run.data.probe]  # captures enrolment / probe (the data stage's choice)
    cfg = BuildConfig(fractions=SPLIT_FRACTIONS, split_names=SPLIT_NAMES, seed=run.seed, live_variants=live_variants)
    run.echo(f"      building D-MAD pairs (suspect images, {live_variants} simulated live capture(s) per subject)")
    work = run.resumable("pairs")
    built = build_dmad_pairs(images, morphs, work, config=cfg, progress=run.progress)
    pairs_dir = publish(work, run.ctx.outputs["pairs"])
    train = read_pairs_csv(pairs_dir / Path(built.files["train"]).name, require_labels=True)
    test = read_pairs_csv(pairs_dir / Path(built.files["test"]).name, require_labels=True)
    for name, ps in (("train", train), ("test", test)):
        n_att = sum(pr.label == "attack" for pr in ps)
        if n_att == 0 or n_att == len(ps):
            raise StepSkipped(f"the {name} split has {len(ps) - n_att} bona fide and {n_att} attack pairs; both "
                              "are needed (raise --pairs)")
    cache = FeatureCache(run.cache_dir / "mad-features")
    out = Path(run.ctx.outputs["detectors"])
    results = {}
    for label, (name, params, trained_dir) in mad_detectors(p.get("clip"), progress=run.progress).items():
        run.echo(f"      detector {label}")
        try:
            det, fit_s = fit_detector(name, params, trained_dir, train, cache=cache, out_dir=out / label,
                                      state_dir=run.resumable(f"train/{label}"), seed=run.seed)
            scores, status, errors = score_with_status(det, test, cache=cache)
        except (MadpadError, ImportError) as exc:
            results[label] = {"status": "failed", "error": first_line(exc)}
            continue
        f = write_scores_csv(out / label / "scores_test.csv", test, scores, status=status, errors=errors)
        rep = pad_figures(scores, test, status, n_bootstrap=n_bootstrap, seed=run.seed,
                          title=f"D-MAD {label} (test subjects)")
        rep_path = atomic_write_json(out / label / "pad_report.json", rep)
        results[label] = {"status": "ok", "detector": name, "train_seconds": round(fit_s, 1),
                          "scores": run.rel(f), "report": run.rel(rep_path), **pad_summary(rep)}
    return {"counts": built.counts, "dropped_morphs": built.dropped_morphs, "pair_failures": len(built.failures),
            "pairs_dir": run.rel(pairs_dir), "detectors": results, "live_capture": LIVE_CAPTURE}
