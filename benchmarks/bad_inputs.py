"""Evidence for the CLI contract under bad input: every bad file, CSV and output location through
every entry point that takes it, as a subprocess, with the outcome recorded.

Builds the corpus itself (from the bundled FRLL sample, ``madpad.data.sample``) in a temporary
folder, runs each bad input through each applicable command, and writes
``benchmarks/results/bad_inputs.md``: input x entry point -> exit code and the error line of
stderr, or the per-item status a batch job recorded. An unhandled exception (Python's report of
one on stderr) is detected and marked ``CRASH``; the script exits 1 when any cell is a crash. Run::

    python benchmarks/bad_inputs.py [--keep DIR] && python benchmarks/make_results.py

Takes a few minutes on 2 CPU cores (one tiny open_clip detector is trained for ``detect score``).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT_MD = HERE / "results" / "bad_inputs.md"
TIMEOUT = 300
CRASHES: list[str] = []


# --------------------------------------------------------------------------- running
def run(cmd: list[str], *, cwd: Path, timeout: int = TIMEOUT) -> tuple[int, str]:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", *cmd], cwd=cwd, capture_output=True, text=True, env=env,
                           timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout} s"
    dt = time.perf_counter() - t0
    print(f"  [{dt:5.1f} s] rc={r.returncode} {' '.join(cmd)[:140]}", file=sys.stderr)
    return r.returncode, r.stderr


def error_line(stderr: str, root: Path) -> str:
    """The line that explains the outcome: a crash's last line, else the first 'error:' line,
    else the last non-empty line; the corpus folder is written <corpus>."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if "Traceback (most recent call last)" in stderr:  # Python's report of an unhandled exception
        line = "CRASH: " + (lines[-1] if lines else "")
    else:
        errs = [ln for ln in lines if "error:" in ln]
        line = errs[0] if errs else (lines[-1] if lines else "")
    line = line.replace(str(root.resolve()), "<corpus>").replace(str(root), "<corpus>")
    line = line.replace("|", "\\|")
    return line if len(line) <= 170 else line[:167] + "..."


def cell(rc: int, stderr: str, root: Path, where: str) -> str:
    line = error_line(stderr, root)
    if line.startswith("CRASH"):
        CRASHES.append(f"{where}: {line}")
        return f"**{line}**"
    return f"exit {rc}" + (f": {line}" if line and rc != 0 else "")


def read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_csv(path: Path, header: list[str], rows: list[list], *, prefix: bytes = b"") -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_bytes(prefix + buf.getvalue().encode("utf-8"))
    return path


