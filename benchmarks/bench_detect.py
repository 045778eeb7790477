"""Scoring speed of the D-MAD detectors: pairs per second, with and without the live-capture cache.

Detectors: the dlib embedding baseline (``embedding_distance``, the same per-image cost as
``embedding_logreg``/``embedding_svm``), ``fr_texture`` (dlib + texture statistics), the untrained
``demorph_distance`` (per image the FR embedding and the 68 landmarks, then a warp and an FR
embedding per pair, so a cached live capture saves less), the shipped ``dmad_cues [demorph_diff]``
(the same per image, two demorphing alphas per pair, then the classifier), and the foundation
detector on open_clip ViT-B-16 with LoRA (random weights: speed only).

Pairs come from the bundled FRLL sample (600x600 JPEGs): each live capture is shared by
``--suspects-per-live`` suspects. Modes:

* ``per pair, no cache``: every pair is a separate request computing both images;
* ``one batch, each image once``: all pairs in one call; each distinct image (a live
  capture shared by several suspects) is computed once (in-memory cache of the run);
* ``live captures cached``: the live captures' features are already in the cache (e.g. a
  second run with ``--cache``): only the suspects are computed.

    python benchmarks/bench_detect.py --threads 2 [--pairs 8] [--skip-vit]
"""

from __future__ import annotations

import argparse
import platform
import time


def _pairs(n: int, per_live: int):
    from madpad.data.sample import sample_root
    from madpad.mad import Pair

    root = sample_root()
    neutral = sorted((root / "neutral").glob("*.jpg"))
    smiling = sorted((root / "smiling").glob("*.jpg"))
    out = []
    for i in range(n):
        live = smiling[(i // per_live) % len(smiling)]
        out.append(Pair(f"p{i}", neutral[i % len(neutral)], live, "bona_fide"))
    return out


def _time(fn, pairs, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(pairs)
        best = min(best, time.perf_counter() - t)
    return len(pairs) / best


def bench(det, pairs, *, name: str) -> list[tuple]:
    from madpad.mad.cache import FeatureCache

    def no_cache(ps):
        for p in ps:  # a fresh cache per pair: nothing is shared
            det.score([p], cache=FeatureCache())

    warm = FeatureCache()
    det.score(pairs[:1], cache=FeatureCache())  # load models
    det.score([type(p)(p.id, p.live, p.live) for p in pairs], cache=warm)  # live captures into the cache
    # drop suspects from the warm cache so they are computed: use suspects not seen before
    live_keys = {warm.key(p.live) for p in pairs}
    warm._mem = {k: v for k, v in warm._mem.items() if k[1] in live_keys}

    def live_cached(ps):
        det.score(ps, cache=warm)
        # reset suspects so a repeat measures the same thing
        warm._mem = {k: v for k, v in warm._mem.items() if k[1] in live_keys}

    def batch_dedup(ps):
        det.score(ps, cache=FeatureCache())  # one batch; each distinct image computed once

    return [(name, "per pair, no cache", _time(no_cache, pairs)),
            (name, "one batch, each image once", _time(batch_dedup, pairs)),
            (name, "live captures cached", _time(live_cached, pairs))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--suspects-per-live", type=int, default=4)
    ap.add_argument("--skip-vit", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from madpad.cli import apply_runtime_options
    from madpad.mad import get_detector

    apply_runtime_options(threads=args.threads)
    torch.set_num_threads(args.threads)
    pairs = _pairs(args.pairs, args.suspects_per_live)
    fast = {"embedder_params": {"detector": {"name": "dlib_hog", "upsample": 0, "max_side": 400}}}
    rows = []
    rows += bench(get_detector("embedding_distance", **fast), pairs, name="dlib embedding (distance/LR/SVM)")
    tex = get_detector("fr_texture", C=1.0, **fast)
    tex.model_ = _dummy_linear(tex)
    rows += bench(tex, pairs, name="dlib + texture (fr_texture)")
    # demorphing, face finding of the shipped frll_dmad.yaml: embedding + landmarks of both images,
    # then per pair one warp and one embedding per alpha
    shipped = {"embedder_params": {"detector": {**fast["embedder_params"]["detector"], "equalise": "retry",
                                                "upsample_retry": True}}}
    rows += bench(get_detector("demorph_distance", **shipped), pairs,
                  name="demorphing, alpha 0.5, untrained (demorph_distance)")
    # the shipped frll_dmad.yaml: dmad_cues [demorph_diff], alphas 0.3 and 0.5 -> RBF SVM
    ship = get_detector("dmad_cues", features=["demorph_diff"], classifier="rbf_svm", C=1.0, **shipped)
    ship.model_ = _dummy_linear(ship, d=2 * 128)
    rows += bench(ship, pairs, name="demorphing, alphas 0.3 + 0.5 -> SVM (dmad_cues [demorph_diff], shipped)")
    if not args.skip_vit:
        from madpad.mad.foundation import FoundationDetector, _Net

        det = FoundationDetector(backbone="ViT-B-16", pretrained=None, device="cpu", progress=False,
                                 eval_batch_size=8)
        det.net_ = _Net(det.config)
        det.net_.train(False)
        det._finish()
        rows += bench(det, pairs, name="open_clip ViT-B-16 + LoRA (random weights)")
    print(f"machine: {platform.machine()}, {args.threads} threads, torch {torch.__version__}, "
          f"{args.pairs} pairs, {args.suspects_per_live} suspects per live capture")
    print("| detector | mode | pairs/s |\n|---|---|---|")
    for name, mode, pps in rows:
        print(f"| {name} | {mode} | {pps:.2f} |")
    return 0


def _dummy_linear(det, d: int | None = None):
    """A fixed linear model of width ``d`` (default: fr_texture's) (speed only: feature extraction
    dominates)."""
    import numpy as np

    from madpad.mad.features import TEXTURE_DIM

    d = d or 128 * 2 + 1 + 2 * TEXTURE_DIM
    return {"kind": "logreg", "mean": np.zeros(d), "scale": np.ones(d), "coef": np.ones(d) / d,
            "intercept": np.zeros(1), "classes": np.array([0, 1])}


if __name__ == "__main__":
    raise SystemExit(main())
