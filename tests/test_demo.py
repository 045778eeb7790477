"""The demo end to end on a reduced configuration, its resume, and its report in a real browser.

One run (module fixture): 8 subjects of the bundled sample (an image manifest pointing into
the sample), ``--pairs 4``, steps generate, vulnerability, detect and tshirt (2 wearers).
The segmentation step is left out here (it is the pipeline's own test's business and takes
minutes); the full demo run is recorded in benchmarks/results/demo.md.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dlib")
pytest.importorskip("mediapipe")

# 2 female + 2 male subjects on each side of the seed-0 train/test split: one same-gender pair per
# gender and split, so --pairs 4 gives 2 train and 2 test morphs per method
SUBJECTS = ("001", "007", "011", "020", "004", "017", "024", "036")
STEPS = "generate,vulnerability,detect,tshirt"


def _subset_manifest(path: Path) -> Path:
    from madpad.data.sample import sample_manifest_path

    with open(sample_manifest_path(), newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = [r for r in reader if r["subject"] in SUBJECTS]
        cols = reader.fieldnames
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return path


def _args(out: Path, manifest: Path) -> list[str]:
    from madpad.data.sample import sample_root

    return ["--out", str(out), "--data", str(manifest), "--root", str(sample_root()), "--pairs", "4",
            "--steps", STEPS, "--tshirt-wearers", "2", "--bootstrap", "20", "--no-progress"]


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _run(argv) -> tuple[int, str, str]:
    from madpad.demo import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("demo")
    manifest = _subset_manifest(base / "images.csv")
    out = base / "out"
    t0 = time.perf_counter()
    rc, stdout, stderr = _run(_args(out, manifest))
    return {"out": out, "manifest": manifest, "rc": rc, "stdout": stdout, "stderr": stderr,
            "seconds": time.perf_counter() - t0}


def test_demo_writes_report_with_valid_figures(demo_run):
    out = demo_run["out"]
    assert demo_run["rc"] == 0, demo_run["stderr"][-3000:]
    # prints the report path at the end (stdout: just the path)
    assert demo_run["stdout"].strip().splitlines()[-1] == str((out / "report.html").resolve())
    # a numbered step line per stage
    for i, step in enumerate(STEPS.split(","), start=1):
        assert f"[{i}/4] {step}:" in demo_run["stderr"]
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert {"report", "madpad_version", "data", "options", "steps", "results", "figures", "attribution",
            "machine", "command"} <= set(doc)
    assert doc["data"]["subjects"] == 8 and doc["data"]["frll"] is True
    assert {k: v["status"] for k, v in doc["steps"].items()} == {
        "generate": "ok", "vulnerability": "ok", "detect": "ok", "tshirt": "ok", "segmentation": "not run"}
    assert "Face Research Lab London Set" in doc["attribution"]["frll"]

    # 1. generate: 4 pairs (2 per split), both landmark methods, images on disk
    gen = doc["results"]["generate"]
    assert gen["pairs"] == 4 and gen["pairs_per_split"] == {"train": 2, "test": 2}
    for method in ("landmark", "landmark_spliced"):
        m = gen["methods"][method]
        assert m["made"] == 4 and m["failed"] == 0
        with open(out / m["manifest"], newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
        assert all((out / m["manifest"]).parent.joinpath(r["path"]).is_file() for r in rows)
        # same-gender pairs: both contributors of every morph share a gender
        gender = {s: ("f" if s in ("001", "007", "011", "020") else "m") for s in SUBJECTS}
        assert all(gender[r["subject_a"]] == gender[r["subject_b"]] for r in rows)

    # 2. vulnerability: rates in [0, 1], consistent definitions
    for method, v in doc["results"]["vulnerability"]["methods"].items():
        assert v["status"] == "ok" and v["n_morphs"] == 4
        assert v["n_genuine"] == 8 and v["n_impostor"] == 8 * 7
        t01, t1 = v["at_fmr"]["0.001"], v["at_fmr"]["0.01"]
        assert t01["threshold"] >= t1["threshold"]  # a lower FMR target needs a stricter threshold
        for a in (t01, t1):
            assert 0.0 <= a["prodavg_mmpmr"] <= a["mmpmr"] <= 1.0
            assert a["fmr"] <= 0.01 + 1e-12
            assert a["rmmr"] == pytest.approx(1.0 + a["mmpmr"] - a["tmr"])
        assert (out / v["comparisons"]).is_file()

    # 3. detect: subject-disjoint pairs, every detector scored
    det = doc["results"]["detect"]
    assert det["counts"] == {"train": {"bona_fide": 8, "attack": 8}, "test": {"bona_fide": 8, "attack": 8}}
    assert det["dropped_morphs"] == 0
    assert set(det["detectors"]) == {"dlib_distance", "dlib_diff_logreg", "dlib_diff_svm"}
    for d in det["detectors"].values():
        assert d["status"] == "ok", d
        assert 0.0 <= d["d_eer"] <= 1.0
        assert d["n_bona_fide"] + d["n_failed"] == 8
        assert all(0.0 <= b <= 1.0 for b in d["bpcer_at_apcer"].values())
        assert set(d["species"]) <= {"landmark", "landmark_spliced"}
        with open(out / d["scores"], newline="", encoding="utf-8") as fh:
            assert set(csv.DictReader(fh).fieldnames) >= {"id", "score", "label", "species"}
    # the untrained dlib distance separates landmark morphs from bona fide pairs better than chance
    assert det["detectors"]["dlib_distance"]["d_eer"] < 0.5
    train_rows, test_rows = (_read_csv(out / det["pairs_dir"] / f"pairs_{s}.csv") for s in ("train", "test"))
    train_subjects = {s for r in train_rows for s in r["subjects"].split(";")}
    assert not {r["id"] for r in train_rows} & {r["id"] for r in test_rows}
    assert not train_subjects & {s for r in test_rows for s in r["subjects"].split(";")}

    # 4. tshirt: 2 wearers x (4 attack species + 2 bona fide captures)
    ts = doc["results"]["tshirt"]
    assert ts["images"] == 12 and ts["wearers"] == 2
    d = ts["detectors"]["pose+dlib_hog"]
    assert d["status"] == "ok" and d["n_bona_fide"] == 4 and d["n_attack"] == 8
    assert len(d["species"]) == 4 and 0.0 <= d["d_eer"] <= 1.0

    # the HTML is self-contained: embedded PNG figures and tables, no external resources
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') >= 4
    assert "<table>" in html and "http://" not in html.replace("https://creativecommons.org", "")
    assert "Face Research Lab London Set" in html


def test_demo_resume_reuses_finished_steps(demo_run):
    out = demo_run["out"]
    before = {s: json.loads((out / s / "status.json").read_text())["started"] for s in STEPS.split(",")}
    t0 = time.perf_counter()
    rc, _, stderr = _run(_args(out, demo_run["manifest"]))
    assert rc == 0, stderr[-2000:]
    assert stderr.count("done before, reusing") == 4
    after = {s: json.loads((out / s / "status.json").read_text())["started"] for s in STEPS.split(",")}
    assert after == before
    assert time.perf_counter() - t0 < demo_run["seconds"] / 2
    # a step whose options changed runs again, and only that one
    rc, _, stderr = _run(_args(out, demo_run["manifest"]) + ["--steps", "tshirt", "--tshirt-wearers", "1"])
    assert rc == 0, stderr[-2000:]
    assert "done before" not in stderr
    doc = json.loads((out / "report.json").read_text())
    assert doc["results"]["tshirt"]["wearers"] == 1
    assert doc["steps"]["generate"]["status"] == "ok"  # finished steps still shown


def test_step_that_needs_morphs_fails_clearly_without_them(tmp_path, demo_run):
    rc, _, stderr = _run(["--out", str(tmp_path / "empty"), "--data", str(demo_run["manifest"]),
                          "--root", str(Path(demo_run["manifest"]).parent), "--steps", "vulnerability"])
    # the manifest's relative paths do not resolve under that root: a clear input error (exit 2)
    assert rc == 2 and "error:" in stderr
    from madpad.data.sample import sample_root

    rc, _, stderr = _run(["--out", str(tmp_path / "empty"), "--data", str(demo_run["manifest"]),
                          "--root", str(sample_root()), "--steps", "vulnerability"])
    assert rc == 2
    assert "needs the morphs of step 'generate'" in stderr and "add generate to --steps" in stderr


# --------------------------------------------------------------------------- headless Chromium
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        p = shutil.which(name)
        if p:
            return p
    return None


class _DomScan(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs: list[dict] = []
        self.tables = 0
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs))
        elif tag == "table":
            self.tables += 1

    def handle_data(self, data):
        self.text.append(data)


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def test_report_renders_in_headless_chromium(demo_run, tmp_path):
    exe = _chromium()
    if exe is None:
        reason = "chromium not installed (Debian: apt-get install chromium; .ci/run installs it)"
        if os.environ.get("MADPAD_REQUIRE_SHARED", "") not in ("", "0"):
            pytest.fail(reason + "; MADPAD_REQUIRE_SHARED is set, so this is a failure", pytrace=False)
        pytest.skip(reason)
    from PIL import Image

    report = (demo_run["out"] / "report.html").resolve()
    flags = CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([exe, *flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    scan = _DomScan()
    scan.feed(dom.stdout)
    text = " ".join(scan.text)
    assert "madpad demo report" in text and "D-EER" in text and "MMPMR" in text
    assert scan.tables >= 6
    dets = [im for im in scan.imgs if im.get("alt", "").startswith("DET ")]
    assert len(dets) == 2  # D-MAD and T-shirt PAD
    for im in dets + [im for im in scan.imgs if im.get("alt", "").startswith("score histogram")]:
        src = im["src"]
        assert src.startswith("data:image/png;base64,")
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(io.BytesIO(raw)) as pic:
            assert pic.format == "PNG" and min(pic.size) > 100
    # thumbnails of morphs and attack images are real decodable images too
    thumbs = [im for im in scan.imgs if im.get("src", "").startswith("data:image/jpeg;base64,")]
    assert len(thumbs) >= 8
    # the screenshot shows a page, not a blank canvas
    shot = tmp_path / "shot.png"
    r = subprocess.run([exe, *flags, "--window-size=1200,2400", f"--screenshot={shot}", report.as_uri()],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    with Image.open(shot) as pic:
        arr = np.asarray(pic.convert("L"), dtype=np.float64)
    assert arr.shape == (2400, 1200) and arr.std() > 10