# --------------------------------------------------------------------------- the image corpus
def build_images(d: Path) -> dict[str, Path]:
    from PIL import Image

    from madpad.data.sample import sample_root
    from madpad.io import read_image

    faces = sorted((sample_root() / "neutral").glob("*.jpg"))
    face = read_image(faces[0])
    other = read_image(faces[1])
    d.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def save(name: str, arr, **kw) -> None:
        out[name.rsplit(".", 1)[0]] = d / name
        Image.fromarray(arr).save(d / name, **kw)

    buf = io.BytesIO()
    Image.fromarray(face).save(buf, format="JPEG", quality=95)
    (d / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    out["truncated"] = d / "truncated.jpg"
    (d / "empty.png").write_bytes(b"")
    out["empty"] = d / "empty.png"
    (d / "text_as_image.png").write_text("id,path\nthis is a CSV, not a PNG\n")
    out["text_as_image"] = d / "text_as_image.png"
    save("rgba.png", np.dstack([face, np.full(face.shape[:2], 200, np.uint8)]))
    save("grey.png", np.asarray(Image.fromarray(face).convert("L")))
    out["cmyk"] = d / "cmyk.jpg"
    Image.fromarray(face).convert("CMYK").save(d / "cmyk.jpg", quality=95)
    grey8 = np.asarray(Image.fromarray(face).convert("L"))
    save("grey16.png", grey8.astype(np.uint16) * 257)
    import cv2

    cv2.imwrite(str(d / "rgb16.png"), np.ascontiguousarray((face.astype(np.uint16) * 257)[..., ::-1]))
    out["rgb16"] = d / "rgb16.png"
    for name, pixels in (("exif_rotated", np.ascontiguousarray(np.rot90(face, 1))), ("exif_contradicting", face)):
        im = Image.fromarray(pixels)
        exif = im.getexif()
        exif[0x0112] = 6  # "display turned 90 degrees clockwise": right for the first, wrong for the second
        im.save(d / f"{name}.jpg", exif=exif.tobytes(), quality=95)
        out[name] = d / f"{name}.jpg"
    save("upside_down.png", np.ascontiguousarray(face[::-1, ::-1]))
    save("rotated_90.png", np.ascontiguousarray(np.rot90(face, 1)))
    rng = np.random.default_rng(0)
    save("no_face.png", (rng.random((600, 600, 3)) * 60 + 100).astype(np.uint8))
    canvas = np.full((600, 1000, 3), 255, np.uint8)
    canvas[:, :600] = face
    canvas[100:500, 600:1000] = np.asarray(Image.fromarray(other).resize((400, 400)))
    save("two_faces.png", canvas)
    tiny = np.full((600, 600, 3), 200, np.uint8)
    tiny[280:320, 280:320] = np.asarray(Image.fromarray(face).resize((40, 40)))
    save("tiny_face.png", tiny)
    save("huge.jpg", np.asarray(Image.fromarray(face).resize((6000, 6000), Image.Resampling.BILINEAR)), quality=80)
    Image.new("1", (20000, 20000)).save(d / "bomb.png")  # 400 Mpixel, a 50 kB file
    out["decompression_bomb"] = d / "bomb.png"
    return out


# --------------------------------------------------------------------------- sections
def image_section(root: Path, images: dict[str, Path], good: list[Path], model: Path | None) -> list[str]:
    d = root / "img_runs"
    d.mkdir()
    names = list(images)
    write_csv(d / "pairs.csv", ["id", "a", "b", "subject_a", "subject_b"],
              [[n, str(images[n]), str(good[1]), "s_a", "s_b"] for n in names])
    write_csv(d / "dpairs.csv", ["id", "suspect", "live", "label", "species"],
              [[n, str(images[n]), str(good[1]), "attack", "landmark"] for n in names])
    write_csv(d / "images.csv", ["id", "path", "label", "species"],
              [[n, str(images[n]), "bona_fide", ""] for n in names])
    results: dict[str, dict[str, str]] = {n: {} for n in names}

    rc, err = run(["madpad.generate", "--method", "landmark", "--pairs", str(d / "pairs.csv"), "--out",
                   str(d / "morphs"), "--no-progress"], cwd=d)
    rows = {r["id"]: r for r in read_csv(d / "morphs" / "manifest.csv")}
    for n in names:
        r = rows.get(n)
        if rc != 0 or r is None:
            results[n]["generate"] = cell(rc, err, root, f"generate {n}")
        else:
            faces = f" (faces in A: {r.get('faces_a')}, used box {r.get('face_a_box')})" if r.get("faces_a") not in (
                None, "", "1") else ""
            results[n]["generate"] = (f"ok{faces}" if r["status"] == "ok"
                                      else f"failed: {error_line(r['error'], root)}")

    if model is not None:
        rc, err = run(["madpad.detect", "score", "--model", str(model), "--pairs", str(d / "dpairs.csv"), "--out",
                       str(d / "scores.csv"), "--no-progress"], cwd=d)
        rows = {r["id"]: r for r in read_csv(d / "scores.csv")}
        for n in names:
            r = rows.get(n)
            results[n]["detect score"] = (cell(rc, err, root, f"detect score {n}") if rc != 0 or r is None else
                                          ("ok" if r.get("status") == "ok" else
                                           f"{r.get('status')}: {error_line(r.get('error', ''), root)}"))

    rc, err = run(["madpad.detect", "tshirt", "--images", str(d / "images.csv"), "--out", str(d / "tshirt.csv"),
                   "--person-detector", "hog", "--face-detector", "dlib_hog", "--no-progress"], cwd=d)
    rows = {r["id"]: r for r in read_csv(d / "tshirt.csv") + read_csv(d / "tshirt.failed.csv")}
    for n in names:
        r = rows.get(n)
        results[n]["detect tshirt"] = (cell(rc, err, root, f"detect tshirt {n}") if rc != 0 or r is None else
                                       (r.get("status", "") + (f": {error_line(r['error'], root)}"
                                                               if r.get("error") else "")))
    cols = ["generate"] + (["detect score"] if model is not None else []) + ["detect tshirt"]
    lines = ["| bad image | " + " | ".join(f"`{c}`" for c in cols) + " |", "|---|" + "---|" * len(cols)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(results[n].get(c, "n/a") for c in cols) + " |")
    return lines


def csv_section(root: Path, good: list[Path], model_cfg: Path | None) -> list[str]:
    """CSV faults x every command that reads that kind of CSV."""
    d = root / "csv_runs"
    d.mkdir()
    ex = REPO / "madpad" / "report" / "examples"
    pad_h = ["id", "score", "label", "species"]
    pad_rows = [[f"b{i}", f"0.{i}", "bona_fide", ""] for i in range(1, 6)] + \
               [[f"a{i}", f"0.{i + 4}", "attack", "print"] for i in range(1, 6)]
    cmp_lines = (ex / "comparisons_example.csv").read_text(encoding="utf-8").splitlines()
    gen_h = ["id", "a", "b"]
    gen_rows = [["m1", str(good[0]), str(good[1])], ["m2", str(good[2]), str(good[3])]]
    sc_h = ["id", "suspect", "live", "label", "species"]
    sc_rows = [["p1", str(good[0]), str(good[1]), "bona_fide", ""], ["p2", str(good[2]), str(good[3]), "attack",
                                                                      "landmark"]]
    ts_h = ["id", "path", "label", "species"]
    ts_rows = [["t1", str(good[0]), "bona_fide", ""], ["t2", str(good[1]), "attack", "tshirt"]]
    outside = root / "outside.png"
    shutil.copy(good[0], outside)

    def variants(fault: str):
        """(command -> file) for this fault; commands it does not apply to are left out."""
        f: dict[str, Path] = {}
        tag = "".join(ch if ch.isalnum() else "_" for ch in fault)
        if fault == "missing column":
            f["report pad"] = write_csv(d / f"{tag}_pad.csv", pad_h[:1] + pad_h[2:], [r[:1] + r[2:] for r in pad_rows])
            (d / f"{tag}_cmp.csv").write_text("\n".join(ln.rsplit(",", 1)[0] for ln in cmp_lines) + "\n")
            f["report vulnerability"] = d / f"{tag}_cmp.csv"
            f["generate"] = write_csv(d / f"{tag}_gen.csv", gen_h[:2], [r[:2] for r in gen_rows])
            f["detect score"] = write_csv(d / f"{tag}_sc.csv", sc_h[:2] + sc_h[3:], [r[:2] + r[3:] for r in sc_rows])
            f["detect train"] = f["detect score"]
            f["detect tshirt"] = write_csv(d / f"{tag}_ts.csv", ts_h[:1] + ts_h[2:], [r[:1] + r[2:] for r in ts_rows])
        elif fault == "duplicate id":
            f["report pad"] = write_csv(d / f"{tag}_pad.csv", pad_h, pad_rows + [pad_rows[0]])
            (d / f"{tag}_cmp.csv").write_text("\n".join(cmp_lines + [cmp_lines[3]]) + "\n")
            f["report vulnerability"] = d / f"{tag}_cmp.csv"
            f["generate"] = write_csv(d / f"{tag}_gen.csv", gen_h, gen_rows + [gen_rows[0]])
            f["detect score"] = write_csv(d / f"{tag}_sc.csv", sc_h, sc_rows + [sc_rows[0]])
            f["detect train"] = f["detect score"]
            f["detect tshirt"] = write_csv(d / f"{tag}_ts.csv", ts_h, ts_rows + [ts_rows[0]])
        elif fault == "escaping path":
            esc = os.path.relpath(outside, d)  # ../outside.png
            f["generate"] = write_csv(d / f"{tag}_gen.csv", gen_h, [["m1", esc, str(good[1])]])
            f["detect score"] = write_csv(d / f"{tag}_sc.csv", sc_h, [["p1", esc, str(good[1]), "bona_fide", ""]])
            f["detect tshirt"] = write_csv(d / f"{tag}_ts.csv", ts_h, [["t1", "../../../../../../etc/passwd",
                                                                       "bona_fide", ""]])
        elif fault in ("BOM", "non-UTF-8 byte", "huge field (200,000 chars)"):
            def mk(name, header, rows):
                p = write_csv(d / f"{name}.csv", header, rows, prefix=b"\xef\xbb\xbf" if fault == "BOM" else b"")
                if fault == "non-UTF-8 byte":
                    lines = p.read_bytes().split(b"\n")
                    lines[2] = lines[2][:1] + b"\xff" + lines[2][1:]
                    p.write_bytes(b"\n".join(lines))
                return p
            big = "x" * 200_000
            hf = fault.startswith("huge")
            f["report pad"] = mk(f"{tag}_pad", pad_h, [[big if hf and i == 2 else r[0], *r[1:]]
                                                     for i, r in enumerate(pad_rows)])
            f["generate"] = mk(f"{tag}_gen", gen_h, [[big if hf and i == 1 else r[0], *r[1:]]
                                                   for i, r in enumerate(gen_rows)])
            f["detect score"] = mk(f"{tag}_sc", sc_h, [[big if hf and i == 1 else r[0], *r[1:]]
                                                     for i, r in enumerate(sc_rows)])
            f["detect tshirt"] = mk(f"{tag}_ts", ts_h, [[big if hf and i == 1 else r[0], *r[1:]]
                                                      for i, r in enumerate(ts_rows)])
            cmp = d / f"{tag}_cmp.csv"
            text = "\n".join(cmp_lines) + "\n"
            data = (b"\xef\xbb\xbf" if fault == "BOM" else b"") + text.encode()
            if fault == "non-UTF-8 byte":
                ls = data.split(b"\n")
                ls[5] = ls[5][:1] + b"\xff" + ls[5][1:]
                data = b"\n".join(ls)
            if hf:
                ls = text.split("\n")
                ls[4] = big + ls[4]
                data = "\n".join(ls).encode()
            cmp.write_bytes(data)
            f["report vulnerability"] = cmp
        elif fault == "NaN / inf score":
            f["report pad"] = write_csv(d / f"{tag}_pad.csv", pad_h, [[r[0], "nan" if i == 3 else r[1], *r[2:]]
                                                                     for i, r in enumerate(pad_rows)])
            ls = list(cmp_lines)
            ls[3] = ls[3].rsplit(",", 1)[0] + ",inf"
            (d / f"{tag}_cmp.csv").write_text("\n".join(ls) + "\n")
            f["report vulnerability"] = d / f"{tag}_cmp.csv"
        elif fault == "single class":
            f["report pad"] = write_csv(d / f"{tag}_pad.csv", pad_h, pad_rows[:5])
            f["detect train"] = write_csv(d / f"{tag}_sc.csv", sc_h, [sc_rows[0], ["p3", str(good[3]), str(good[0]),
                                                                                   "bona_fide", ""]])
        elif fault == "label typo":
            f["report pad"] = write_csv(d / f"{tag}_pad.csv", pad_h, pad_rows[:-1] + [["a5", "0.9", "atack", "print"]])
            f["detect score"] = write_csv(d / f"{tag}_sc.csv", sc_h, sc_rows[:1] + [[*sc_rows[1][:3], "atack",
                                                                                     "landmark"]])
            f["detect train"] = f["detect score"]
            f["detect tshirt"] = write_csv(d / f"{tag}_ts.csv", ts_h, ts_rows[:1] + [["t2", str(good[1]), "atack",
                                                                                       "tshirt"]])
        elif fault == "attack without species":
            f["report pad"] = write_csv(d / f"{tag}_pad.csv", pad_h, pad_rows[:-1] + [["a5", "0.9", "attack", ""]])
            f["detect score"] = write_csv(d / f"{tag}_sc.csv", sc_h, sc_rows[:1] + [[*sc_rows[1][:3], "attack", ""]])
            f["detect train"] = f["detect score"]
            f["detect tshirt"] = write_csv(d / f"{tag}_ts.csv", ts_h, ts_rows[:1] + [["t2", str(good[1]), "attack",
                                                                                       ""]])
        return f

    faults = ["missing column", "duplicate id", "escaping path", "BOM", "non-UTF-8 byte",
              "huge field (200,000 chars)", "NaN / inf score", "single class", "label typo", "attack without species"]
    cols = ["report pad", "report vulnerability", "generate", "detect score", "detect train", "detect tshirt"]
    lines = ["| CSV fault | " + " | ".join(f"`{c}`" for c in cols) + " |", "|---|" + "---|" * len(cols)]
    for fault in faults:
        files = variants(fault)
        cells = []
        for c in cols:
            if c not in files or (c in ("detect score", "detect train") and model_cfg is None):
                cells.append("n/a")
                continue
            f = files[c]
            o = d / "out" / f"{''.join(ch if ch.isalnum() else '_' for ch in fault)}_{c.replace(' ', '_')}"
            if c == "report pad":
                cmd = ["madpad.report", "pad", "--scores", str(f), "--out", str(o), "--bootstrap", "50"]
            elif c == "report vulnerability":
                cmd = ["madpad.report", "vulnerability", "--scores", str(f), "--out", str(o)]
            elif c == "generate":
                cmd = ["madpad.generate", "--method", "landmark", "--pairs", str(f), "--out", str(o), "--no-progress"]
            elif c == "detect score":
                cmd = ["madpad.detect", "score", "--model", str(model_cfg), "--pairs", str(f), "--out",
                       str(o) + ".csv", "--no-progress"]
            elif c == "detect train":
                cmd = ["madpad.detect", "train", "--config", str(REPO / "madpad/configs/detect/tiny_foundation.yaml"),
                       "--set", f"data.train={f}", "--set", f"out={o}", "--set", "params.epochs=1"]
            else:
                cmd = ["madpad.detect", "tshirt", "--images", str(f), "--out", str(o) + ".csv", "--person-detector",
                       "hog", "--face-detector", "dlib_hog", "--no-progress"]
            rc, err = run(cmd, cwd=d)
            text = cell(rc, err, root, f"{fault} x {c}")
            if rc == 0 and c == "generate":
                rows = read_csv(o / "manifest.csv")
                text += " (" + ", ".join(f"{r['id'][:12]}: {r['status']}" + (f" {error_line(r['error'], root)}"
                                                                             if r['error'] else "")
                                         for r in rows) + ")"
            if rc == 0 and c == "detect tshirt":
                rows = read_csv(Path(str(o) + ".csv")) + read_csv(Path(str(o) + ".failed.csv"))
                text += " (" + ", ".join(f"{r['id'][:12]}: {r['status']}" for r in rows) + ")"
            cells.append(text)
        lines.append(f"| {fault} | " + " | ".join(cells) + " |")
    return lines


def output_section(root: Path, good: list[Path], model: Path | None, morphs_manifest: Path) -> tuple[list[str], str]:
    d = root / "out_runs"
    d.mkdir()
    a_file = d / "a_file.txt"
    a_file.write_text("a regular file\n")
    a_dir = d / "a_dir"
    a_dir.mkdir()
    if os.geteuid() == 0:
        # root writes into chmod-0555 folders; procfs takes no new files at all
        read_only = Path("/proc/madpad-bad-inputs")
        ro_note = ("running as root, where `chmod a-w` does not stop writes, so the read-only location is a folder "
                   "under `/proc` (procfs: no file or folder can be created there)")
    else:
        read_only = d / "read_only"
        read_only.mkdir()
        read_only.chmod(0o555)
        ro_note = "the read-only location is a folder with mode 0555 (not root)"
    ex = REPO / "madpad" / "report" / "examples"
    pad = ex / "pad_scores_example.csv"
    cmp = ex / "comparisons_example.csv"
    pairs = write_csv(d / "pairs.csv", ["id", "a", "b"], [["m1", str(good[0]), str(good[1])]])
    probes = Path(__import__("madpad.data.sample", fromlist=["x"]).sample_root()) / "images.csv"
    dpairs = write_csv(d / "dpairs.csv", ["id", "suspect", "live", "label", "species"],
                       [["p1", str(good[0]), str(good[1]), "bona_fide", ""]])
    imgs = write_csv(d / "images.csv", ["id", "path", "label", "species"], [["t1", str(good[0]), "bona_fide", ""]])

    # entry point -> (kind of output, command builder)
    def commands(out: Path) -> dict[str, tuple[str, list[str]]]:
        return {
            "generate": ("folder", ["madpad.generate", "--method", "landmark", "--pairs", str(pairs), "--out", str(out),
                                    "--no-progress"]),
            "generate compare": ("file", ["madpad.generate", "compare", "--morphs", str(morphs_manifest), "--probes",
                                          str(probes), "--systems", "dlib", "--out", str(out), "--no-progress"]),
            "detect score": ("file", ["madpad.detect", "score", "--model", str(model or d / "no_model"), "--pairs",
                                      str(dpairs), "--out", str(out), "--no-progress"]),
            "detect train": ("folder", ["madpad.detect", "train", "--config",
                                        str(REPO / "madpad/configs/detect/tiny_foundation.yaml"), "--set",
                                        f"data.train={dpairs}", "--set", f"out={out}", "--set", "params.epochs=1"]),
            "detect tshirt": ("file", ["madpad.detect", "tshirt", "--images", str(imgs), "--out", str(out),
                                       "--person-detector", "hog", "--face-detector", "dlib_hog", "--no-progress"]),
            "report pad": ("folder", ["madpad.report", "pad", "--scores", str(pad), "--out", str(out)]),
            "report vulnerability": ("folder", ["madpad.report", "vulnerability", "--scores", str(cmp), "--out",
                                                str(out)]),
            "report compare": ("folder", ["madpad.report", "compare", "--scores", str(pad), str(pad), "--out",
                                          str(out)]),
            "pipeline run": ("folder", ["madpad.pipeline", "run", str(REPO / "pipelines" / "example_small.yaml"), "--workdir", str(out),
                                        "--no-progress"]),
            "demo": ("folder", ["madpad.demo", "--out", str(out), "--no-progress"]),
            "weights verify": ("file", ["madpad.weights", "verify", str(cmp), "--no-hash", "--json", str(out)]),
        }

    faults = {
        "read-only location": lambda kind: read_only / ("out.csv" if kind == "file" else "out"),
        "existing file / folder (file where a folder is expected, folder where a file is)":
            lambda kind: a_dir if kind == "file" else a_file,
        "path under a regular file": lambda kind: a_file / ("out.csv" if kind == "file" else "out"),
    }
    names = list(commands(d))
    lines = ["| output fault | " + " | ".join(f"`{n}`" for n in names) + " |", "|---|" + "---|" * len(names)]
    for fault, where in faults.items():
        cells = []
        for n in names:
            kind, _ = commands(d)[n]
            out = where(kind)
            _, cmd = commands(out)[n]
            t0 = time.perf_counter()
            rc, err = run(cmd, cwd=d, timeout=120)
            cells.append(cell(rc, err, root, f"{fault} x {n}") + f" ({time.perf_counter() - t0:.1f} s)")
        lines.append(f"| {fault} | " + " | ".join(cells) + " |")
    return lines, ro_note


def checkpoint_section(root: Path, model: Path | None, dpairs: Path, imgs: Path) -> list[str]:
    d = root / "ck_runs"
    d.mkdir()
    rows = []
    if model is not None:
        bad = d / "truncated_safetensors"
        shutil.copytree(model, bad)
        w = bad / "weights.safetensors"
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
        rc, err = run(["madpad.detect", "score", "--model", str(bad), "--pairs", str(dpairs), "--out",
                       str(d / "s1.csv"), "--no-progress"], cwd=d)
        rows.append(("truncated `weights.safetensors`", "detect score", cell(rc, err, root, "ck safetensors")))
        rc, err = run(["madpad.weights", "verify", str(w), "--no-hash"], cwd=d)
        rows.append(("truncated `weights.safetensors`", "weights verify", cell(rc, err, root, "ck verify")))
        bad2 = d / "truncated_json"
        shutil.copytree(model, bad2)
        j = bad2 / "detector.json"
        j.write_bytes(j.read_bytes()[:40] + b"\xff")
        rc, err = run(["madpad.detect", "score", "--model", str(bad2), "--pairs", str(dpairs), "--out",
                       str(d / "s2.csv"), "--no-progress"], cwd=d)
        rows.append(("truncated `detector.json` (+ a non-UTF-8 byte)", "detect score", cell(rc, err, root, "ck json")))
    from madpad.mad.base import save_npz, write_header

    bad3 = d / "truncated_npz"
    bad3.mkdir()
    write_header(bad3, detector="embedding_classifier", config={}, extra={"model": "model.npz"})
    save_npz(bad3 / "model.npz", {"coef": np.arange(100.0)})
    m = bad3 / "model.npz"
    m.write_bytes(m.read_bytes()[:200])
    rc, err = run(["madpad.detect", "score", "--model", str(bad3), "--pairs", str(dpairs), "--out",
                   str(d / "s3.csv"), "--no-progress"], cwd=d)
    rows.append(("truncated `model.npz`", "detect score", cell(rc, err, root, "ck npz")))
    sc = d / "scorer.npz"
    np.savez(sc, coef=np.arange(100.0))
    sc.write_bytes(sc.read_bytes()[:100])
    rc, err = run(["madpad.detect", "tshirt", "--images", str(imgs), "--out", str(d / "t.csv"), "--scorer", str(sc),
                   "--person-detector", "hog", "--face-detector", "dlib_hog", "--no-progress"], cwd=d)
    rows.append(("truncated learned T-shirt scorer `.npz`", "detect tshirt --scorer", cell(rc, err, root, "ck scorer")))
    lines = ["| corrupt model file | entry point | outcome |", "|---|---|---|"]
    lines += [f"| {a} | `{b}` | {c} |" for a, b, c in rows]
    return lines


def train_tiny(root: Path) -> Path | None:
    """A tiny random-init open_clip detector (seconds) for the detect score columns."""
    try:
        import open_clip  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return None
    from madpad.mad.synthetic import write_synthetic_pairs

    d = root / "tiny"
    train = write_synthetic_pairs(d, 16, seed=1, name="train.csv")
    rc, err = run(["madpad.detect", "train", "--config", str(REPO / "madpad/configs/detect/tiny_foundation.yaml"),
                   "--set", f"data.train={train}", "--set", f"out={d / 'model'}", "--set", "params.epochs=1"], cwd=d)
    if rc != 0:
        print(err, file=sys.stderr)
        return None
    return d / "model"


# --------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", type=Path, default=None, help="build the corpus in this folder and keep it")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="madpad-bad-inputs-")) if args.keep is None else args.keep
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        from madpad.data.sample import sample_root

        good_dir = root / "good"
        good_dir.mkdir(exist_ok=True)
        good = []
        for p in sorted((sample_root() / "neutral").glob("*.jpg"))[:4]:
            shutil.copy(p, good_dir / p.name)
            good.append(good_dir / p.name)
        print("building the corpus ...", file=sys.stderr)
        images = build_images(root / "images")
        model = train_tiny(root)
        print("images ...", file=sys.stderr)
        img_lines = image_section(root, images, good, model)
        print("CSV faults ...", file=sys.stderr)
        csv_lines = csv_section(root, good, model)
        print("output faults ...", file=sys.stderr)
        out_lines, ro_note = output_section(root, good, model, root / "img_runs" / "morphs" / "manifest.csv")
        print("checkpoints ...", file=sys.stderr)
        ck_lines = checkpoint_section(root, model, root / "out_runs" / "dpairs.csv", root / "out_runs" / "images.csv")
    finally:
        if args.keep is None:
            for p in root.rglob("*"):
                if p.is_dir():
                    p.chmod(0o755)
            shutil.rmtree(root, ignore_errors=True)
    minutes = (time.perf_counter() - t0) / 60
    verdict = (f"**{len(CRASHES)} crash(es)** (an unhandled exception reported on stderr): " + "; ".join(CRASHES)
               if CRASHES else "No command crashed: no stderr holds an unhandled-exception report.")
    page = [
        "# Bad inputs through every entry point",
        "",
        "Produced by `python benchmarks/bad_inputs.py` (then `python benchmarks/make_results.py`), "
        f"{minutes:.1f} min on the development machine. The script builds every bad input itself from the "
        "bundled FRLL sample, runs each through each command that takes it as a subprocess, and records the "
        "outcome: `exit N: <the error line of stderr>` for a command, or the per-item `status` a batch job "
        "wrote (its manifest / scores file) when the job ran (exit 0). The script looks for Python's "
        "unhandled-exception report in every stderr and would mark the cell **CRASH**. `<corpus>` is the temporary corpus folder. "
        "The CLI contract: bad input ends with one line naming the file, row or field and exit 2; batch jobs "
        "record per-item failures and carry on.",
        "",
        verdict,
        "",
        "## Images",
        "",
        "One batch per command with one item per bad image (`generate`: pair `(bad, good)`, landmark method, "
        "default `--max-side 2048`; `detect score`: suspect = bad image, live = a good one, a tiny "
        "random-init open_clip detector; `detect tshirt`: HOG person + dlib face detector). `huge` is "
        "6000x6000 (36 Mpixel), `decompression_bomb` a 20000x20000 PNG of 50 kB that Pillow refuses. "
        "`exif_rotated` has turned pixels and a correct orientation tag; `exif_contradicting` upright pixels "
        "and a tag that turns them.",
        "",
        *img_lines,
        "",
        "## CSV faults",
        "",
        "Each fault in the CSV that each command reads (`report pad`: scores; `report vulnerability`: "
        "comparison scores; `generate`: pairs; `detect score`/`detect train`: suspect/live pairs; `detect "
        "tshirt`: image list). `n/a`: the fault does not apply to that file kind. `BOM` is a valid file with a "
        "UTF-8 byte-order mark (must be accepted). `escaping path`: a relative path that leaves the CSV's "
        "folder (`../outside.png`, allowed for CLI path lists: they are the user's own paths) and, for "
        "`detect tshirt`, `../../../../../../etc/passwd` (not an image: a per-item failure).",
        "",
        *csv_lines,
        "",
        "## Output locations",
        "",
        f"Valid inputs, bad output location; the time shows the check comes before the work. Note: {ro_note}.",
        "`existing file / folder`: an existing regular file where the command writes a folder, an existing "
        "folder where it writes a file.",
        "",
        *out_lines,
        "",
        "## Corrupt model files",
        "",
        *ck_lines,
        "",
    ]
    OUT_MD.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(page)
    if "traceback" in text.lower():  # the CRASH marks replace it; a cell must never show one
        raise SystemExit("internal error: the results page would show an exception report")
    OUT_MD.write_text(text, encoding="utf-8")
    print(f"wrote {OUT_MD} ({minutes:.1f} min)" + (f"; {len(CRASHES)} crash(es)" if CRASHES else ""),
          file=sys.stderr)
    return 1 if CRASHES else 0


if __name__ == "__main__":
    sys.exit(main())
