"""Benchmark of the landmark morphs: seconds per morph at 600 and 1350 px, split into stages.

    python benchmarks/bench_morph.py [--frll DIR] [--pairs 8] [--repeat 2]
    python benchmarks/bench_morph.py contact-sheet --morphs DIR1/manifest.csv DIR2/manifest.csv \
        --out sheet.jpg [--n 6]

Stages per morph (model loading excluded: the detector/landmarker are loaded and warmed up first):

* ``landmarks``: face detection + 68 landmarks of both sources (no cache: every image analysed);
* ``warp+blend``: alignment, Delaunay triangulation, piecewise-affine warps and the blend
  (plus the colour correction and multi-band splice for ``landmark_spliced``);
* ``read`` / ``write``: decoding both JPEG sources, encoding the morph (PNG and JPEG q95).

The 1350 px rows use the FRLL images of ``--frll`` (default ``$MADPAD_SHARED/data/frll``); the 600 px
rows the bundled 24-subject sample. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _pairs(folder: Path, n: int) -> list[tuple[Path, Path]]:
    files = sorted((folder / "neutral").glob("*_03.jpg"))
    if len(files) < 2:
        raise SystemExit(f"no FRLL neutral images under {folder}")
    out = []
    for k in range(n):
        a, b = files[(2 * k) % len(files)], files[(2 * k + 1) % len(files)]
        out.append((a, b))
    return out


def bench(folder: Path, *, method: str, n_pairs: int, repeat: int) -> dict:
    from madpad.io import read_image, write_image
    from madpad.morph import get_morph_method

    gen = get_morph_method(method)
    pairs = _pairs(folder, n_pairs)
    # load and warm up the models (excluded from the timings)
    gen.landmarks.load()
    warm = read_image(pairs[0][0])
    gen.morph(warm, read_image(pairs[0][1]))
    stages = ("read", "landmarks", "warp+blend", "write_png", "write_jpg")
    wall = {k: [] for k in stages}
    cpu = {k: [] for k in stages}
    size = None

    def clock():
        return time.perf_counter(), time.process_time()

    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            for a_path, b_path in pairs:
                marks = [clock()]
                a, b = read_image(a_path), read_image(b_path)
                marks.append(clock())
                gen.landmarks._cache.clear()  # measure detection + landmarks every time
                pa, pb = gen.landmarks(a), gen.landmarks(b)
                marks.append(clock())
                res = gen.morph_from_landmarks(a, pa, b, pb, alpha=0.5)
                marks.append(clock())
                write_image(Path(tmp) / "m.png", res.image)
                marks.append(clock())
                write_image(Path(tmp) / "m.jpg", res.image, quality=95)
                marks.append(clock())
                size = a.shape[1]
                for k, name in enumerate(stages):
                    wall[name].append(marks[k + 1][0] - marks[k][0])
                    cpu[name].append(marks[k + 1][1] - marks[k][1])
    out = {}
    for tag, t in (("wall", wall), ("cpu", cpu)):
        med = {k: statistics.median(v) for k, v in t.items()}
        med["total_jpg"] = med["read"] + med["landmarks"] + med["warp+blend"] + med["write_jpg"]
        med["morph_only"] = med["landmarks"] + med["warp+blend"]
        out[tag] = med
    out["size"] = size
    out["n"] = len(wall["read"])
    return out


def main_bench(argv) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--frll", type=Path, default=None, help="FRLL folder with 1350 px images")
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    from madpad.cli import apply_runtime_options
    from madpad.data.sample import sample_root

    apply_runtime_options(threads=args.threads)
    frll = args.frll
    if frll is None and os.environ.get("MADPAD_SHARED"):
        frll = Path(os.environ["MADPAD_SHARED"]) / "data" / "frll"
    if frll is None:
        frll = Path(__file__).resolve().parents[2] / "shared" / "data" / "frll"
    folders = [sample_root()] + ([frll] if (frll / "neutral").is_dir() else [])
    import platform

    import cv2

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, OpenCV threads {cv2.getNumThreads()}, "
          f"python {platform.python_version()}")
    print("seconds per morph, median over pairs x repeats, model load excluded; wall-clock, and in brackets "
          "the process CPU time (all threads), which is what a busy shared machine distorts least\n")
    print("| size | method | landmarks (2 images) | warp+blend | read 2 JPEG | write PNG | write JPEG q95 "
          "| landmarks+warp+blend | total with I/O (JPEG) | n |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for folder in folders:
        for method in ("landmark", "landmark_spliced"):
            r = bench(folder, method=method, n_pairs=args.pairs, repeat=args.repeat)
            w, c = r["wall"], r["cpu"]
            cells = [f"{w[k]:.3f} ({c[k]:.3f})" for k in ("landmarks", "warp+blend", "read", "write_png",
                                                          "write_jpg", "morph_only", "total_jpg")]
            print(f"| {r['size']} px | {method} | " + " | ".join(cells) + f" | {r['n']} |", flush=True)
    return 0


# --------------------------------------------------------------------------- contact sheet
def contact_sheet(manifests: list[Path], out: Path, *, n: int = 6, tile: int = 170, quality: int = 80) -> Path:
    """Rows of (contributor A, morph from each manifest, contributor B) for the first ``n`` morphs
    that are ok in every manifest (matched by id), with column titles."""
    import cv2
    import numpy as np

    from madpad.data import load_morphs
    from madpad.io import read_image, write_image

    tables = [load_morphs(m) for m in manifests]
    by_id = [{r.id: r for r in t if r.ok} for t in tables]
    ids = [r.id for r in tables[0] if r.ok and all(r.id in d for d in by_id)][:n]
    titles = ["contributor A"] + [t[0].method for t in tables] + ["contributor B"]

    def thumb(path):
        img = read_image(path)
        h, w = img.shape[:2]
        s = tile / max(h, w)
        return cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)

    rows = []
    for mid in ids:
        first = by_id[0][mid]
        cells = [thumb(first.a)] + [thumb(d[mid].path) for d in by_id] + [thumb(first.b)]
        rows.append(np.hstack(cells))
    header = np.full((26, rows[0].shape[1], 3), 255, np.uint8)
    for k, title in enumerate(titles):
        cv2.putText(header, title, (k * tile + 6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    sheet = np.vstack([header] + rows)
    write_image(out, sheet, quality=quality)
    return out


def main_sheet(argv) -> int:
    p = argparse.ArgumentParser(description="contact sheet of morphs with their sources")
    p.add_argument("--morphs", type=Path, nargs="+", required=True, help="morph manifests (same ids)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--n", type=int, default=6)
    p.add_argument("--tile", type=int, default=170)
    p.add_argument("--quality", type=int, default=80)
    args = p.parse_args(argv)
    out = contact_sheet(args.morphs, args.out, n=args.n, tile=args.tile, quality=args.quality)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv and argv[0] == "contact-sheet":
        sys.exit(main_sheet(argv[1:]))
    sys.exit(main_bench(argv))
