"""Stage functions of ``pipelines/morph_generation.yaml``: select pairs -> landmark (or other)
morphs -> FR comparison scores -> morphing vulnerability report.

The stages are thin: they call the public pair selection of :mod:`madpad.morph.pairs` and
the command-line entry points ``python -m madpad.generate`` (generate and ``compare``) and
``python -m madpad.report vulnerability`` through their ``main(argv)`` functions, so the
pipeline and the CLIs give the same files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from madpad.pipeline.stages._common import as_list, log


class CommandFailed(RuntimeError):
    """A wrapped command-line entry point returned a non-zero exit code."""


def run_cli(main, argv: list[str], *, what: str, ctx=None) -> None:
    """Call ``main(argv)``; raise :class:`CommandFailed` on a non-zero exit code."""
    argv = [str(a) for a in argv]
    log(ctx, "%s %s", what, " ".join(argv))
    rc = main(argv)
    if rc != 0:
        raise CommandFailed(f"{what} exited with code {rc} (its message is on stderr); arguments: {argv}")


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
    output ``pairs`` (pairs CSV for ``python -m madpad.generate --pairs``).
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
    """``python -m madpad.generate --method M --pairs PAIRS --out DIR``. The job writes into the
    stage cache folder first (generate resumes there after an interruption), then the folder is
    published as output ``morphs`` (``manifest.csv``, images, ``ATTRIBUTION.md``)."""
    from madpad.generate import main

    p = ctx.params
    scratch = Path(ctx.cache_dir) / "morphs"
    argv = ["--method", p.get("method", "landmark"), "--pairs", ctx.inputs["pairs"], "--out", scratch,
            "--seed", int(p.get("seed", 0)), "--format", p.get("format", "png"), "--no-progress"]
    for item in as_list(p.get("extra_args")):
        argv.append(str(item))
    run_cli(main, argv, what="python -m madpad.generate", ctx=ctx)
    out = Path(ctx.outputs["morphs"])
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(scratch, out)
    return {"files": sum(1 for _ in out.iterdir())}


def compare(ctx) -> dict:
    """``python -m madpad.generate compare``: every morph against the probe images of its
    contributors, plus licit genuine/impostor comparisons (references = ``reference_capture``,
    probes = ``probe_capture``). output ``scores`` (comparison scores CSV)."""
    from madpad.generate import main

    p = ctx.params
    argv = ["compare", "--morphs", Path(ctx.inputs["morphs"]) / "manifest.csv", "--probes", ctx.inputs["manifest"],
            "--root", ctx.inputs["data"], "--out", ctx.outputs["scores"], "--cache-dir", Path(ctx.cache_dir) / "emb",
            "--no-progress"]
    if p.get("probe_capture"):
        argv += ["--probe-capture", p["probe_capture"]]
    if p.get("reference_capture"):
        argv += ["--references", ctx.inputs["manifest"], "--reference-capture", p["reference_capture"]]
    argv += ["--systems", *[str(s) for s in as_list(p.get("systems", ["dlib"]))]]
    run_cli(main, argv, what="python -m madpad.generate compare", ctx=ctx)
    return None


def vulnerability_report(ctx) -> dict:
    """``python -m madpad.report vulnerability``: MMPMR, ProdAvg-MMPMR, RMMR, MAP (json, md, html)."""
    from madpad.report.__main__ import main

    p = ctx.params
    argv = ["vulnerability", "--scores", ctx.inputs["scores"], "--out", ctx.outputs["report"],
            "--fmr", *[str(x) for x in as_list(p.get("fmrs", [0.001, 0.01]))]]
    if "morphs" in ctx.inputs:
        argv += ["--thumbnails", Path(ctx.inputs["morphs"]) / "manifest.csv"]
    if p.get("title"):
        argv += ["--title", p["title"]]
    run_cli(main, argv, what="python -m madpad.report vulnerability", ctx=ctx)
    return None
