"""Low-resolution gate cameras: D-MAD pairs with every live capture downscaled, and their figures.

A dev-only robustness check (issue 11: live captures that vary as real gates vary). ``make``
writes a copy of pair CSVs whose live captures are downscaled (area averaging, JPEG q90) until the
inter-ocular distance of the face is at most ``--iod`` pixels (captures already that small are
only re-encoded; a live capture without a face found is kept as it is and counted); with ``--grey``
every live capture is also turned grey (Rec. 601 luma in three equal channels, JPEG q90: a grey
gate camera; ``--grey`` alone keeps the size); ``--blur S`` blurs it by a Gaussian of S times the
face's inter-ocular distance (an out-of-focus camera; a capture without a face is not blurred) and
``--exposure F`` multiplies its pixel values by F, clipped (F > 1: an over-exposed camera). The
changes apply in that order: downscale, blur, exposure, grey. ``summary``
prints, for score CSVs of ``python -m madpad.detect score``, the mean over attack species of the
per-species D-EER and BPCER@APCER=1 % (each species with all bona fide pairs: the dev key of
``mad_lomo.py``), the pooled figures and the status counts.

    python benchmarks/lowres_live_pairs.py make --pairs runs/frll_dmad/model/pairs/pairs_dev.csv \\
        --pairs runs/frll_dmad/canada/pairs/pairs_dev.csv --iod 36 --out runs/lowres/iod36_dev \\
        --cache runs/frll_dmad/cache
    python -m madpad.detect score --model runs/frll_dmad/model --pairs runs/lowres/iod36_dev/pairs.csv \\
        --out runs/lowres/iod36_dev/scores.csv --cache runs/frll_dmad/cache
    python benchmarks/lowres_live_pairs.py summary runs/lowres/iod36_dev/scores.csv
    python benchmarks/lowres_live_pairs.py make --pairs ... --grey --out runs/grey/dev --cache runs/frll_dmad/cache

The live captures are derived from the FRLL photos (CC BY 4.0, DeBruine & Jones 2017): simulated
gate captures, downscaled (or turned grey) here.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
from pathlib import Path

import numpy as np


def downscale_to_iod(image: np.ndarray, iod: float | None, target: float) -> np.ndarray:
    """``image`` shrunk (area averaging) so a face with inter-ocular distance ``iod`` has at most
    ``target`` pixels between the eyes; unchanged when it already has (or ``iod`` is None)."""
    from madpad.io import resize_by

    if iod is None or not np.isfinite(iod) or iod <= target:
        return image
    return resize_by(image, target / float(iod))


def blur_by_iod(image: np.ndarray, iod: float | None, fraction: float) -> np.ndarray:
    """``image`` blurred by a Gaussian of ``fraction`` x ``iod`` pixels (unchanged without a face)."""
    import cv2

    if iod is None or not np.isfinite(iod):
        return image
    return cv2.GaussianBlur(image, (0, 0), fraction * float(iod))


def exposed(image: np.ndarray, factor: float) -> np.ndarray:
    """Pixel values times ``factor``, rounded and clipped to 0..255."""
    return np.clip(np.rint(image.astype(np.float64) * factor), 0, 255).astype(np.uint8)


def make(args) -> int:
    from mad_fr_systems import FAST_DETECTOR

    from madpad.errors import UsageError
    from madpad.io import read_image, write_image
    from madpad.mad.augment import grey_rgb
    from madpad.mad.cache import FeatureCache
    from madpad.mad.cues import DemorphExtractor, eye_distance
    from madpad.mad.pairs import read_pairs_csv

    if args.iod is None and not args.grey and args.blur is None and args.exposure is None:
        raise UsageError("give at least one of --iod, --grey, --blur, --exposure")
    if args.iod is not None and not args.iod > 1:
        raise UsageError(f"--iod must be a number of pixels above 1; got {args.iod}")
    for name in ("blur", "exposure"):
        v = getattr(args, name)
        if v is not None and not (np.isfinite(v) and v > 0):
            raise UsageError(f"--{name} must be a positive number; got {v}")
    pairs = [p for f in args.pairs for p in read_pairs_csv(f, require_labels=True)]
    out = Path(args.out)
    (out / "live").mkdir(parents=True, exist_ok=True)
    # the table's face finding, whose per-image rows the cache holds
    fx = DemorphExtractor(embedder_params={"detector": dict(FAST_DETECTOR)})
    cache = FeatureCache(args.cache)
    lives = sorted({str(p.live) for p in pairs})
    rows = fx.many(lives, cache=cache)
    lm = fx.layout()["landmarks"]
    new, no_face = {}, 0
    for src, st, feat in zip(lives, rows.status, rows.features):
        iod = eye_distance(feat[lm].reshape(68, 2)) if st == "ok" else None
        no_face += iod is None
        tag = hashlib.sha256(str(Path(src).resolve()).encode()).hexdigest()[:8]  # one name per file, however spelt
        dst = out / "live" / f"{Path(src).stem}_{tag}.jpg"
        if not dst.exists():
            img = read_image(src)
            scale = 1.0
            if args.iod is not None:
                small = downscale_to_iod(img, iod, args.iod)
                scale, img = small.shape[1] / img.shape[1], small
            if args.blur is not None:
                img = blur_by_iod(img, None if iod is None else iod * scale, args.blur)
            if args.exposure is not None:
                img = exposed(img, args.exposure)
            write_image(dst, grey_rgb(img) if args.grey else img, quality=90)
        new[src] = dst
    with open(out / "pairs.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "suspect", "live", "label", "species", "subjects"])
        for p in pairs:
            w.writerow([p.id, os.path.relpath(p.suspect, out), os.path.relpath(new[str(p.live)], out), p.label,
                        p.species or "", ";".join(p.subjects)])
    what = ", ".join(([f"at inter-ocular distance <= {args.iod:g} px"] if args.iod is not None else [])
                     + ([f"blurred by {args.blur:g} IOD"] if args.blur is not None else [])
                     + ([f"exposure x{args.exposure:g}"] if args.exposure is not None else [])
                     + (["in grey"] if args.grey else []))
    kept = (f" ({no_face} without a face kept at their size and sharpness)"
            if args.iod is not None or args.blur is not None else "")
    print(f"{len(pairs)} pairs, {len(lives)} live captures {what}{kept} -> {out / 'pairs.csv'}")
    return 0


def summary_line(path) -> str:
    from madpad.mad.evaluation import per_species, summarize

    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    status: dict = {}
    for r in rows:
        status[r["status"]] = status.get(r["status"], 0) + 1
    ok = [r for r in rows if r["status"] == "ok" and r["score"] not in ("", "nan")]
    score = np.array([float(r["score"]) for r in ok])
    y = np.array([r["label"] == "attack" for r in ok], dtype=int)
    species = [r["species"] for r in ok]
    figs = per_species(score, y, species).values()
    d, b = [m["d_eer"] for m in figs], [m["bpcer_at_apcer_1"] for m in figs]
    pooled = summarize(score, y, species)
    return (f"| {path} | {100 * np.mean(d):.2f} | {100 * np.mean(b):.2f} | {100 * pooled['d_eer']:.2f} | "
            f"{100 * pooled['bpcer_at_apcer_1']:.2f} | {', '.join(f'{k} {v}' for k, v in sorted(status.items()))} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="pairs with downscaled, blurred, over-exposed or grey live captures")
    m.add_argument("--pairs", action="append", required=True, help="labelled pair CSV (repeatable)")
    m.add_argument("--iod", type=float, default=None, help="inter-ocular distance of the live faces, pixels")
    m.add_argument("--grey", action="store_true", help="turn every live capture grey")
    m.add_argument("--blur", type=float, default=None, help="Gaussian blur, sigma as a fraction of the eye distance")
    m.add_argument("--exposure", type=float, default=None, help="multiply pixel values (> 1: over-exposed)")
    m.add_argument("--out", required=True)
    m.add_argument("--cache", default=None, help="feature cache folder (face finding of the live captures)")
    s = sub.add_parser("summary", help="figures of score CSVs")
    s.add_argument("scores", nargs="+")
    args = ap.parse_args(argv)

    from madpad.cli import run_main

    if args.cmd == "make":
        return run_main(lambda: make(args), prog="lowres_live_pairs")

    def _summary():
        print("| scores | mean per-species D-EER | mean per-species BPCER@APCER=1 % | pooled D-EER | "
              "pooled BPCER@APCER=1 % | statuses |")
        print("|---|---|---|---|---|---|")
        for f in args.scores:
            print(summary_line(f))
        return 0

    return run_main(_summary, prog="lowres_live_pairs")


if __name__ == "__main__":
    raise SystemExit(main())
