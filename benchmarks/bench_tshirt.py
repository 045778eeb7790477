"""Throughput of the T-shirt PAD backends (images per second), one process, CPU.

    python benchmarks/bench_tshirt.py [--images IMAGES.csv] [--n 24] [--threads 2]

Without ``--images`` a small synthetic set (the bundled FRLL sample, 600 px wide) is generated
into a temporary folder. Each backend is warmed up on one image, then timed over ``--n`` images
(decoded beforehand, so only detection is timed); wall time and process CPU time (all threads) are
reported, the latter being less sensitive to other jobs on a shared machine. ``yolo`` runs a random-init ``yolov8n.yaml``
(the architecture's speed; no weights ship here). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def _images(args, tmp: Path):
    import csv

    from madpad.io import read_image, resolve_relative_to

    if args.images:
        p = Path(args.images)
        with open(p, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        paths = [resolve_relative_to(p.parent, r["path"]) for r in rows]
    else:
        from madpad.data.sample import sample_root
        from madpad.pad.synth import SynthConfig, generate_set, list_sources

        root = sample_root() / "neutral"
        man = generate_set(wearers=list_sources(root, tag="w"), faces=list_sources(root, tag="p"), out_dir=tmp,
                           cfg=SynthConfig(width=600, seed=0), limit=max(1, args.n // 6 + 1), progress=False)
        with open(man, newline="", encoding="utf-8") as fh:
            paths = [tmp / r["path"] for r in csv.DictReader(fh)]
    return [read_image(p) for p in paths[: args.n]]


def _time(fn, images) -> tuple[float, float, float]:
    """(images/s wall, ms/image wall, CPU ms/image: process CPU time of all threads)."""
    fn(images[0])  # warm-up (model load)
    t0, c0 = time.perf_counter(), time.process_time()
    for im in images:
        fn(im)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    return len(images) / dt, 1000 * dt / len(images), 1000 * dc / len(images)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", help="IMAGES.csv (id,path); default: a generated synthetic set")
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip", default="", help="comma list of backends to skip (e.g. dlib_cnn,yolo)")
    args = ap.parse_args(argv)

    import torch  # noqa: F401  (before ultralytics; thread count below)

    from madpad.cli import apply_runtime_options
    from madpad.face import get_detector
    from madpad.pad import TshirtDetector
    from madpad.pad.persons import get_person_detector

    apply_runtime_options(threads=args.threads)
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory() as d:
        os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(d) / "yolo_cfg"))
        images = _images(args, Path(d))
        h, w = images[0].shape[:2]
        rows = []
        persons = {
            "mediapipe_pose (+selfie mask)": lambda: get_person_detector("mediapipe_pose"),
            "mediapipe_pose (no mask)": lambda: get_person_detector("mediapipe_pose", segment=False),
            "mediapipe_selfie": lambda: get_person_detector("mediapipe_selfie"),
            "hog": lambda: get_person_detector("hog"),
            "yolo (yolov8n.yaml, random init, 640)": lambda: get_person_detector("yolo", weights="yolov8n.yaml"),
        }
        for name, make in persons.items():
            if name.split(" ")[0] in skip:
                continue
            det = make()
            rows.append(("person", name, *_time(det.detect, images)))
        faces = {"dlib_hog": {}, "haar": {}, "mediapipe": {}, "dlib_cnn": {}}
        for name, params in faces.items():
            if name in skip:
                continue
            det = get_detector(name, **params)
            imgs = images if name != "dlib_cnn" else images[: max(2, len(images) // 6)]
            rows.append(("face", name, *_time(det.detect, imgs)))
        pad = TshirtDetector.from_names()
        rows.append(("pipeline", "default: mediapipe_pose + dlib_hog + rules", *_time(pad.analyze, images)))

    print(f"# T-shirt PAD throughput: {len(images)} images of {w}x{h}, torch/cv2 threads={args.threads}, "
          f"{platform.machine()} {os.cpu_count()} CPU(s), Python {platform.python_version()}\n")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end: {load:.1f} (wall times grow with other jobs on the machine; CPU time less so)\n")
    print("| stage | backend | images/s (wall) | ms/image (wall) | CPU ms/image |")
    print("|---|---|---:|---:|---:|")
    for kind, name, ips, ms, cpu in rows:
        print(f"| {kind} | {name} | {ips:.2f} | {ms:.0f} | {cpu:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
