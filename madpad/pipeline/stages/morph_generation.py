"""Stage functions of ``pipelines/morph_generation.yaml``: select pairs -> landmark (or other)
morphs -> FR comparison scores -> morphing vulnerability report.

The stages are thin and call the library functions behind the command lines, so the pipeline
and ``python -m madpad.generate`` / ``python -m madpad.report vulnerability`` give the same
files: pair selection (:mod:`madpad.morph.pairs`), the resumable morph job
(:func:`madpad.morph.batch.run_morph_job`), the FR comparisons
(:func:`madpad.face.comparisons.compute_comparisons`) and the report
(:func:`madpad.report.vulnerability.write_vulnerability_report`).
"""

from __future__ import annotations

from pathlib import Path

from madpad.pipeline.stages._common import as_list, log, publish_folder


def image_manifest(ctx) -> dict:
    """Image manifest of the data: input ``data`` (FRLL folder, or the root of the manifest named
    by param ``manifest``). output ``manifest`` (paths relative to the data root)."""
    from madpad.data import load_images, write_images
    from madpad.data.frll import frll_images

    data = Path(ctx.inputs["data"])
    manifest = ctx.params.get("manifest") or None
    recs = load_images(manifest, root=data) if manifest else frll_images(data)
    write_images(ctx.outputs["manifest"], recs, root=data)
    log(ctx, "image manifest: %d images", len(recs))
    return {"images": len(recs)}


