"""T-shirt PAD benchmarks: throughput of the backends, and the evidence on held-out subjects.

    python benchmarks/bench_tshirt.py [speed] [--images IMAGES.csv] [--n 24] [--threads 2]
    python benchmarks/bench_tshirt.py evidence --out runs/tshirt_evidence [--threads 2]

``speed`` (the default): without ``--images`` a small synthetic set (the bundled FRLL sample, 600 px
wide) is generated into a temporary folder. Each backend is warmed up on one image, then timed over
``--n`` images (decoded beforehand, so only detection is timed); wall time and process CPU time
(all threads) are reported, the latter being less sensitive to other jobs on a shared machine.
``yolo`` runs a random-init ``yolov8n.yaml`` (the architecture's speed; no weights ship here).
Prints a Markdown table.

``evidence``: needs ``$MADPAD_SHARED`` (``data/frll_canada``, ``data/frll/neutral``,
``data/frll/smiling``, ``models/person``).

1. **Split.** The 40 ``frll_canada`` wearers and the 80 FRLL printed-face subjects are split at
   random (``--seed``) into a tuning half and a test half. No subject is in both.
2. **Sets.** For each half, ``madpad.pad.synth`` makes every species and every bona fide capture
   (``--species all --bona-fide all``). Each half also gets bona fide two-person photos made
   another way ("pairs"). Two FRLL *smiling* portraits of that half's printed-face subjects are put
   side by side, as in the shared person-model README's check. Half of the pairs are plain; the
   other half get a flat torso block under each portrait.
3. **Scoring.** Each configuration runs ``python -m madpad.detect tshirt`` on both halves. The learned
   scorer is fitted on the tuning half's scores (``fit-scorer``) and applied to the test half.
   Nothing is fitted or chosen on the test half.
4. **Metrics.** For each species: D-EER, and BPCER at APCER = 1 % and 5 %. The bona fide set is
   all bona fide images. For all species together (APCER = the maximum over species): BPCER at
   APCER = 1 % and 5 %, and the false-alarm rate of each bona fide capture at those thresholds.
   The rates are also given at the threshold fixed on the tuning half. Failures to acquire
   (empty score) are counted apart.

Everything is written under ``--out``, and runs resume: a finished step's file is reused. The
Markdown tables go to ``--out/evidence.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


# --------------------------------------------------------------------------- speed
def _images(args, tmp: Path):
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


def speed(args) -> int:
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
            "nanodet (+pose per box, selfie mask) [default]": lambda: get_person_detector("nanodet"),
            "nanodet (boxes only)": lambda: get_person_detector("nanodet", pose=False, segment=False),
            "centernet (+pose per box, selfie mask)": lambda: get_person_detector("centernet"),
            "centernet (boxes only)": lambda: get_person_detector("centernet", pose=False, segment=False),
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
        faces = {"union (dlib_hog+mediapipe+mtcnn, mediapipe at ±15/±30) [default]": ("union", {}),
                 "dlib_hog": ("dlib_hog", {}), "mediapipe": ("mediapipe", {}), "mtcnn": ("mtcnn", {}),
                 "haar": ("haar", {}), "dlib_cnn": ("dlib_cnn", {})}
        for label, (name, params) in faces.items():
            if name in skip:
                continue
            det = get_detector(name, **params)
            imgs = images if name != "dlib_cnn" else images[: max(2, len(images) // 6)]
            rows.append(("face", label, *_time(det.detect, imgs)))
        pipelines = {"default: nanodet + union + rules": {},
                     "light: mediapipe_pose + dlib_hog + rules (the demo's set)": {"person": "mediapipe_pose",
                                                                                   "face": "dlib_hog"}}
        for label, kw in pipelines.items():
            pad = TshirtDetector.from_names(**kw)
            rows.append(("pipeline", label, *_time(pad.analyze, images)))

    print(f"# T-shirt PAD throughput: {len(images)} images of {w}x{h}, torch/cv2 threads={args.threads}, "
          f"{platform.machine()} {os.cpu_count()} CPU(s), Python {platform.python_version()}\n")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end: {load:.1f} (wall times grow with other jobs on the machine; CPU time less so)\n")
    print("| stage | backend | images/s (wall) | ms/image (wall) | CPU ms/image |")
    print("|---|---|---:|---:|---:|")
    for kind, name, ips, ms, cpu in rows:
        print(f"| {kind} | {name} | {ips:.2f} | {ms:.0f} | {cpu:.0f} |")
    return 0


# --------------------------------------------------------------------------- evidence
CONFIGS = {
    "default": ["--person-detector", "nanodet", "--face-detector", "union"],
    "centernet": ["--person-detector", "centernet", "--face-detector", "union"],
    "light": ["--person-detector", "mediapipe_pose", "--face-detector", "dlib_hog"],
}


def _split(items: list[str], seed: int, salt: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng([seed, salt])
    order = rng.permutation(len(items))
    half = len(items) // 2
    return sorted(items[i] for i in order[:half]), sorted(items[i] for i in order[half:])


def _pairs(shared: Path, printed: list[str], out: Path, manifest: Path) -> None:
    """Bona fide two-person photos: two FRLL smiling portraits (450 px) side by side; every second
    pair with a flat torso block below each (background colour, shirt colour under the shoulders).
    Appended to ``manifest`` as label bona_fide, capture pair_plain / pair_torso."""
    import cv2

    from madpad.io import read_image, write_image
    from madpad.pad.synth import MANIFEST_COLUMNS

    def portrait(stem: str, torso: bool) -> np.ndarray:
        a = cv2.resize(read_image(shared / "data/frll/smiling" / f"{stem[:3]}_08.jpg"), (450, 450),
                       interpolation=cv2.INTER_AREA)
        if not torso:
            return a
        h, w = a.shape[:2]
        bg = np.median(np.concatenate([a[:30, :30].reshape(-1, 3), a[:30, -30:].reshape(-1, 3)]), 0)
        block = np.tile(bg.astype(np.uint8), (h // 2, w, 1))
        shirt = np.median(np.concatenate([a[-10:, w // 10:w // 4].reshape(-1, 3),
                                          a[-10:, 3 * w // 4:9 * w // 10].reshape(-1, 3)]), 0).astype(np.uint8)
        xs = np.where(np.abs(a[-1].astype(int) - bg).sum(1) > 40)[0]
        x0, x1 = (xs.min(), xs.max()) if len(xs) else (w // 4, 3 * w // 4)
        m = int(0.05 * w)
        block[:, max(x0, m):min(x1, w - m) + 1] = shirt
        return np.concatenate([a, block], 0)

    with open(manifest, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if any(r["capture"].startswith("pair_") for r in rows):
        return
    stems = [s for s in printed if (shared / "data/frll/smiling" / f"{s[:3]}_08.jpg").is_file()]
    for k in range(len(stems) // 2):
        a, b = stems[2 * k], stems[2 * k + 1]
        cap = "pair_torso" if k % 2 else "pair_plain"
        img = np.concatenate([portrait(a, k % 2 == 1), portrait(b, k % 2 == 1)], 1)
        rid = f"pair_{a}_{b}"
        write_image(out / "images" / f"{rid}.jpg", img, quality=92)
        row = {c: "" for c in MANIFEST_COLUMNS}
        row.update(id=rid, path=f"images/{rid}.jpg", subject=f"frll_{a}", label="bona_fide", capture=cap,
                   source="bench_tshirt pairs (FRLL smiling, side by side)", other_subjects=f"frll_{b}",
                   width=img.shape[1], height=img.shape[0])
        rows.append(row)
    from madpad.data import write_table

    write_table(manifest, rows, columns=MANIFEST_COLUMNS, fmt="csv")


def _read(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _metrics(scores_csv: Path, manifest: Path, tune_thresholds: dict | None = None) -> dict:
    from madpad.metrics.pad import bpcer_at_apcer, d_eer

    cap_of = {r["id"]: r["capture"] for r in _read(manifest)}
    rows = _read(scores_csv)
    ok = [r for r in rows if r["score"] != ""]
    fta = [r for r in rows if r["score"] == ""]
    s = np.array([float(r["score"]) for r in ok])
    y = np.array([r["label"] == "attack" for r in ok], dtype=int)
    sp = np.array([r["species"] for r in ok], dtype=object)
    cap = np.array([cap_of.get(r["id"], "") for r in ok], dtype=object)
    out: dict = {"n": len(rows), "n_bona_fide": int((y == 0).sum()), "n_attack": int(y.sum()),
                 "fta": {}, "species": {}, "overall": {}, "captures": {}}
    for r in fta:
        key = r["species"] if r["label"] == "attack" else f"bona fide {cap_of.get(r['id'], '')}"
        out["fta"][key] = out["fta"].get(key, 0) + 1
    for x in sorted(set(sp[y == 1])):
        m = (y == 0) | (sp == x)
        out["species"][x] = {"n": int((sp == x).sum()), "d_eer": d_eer(s[m], y[m]).d_eer,
                             "bpcer_at_apcer_1": bpcer_at_apcer(s[m], y[m], 0.01).bpcer,
                             "bpcer_at_apcer_5": bpcer_at_apcer(s[m], y[m], 0.05).bpcer,
                             "min_attack_score": float(s[sp == x].min())}
    out["overall"]["d_eer"] = d_eer(s, y, species=sp).d_eer
    for t in (0.01, 0.05):
        op = bpcer_at_apcer(s, y, t, species=sp)
        out["overall"][f"apcer_{round(t * 100)}"] = {"threshold": op.threshold, "bpcer": op.bpcer, "apcer": op.apcer}
    for c in sorted(set(cap[y == 0])):
        sc = s[(y == 0) & (cap == c)]
        out["captures"][c] = {"n": len(sc), "max_score": float(sc.max()),
                              **{f"fa_at_apcer_{k}": float((sc >= out["overall"][f"apcer_{k}"]["threshold"]).mean())
                                 for k in (1, 5)}}
        if tune_thresholds:
            for k in (1, 5):
                out["captures"][c][f"fa_at_tune_{k}"] = float((sc >= tune_thresholds[k]).mean())
    if tune_thresholds:
        out["at_tune_threshold"] = {}
        for k in (1, 5):
            t = tune_thresholds[k]
            out["at_tune_threshold"][k] = {
                "threshold": t, "bpcer": float((s[y == 0] >= t).mean()),
                "apcer_per_species": {x: float((s[sp == x] < t).mean()) for x in sorted(set(sp[y == 1]))}}
    bf = sorted(((float(r["score"]), r["id"], r["fired"]) for r in ok if r["label"] == "bona_fide"), reverse=True)
    at = sorted((float(r["score"]), r["id"], r["fired"]) for r in ok if r["label"] == "attack")
    out["highest_bona_fide"] = bf[:5]
    out["lowest_attacks"] = at[:5]
    return out


def _markdown(results: dict, timing: dict) -> str:
    lines = []
    for name, res in results.items():
        test = res["test"]
        lines.append(f"### {name}\n")
        lines.append(f"Test half: {test['n_bona_fide']} bona fide, {test['n_attack']} attacks; failures to acquire "
                     f"(empty score): {json.dumps(test['fta']) if test['fta'] else 'none'}.\n")
        lines.append("| attack species | n | D-EER % | BPCER@APCER=1% | BPCER@APCER=5% | lowest attack score |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for x, m in test["species"].items():
            lines.append(f"| {x} | {m['n']} | {100 * m['d_eer']:.1f} | {100 * m['bpcer_at_apcer_1']:.1f} | "
                         f"{100 * m['bpcer_at_apcer_5']:.1f} | {m['min_attack_score']:.3f} |")
        o = test["overall"]
        lines.append(f"| **all species (APCER = max)** | {test['n_attack']} | {100 * o['d_eer']:.1f} | "
                     f"{100 * o['apcer_1']['bpcer']:.1f} | {100 * o['apcer_5']['bpcer']:.1f} | |\n")
        lines.append(f"Thresholds on the test half: APCER=1% at {o['apcer_1']['threshold']:.4g}, APCER=5% at "
                     f"{o['apcer_5']['threshold']:.4g}. Fixed on the tuning half: APCER=1% at "
                     f"{res['tune_thresholds'][1]:.4g}, APCER=5% at {res['tune_thresholds'][5]:.4g}.\n")
        lines.append("| bona fide capture | n | highest score | false alarms at the APCER=5% threshold | at APCER=1% | "
                     "at the tuning half's APCER=5% threshold |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for c, m in test["captures"].items():
            lines.append(f"| {c} | {m['n']} | {m['max_score']:.3f} | {100 * m['fa_at_apcer_5']:.1f}% | "
                         f"{100 * m['fa_at_apcer_1']:.1f}% | {100 * m.get('fa_at_tune_5', float('nan')):.1f}% |")
        t5 = test.get("at_tune_threshold", {}).get(5)
        if t5:
            worst = max(t5["apcer_per_species"].items(), key=lambda kv: kv[1])
            lines.append(f"\nAt the tuning half's APCER=5% threshold ({t5['threshold']:.4g}) on the test half: "
                         f"BPCER {100 * t5['bpcer']:.1f}%, APCER per species "
                         + ", ".join(f"{k} {100 * v:.1f}%" for k, v in t5["apcer_per_species"].items())
                         + f" (worst: {worst[0]}).")
        lines.append("\nLowest-scoring test attacks: " + "; ".join(f"{i} {sc:.3f} [{f or '-'}]"
                                                                  for sc, i, f in test["lowest_attacks"]) + ".")
        lines.append("Highest-scoring test bona fide: " + "; ".join(f"{i} {sc:.3f} [{f or '-'}]"
                                                                    for sc, i, f in test["highest_bona_fide"]) + ".\n")
    if timing:
        lines.append("| configuration | images | wall s/image | CPU s/image |")
        lines.append("|---|---:|---:|---:|")
        for k, v in timing.items():
            lines.append(f"| {k} | {v['n']} | {v['wall']:.2f} | {v['cpu']:.2f} |")
    return "\n".join(lines) + "\n"


def evidence(args) -> int:
    import resource

    from madpad.detect import main as detect_main
    from madpad.io import env_path
    from madpad.pad.cli import main_fit_scorer
    from madpad.pad.synth import main as synth_main

    shared = env_path("MADPAD_SHARED")
    if shared is None:
        print("set MADPAD_SHARED to the shared folder (data/frll_canada, data/frll, models/person)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wearers = sorted(p.stem for p in (shared / "data/frll_canada").glob("*.jpg"))
    printed = sorted(p.stem for p in (shared / "data/frll/neutral").glob("*.jpg"))
    splits = {"tune": {}, "test": {}}
    splits["tune"]["wearers"], splits["test"]["wearers"] = _split(wearers, args.seed, 1)
    splits["tune"]["printed"], splits["test"]["printed"] = _split(printed, args.seed, 2)
    (out / "split.json").write_text(json.dumps(splits, indent=1), encoding="utf-8")
    for half, sp in splits.items():
        d = out / half
        man = d / "manifest.csv"
        for key in ("wearers", "printed"):
            (out / f"{half}_{key}.txt").write_text("\n".join(sp[key]) + "\n", encoding="utf-8")
        if not man.is_file():
            rc = synth_main(["--source", str(shared / "data/frll_canada"), "--faces", str(shared / "data/frll/neutral"),
                             "--out", str(d), "--seed", str(args.seed + (0 if half == "tune" else 1)),
                             "--species", "all", "--bona-fide", "all", "--no-progress",
                             "--wearers", f"@{out / f'{half}_wearers.txt'}",
                             "--printed", f"@{out / f'{half}_printed.txt'}"])
            if rc:
                return rc
        _pairs(shared, sp["printed"], d, man)
    timing: dict = {}
    configs = {k: v for k, v in CONFIGS.items() if k in args.configs.split(",")}
    for name, opts in configs.items():
        for half in ("tune", "test"):
            scores = out / f"scores_{name}_{half}.csv"
            if scores.is_file():
                continue
            t0 = time.perf_counter()
            c0 = resource.getrusage(resource.RUSAGE_SELF)
            rc = detect_main(["tshirt", "--images", str(out / half / "manifest.csv"), "--out", str(scores),
                              "--no-progress", "--threads", str(args.threads), *opts])
            c1 = resource.getrusage(resource.RUSAGE_SELF)
            if rc:
                return rc
            n = len(_read(scores))
            timing[f"{name} ({half})"] = {"n": n, "wall": (time.perf_counter() - t0) / n,
                                          "cpu": (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) / n}
        model = out / f"scorer_{name}.npz"
        if not (out / f"scores_{name}_learned_test.csv").is_file():
            rc = main_fit_scorer(["--scores", str(out / f"scores_{name}_tune.csv"), "--out", str(model),
                                  "--apply", str(out / f"scores_{name}_test.csv"),
                                  str(out / f"scores_{name}_learned_test.csv")])
            if rc:
                return rc
            from madpad.pad.cli import apply_scorer
            from madpad.pad.learned import LearnedScorer

            apply_scorer(LearnedScorer.load(model), out / f"scores_{name}_tune.csv",
                         out / f"scores_{name}_learned_tune.csv")
    if timing:
        old = json.loads((out / "timing.json").read_text()) if (out / "timing.json").is_file() else {}
        (out / "timing.json").write_text(json.dumps({**old, **timing}, indent=1), encoding="utf-8")
    timing = json.loads((out / "timing.json").read_text()) if (out / "timing.json").is_file() else {}
    results = {}
    for name in configs:
        for variant, tag in (("rules", ""), ("learned LR", "learned_")):
            tune = _metrics(out / f"scores_{name}_{tag}tune.csv", out / "tune" / "manifest.csv")
            thr = {k: tune["overall"][f"apcer_{k}"]["threshold"] for k in (1, 5)}
            test = _metrics(out / f"scores_{name}_{tag}test.csv", out / "test" / "manifest.csv", thr)
            results[f"{name}, {variant}"] = {"tune": tune, "test": test, "tune_thresholds": thr}
    (out / "evidence.json").write_text(json.dumps(results, indent=1, default=float), encoding="utf-8")
    md = _markdown(results, timing)
    (out / "evidence.md").write_text(md, encoding="utf-8")
    print(md)
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("speed", "evidence"):
        argv = ["speed", *argv]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed", help="throughput of the backends")
    s.add_argument("--images", help="IMAGES.csv (id,path); default: a generated synthetic set")
    s.add_argument("--n", type=int, default=24)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--skip", default="", help="comma list of backends to skip (e.g. dlib_cnn,yolo)")
    e = sub.add_parser("evidence", help="PAD figures on held-out subjects (needs $MADPAD_SHARED)")
    e.add_argument("--out", required=True, help="work folder (resumable)")
    e.add_argument("--seed", type=int, default=17)
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--configs", default="default,light", help=f"comma list from {list(CONFIGS)}")
    args = ap.parse_args(argv)
    return speed(args) if args.cmd == "speed" else evidence(args)


if __name__ == "__main__":
    sys.exit(main())
