"""Benchmark of madpad.face: speed of each component and dlib's verification scores.

Usage:
    python benchmarks/bench_face.py [--data DIR] [--repeat 3] [--subjects N] [--skip-slow]

DIR holds ``neutral/NNN_03.jpg`` and ``smiling/NNN_08.jpg`` (default: the bundled 24-subject
FRLL sample; ``$MADPAD_SHARED/data/frll`` has 80 subjects at 1350 px). Prints markdown tables:
1. seconds per image for every detector, landmarker and embedder (model load excluded:
   one warm-up call first; median of ``--repeat`` timed calls);
2. alignment: eye-centre error after ``align_portrait`` (landmarks re-detected on the
   aligned image vs the fixed targets), over all neutral images;
3. dlib embeddings: genuine (neutral vs smiling of one subject) and impostor cosine
   similarities, rank-1 identification rate and the best-separating threshold.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np


class _T:
    """Median wall-clock and process CPU seconds of repeated calls (CPU time is what the
    component costs when the machine is shared; it sums all threads of this process)."""

    def __init__(self, wall: float, cpu: float):
        self.wall, self.cpu = wall, cpu

    def __format__(self, spec: str) -> str:
        return f"{format(self.wall, spec)} | {format(self.cpu, spec)}"


def _timeit(fn, repeat: int) -> _T:
    fn()  # warm-up: loads the model
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return _T(statistics.median(walls), statistics.median(cpus))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="folder with neutral/ and smiling/ (default: bundled sample)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--subjects", type=int, default=0, help="use only the first N subjects (0 = all)")
    ap.add_argument("--skip-slow", action="store_true", help="skip dlib_cnn")
    args = ap.parse_args(argv)

    from madpad.data.sample import sample_root
    from madpad.face import (
        align_portrait,
        analyze_face,
        embed_batch,
        get_detector,
        get_embedder,
        get_landmarker,
        portrait_eye_targets,
        similarity_matrix,
    )
    from madpad.io import read_image

    data = args.data or sample_root()
    subjects = sorted(p.name.split("_")[0] for p in (data / "neutral").glob("*_03.jpg"))
    if args.subjects:
        subjects = subjects[: args.subjects]
    neutral = [data / "neutral" / f"{s}_03.jpg" for s in subjects]
    smiling = [data / "smiling" / f"{s}_08.jpg" for s in subjects]
    img = read_image(neutral[0])
    print(f"# madpad.face benchmark\n\ndata: {data} ({len(subjects)} subjects, first image {img.shape[1]}x{img.shape[0]})")
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {sys.version.split()[0]}\n")

    # 1. speed
    import os

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at start: {load:.1f} on {os.cpu_count()} cores\n")
    print("| component | params | wall s per image (median) | CPU s per image (median) | faces |\n|---|---|---|---|---|")
    det_cfgs = [("dlib_hog", {}), ("dlib_hog", {"upsample": 0, "max_side": None}), ("haar", {}),
                ("mediapipe", {}), ("mtcnn", {})]
    if not args.skip_slow:
        det_cfgs.append(("dlib_cnn", {}))
    ref = analyze_face(img)
    for name, params in det_cfgs:
        try:
            d = get_detector(name, **params)
        except Exception as exc:  # missing optional extra: report, keep going
            print(f"| detector {name} | {params} | unavailable: {exc} | | |")
            continue
        res = []
        t = _timeit(lambda: res.append(d.detect(img)), args.repeat)
        print(f"| detector {name} | {params or 'defaults'} | {t:.3f} | {len(res[-1])} |")
    for name in ("dlib68", "dlib5", "mediapipe_mesh"):
        lm = get_landmarker(name)
        t = _timeit(lambda: lm.landmarks(img, ref.detection.box), args.repeat)
        print(f"| landmarker {name} | box from dlib_hog | {t:.4f} | |")
    t = _timeit(lambda: analyze_face(img), args.repeat)
    print(f"| analyze_face | dlib_hog + dlib68 | {t:.3f} | |")
    t = _timeit(lambda: align_portrait(img, ref.landmarks), args.repeat)
    print(f"| align_portrait | 600x800 | {t:.4f} | |")
    emb = get_embedder("dlib")
    t = _timeit(lambda: emb.embed([img]), args.repeat)
    print(f"| embedder dlib | full image (detect+landmarks+ResNet) | {t:.3f} | |")
    a = emb.analyze(img)
    t = _timeit(lambda: emb._embed_face(a.image, a), args.repeat)
    print(f"| embedder dlib | ResNet only (face already found) | {t:.3f} | |")

    # 2. alignment accuracy
    targets = portrait_eye_targets()
    errs, failed = [], 0
    for p in neutral:
        im = read_image(p)
        r = analyze_face(im)
        if not r.ok:
            failed += 1
            continue
        out, _ = align_portrait(im, r.landmarks)
        r2 = analyze_face(out)
        if not r2.ok:
            failed += 1
            continue
        errs.extend(np.linalg.norm(r2.landmarks5[:2] - targets, axis=1).tolist())
    errs = np.array(errs)
    print("\n| alignment (600x800, eyes at (225,360),(375,360)) | value |\n|---|---|")
    print(f"| images aligned | {len(errs) // 2} of {len(neutral)} (failures: {failed}) |")
    print(f"| eye-centre error after re-detection, mean / median / max px | {errs.mean():.2f} / "
          f"{np.median(errs):.2f} / {errs.max():.2f} |")

    # 3. dlib verification on the set
    t0 = time.perf_counter()
    N = embed_batch(neutral, emb)
    S = embed_batch(smiling, emb)
    dt = time.perf_counter() - t0
    ok = N.ok & S.ok
    M = similarity_matrix(N.embeddings[ok], S.embeddings[ok])
    k = int(ok.sum())
    gen = np.diag(M)
    imp = M[~np.eye(k, dtype=bool)]
    rank1 = float(np.mean(M.argmax(axis=1) == np.arange(k)))
    print("\n| dlib embeddings (neutral reference vs smiling probe) | value |\n|---|---|")
    print(f"| subjects with both embeddings | {k} of {len(subjects)} |")
    print(f"| time, {2 * len(subjects)} images (s per image) | {dt:.1f} s ({dt / (2 * len(subjects)):.3f}) |")
    print(f"| genuine cosine: min / mean | {gen.min():.4f} / {gen.mean():.4f} |")
    print(f"| impostor cosine: mean / max ({imp.size} pairs) | {imp.mean():.4f} / {imp.max():.4f} |")
    print(f"| genuine min - impostor max (separation margin) | {gen.min() - imp.max():+.4f} |")
    print(f"| rank-1 identification | {rank1:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