def select_pairs(ctx) -> dict:
    """Morph pairs from the bona fide images of one capture (default ``enrolment``).

    params: ``strategy`` (random | same_gender | most_similar), ``n_pairs`` (null = half the
    subjects), ``seed``, ``capture``, ``alpha``, ``fr_system`` (for most_similar).
    output ``pairs`` (pairs CSV, as read by ``python -m madpad.generate --pairs``).
    """
    from madpad.data import load_images
    from madpad.morph.batch import requests_from_pairs, write_pairs_csv
    from madpad.morph.pairs import select_pairs as _select

    p = ctx.params
    recs = [r for r in load_images(ctx.inputs["manifest"], root=ctx.inputs["data"]) if r.label == "bona_fide"]
    if p.get("capture"):
        recs = [r for r in recs if r.capture == p["capture"]]
    if len(recs) < 2:
        raise ValueError(f"fewer than two bona fide images with capture {p.get('capture')!r}")
    n = int(p.get("n_pairs") or max(1, len({r.subject for r in recs}) // 2))
    strategy = p.get("strategy", "same_gender")
    embeddings = None
    if strategy == "most_similar":
        from madpad.face import embed_batch, get_embedder

        embeddings = embed_batch([str(r.path) for r in recs], get_embedder(p.get("fr_system", "dlib"))).embeddings
    pairs = _select(recs, strategy=strategy, n_pairs=n, seed=int(p.get("seed", 0)), embeddings=embeddings)
    requests = requests_from_pairs(pairs, alpha=float(p.get("alpha", 0.5)))
    write_pairs_csv(ctx.outputs["pairs"], requests)
    log(ctx, "%d pairs (%s)", len(requests), strategy)
    return {"pairs": len(requests)}


def generate(ctx) -> dict:
    """Morphs of the pairs CSV (input ``pairs``) with :func:`madpad.morph.batch.run_morph_job`.

    params: ``method`` (a :data:`madpad.morph.MORPH_METHODS` name, default ``landmark``),
    ``method_params`` (keyword parameters of the method's factory, e.g. ``{warp: remap}``),
    ``seed``, ``format`` (png | jpg), ``quality`` (JPEG). The job writes into the stage cache
    folder first (it resumes there after an interruption), then the folder is published as
    output ``morphs`` (``manifest.csv``, images, ``ATTRIBUTION.md``)."""
    from madpad.morph import get_morph_method
    from madpad.morph.batch import read_pairs_csv, run_morph_job

    p = ctx.params
    if as_list(p.get("extra_args")):
        raise ValueError("params.extra_args (command-line options) is no longer read; give the method's "
                         "parameters as params.method_params, e.g. {detect_max_side: 800}")
    method = p.get("method", "landmark")
    requests = read_pairs_csv(ctx.inputs["pairs"])
    if not requests:
        raise ValueError(f"{ctx.inputs['pairs']}: no morphs to make (no pairs selected)")
    generator = get_morph_method(method, **dict(p.get("method_params") or {}))
    scratch = Path(ctx.cache_dir) / "morphs"
    summary = run_morph_job(requests, generator, scratch, method=method, seed=int(p.get("seed", 0)),
                            fmt=str(p.get("format", "png")), quality=int(p.get("quality", 95)), progress=False)
    for line in summary.lines():
        log(ctx, "%s", line)
    out = Path(ctx.outputs["morphs"])
    publish_folder(scratch, out)
    return {"files": sum(1 for _ in out.iterdir())}


def compare(ctx) -> dict:
    """FR comparison scores (:func:`madpad.face.comparisons.compute_comparisons`): every morph
    against the probe images of its contributors, plus licit genuine/impostor comparisons
    (references = ``reference_capture``, probes = ``probe_capture``; with no
    ``reference_capture`` every image of the manifest is a reference). params: ``systems``
    (``NAME[:key=value,...][@LABEL]``). output ``scores`` (comparison scores CSV, failures in
    ``<stem>.failures.csv`` beside it)."""
    from madpad.data import load_images, load_morphs
    from madpad.face import EmbeddingCache
    from madpad.face.comparisons import compute_comparisons, parse_system, write_comparisons

    p = ctx.params
    specs = [parse_system(str(s)) for s in as_list(p.get("systems", ["dlib"]))]
    morphs = load_morphs(Path(ctx.inputs["morphs"]) / "manifest.csv")
    images = load_images(ctx.inputs["manifest"], root=ctx.inputs["data"])
    probes, refs = images, images
    for role, capture in (("probe", p.get("probe_capture")), ("reference", p.get("reference_capture"))):
        if capture:
            chosen = [r for r in images if r.capture == capture]
            if not chosen:
                raise ValueError(f"{ctx.inputs['manifest']}: no rows with capture {capture!r} ({role} images)")
            if role == "probe":
                probes = chosen
            else:
                refs = chosen
    result = compute_comparisons(morphs=morphs, probes=probes, references=refs, systems=specs,
                                 cache=EmbeddingCache(Path(ctx.cache_dir) / "emb"), progress=False)
    out, failed = write_comparisons(ctx.outputs["scores"], result)
    for line in result.lines():
        log(ctx, "%s", line)
    log(ctx, "wrote %d comparison(s) to %s%s", len(result.rows), out, f"; failures listed in {failed}" if failed else "")
    return None


def vulnerability_report(ctx) -> dict:
    """MMPMR, ProdAvg-MMPMR, RMMR, MAP (:func:`madpad.report.vulnerability.write_vulnerability_report`;
    json, md, html). params: ``fmrs``, ``title``. output ``report`` (folder)."""
    from madpad.report.vulnerability import write_vulnerability_report

    p = ctx.params
    fmrs = [float(x) for x in as_list(p.get("fmrs", [0.001, 0.01]))]
    bad = [x for x in fmrs if not 0 < x < 1]
    if bad:
        raise ValueError(f"params.fmrs values must be in (0, 1); got {bad}")
    thumbnails = Path(ctx.inputs["morphs"]) / "manifest.csv" if "morphs" in ctx.inputs else None
    rep = write_vulnerability_report(ctx.inputs["scores"], ctx.outputs["report"], fmrs=fmrs,
                                     title=p.get("title") or None, thumbnails=thumbnails)
    for name, s in rep["systems"].items():
        log(ctx, "%s: %s", name, ", ".join(f"FMR {float(k):g}: MMPMR {100 * a['mmpmr']:.1f}%"
                                           for k, a in s["at_fmr"].items()))
    return None
