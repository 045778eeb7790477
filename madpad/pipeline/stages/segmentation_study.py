"""Stage functions of ``pipelines/segmentation_study.yaml``: what does replacing the background
of enrolment photos do to face recognition, image quality and morphing attack detection?

Stages (each ``fn(ctx)``, see the stage contract in ``docs/CONTRACTS.md``):

1. :func:`select_images` - one *reference* (enrolment) and one *probe* image per subject
   (FRLL: neutral and smiling), optionally resized, ``images.csv``.
2. :func:`detect_faces` - face box + 68 landmarks of every original image (per item).
3. :func:`segment` - every image with every segmenter (per item): matte PNG + image with the
   background replaced (white by default).
4. :func:`make_morphs` - landmark morphs (``madpad.morph``) of same-gender subject pairs, from
   the original reference images: the attack set.
5. :func:`embed` - face embeddings of originals, segmented images and morphs for each FR model.
6. :func:`recognition_effect` - FNMR at FMR 0.1 % / 1 %, EER, genuine and impostor score shifts,
   for the conditions original-vs-original, segmented-vs-original, segmented-vs-segmented.
7. :func:`quality_effect` - ISO/IEC 29794-5-style measures (``madpad.quality``) per image.
8. :func:`detection_effect` - D-MAD thresholds fixed at APCER 20/10/1 % on original images,
   BPCER measured on segmented bona fide images.
9. :func:`report` - one self-contained HTML report.

Conventions: FR scores are cosine similarities (higher = same person; match when
``score >= t``). MAD scores: higher = more likely attack; attack when ``score >= t``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from madpad.pipeline.stages._common import (
    as_list,
    component,
    failure_text,
    finite_mean,
    is_failure,
    log,
    read_csv,
    run_map,
    spec_hash,
    write_csv,
)

ORIGINAL = "original"
IMAGE_COLUMNS = ["id", "file", "subject", "role", "gender", "source_path", "width", "height", "variation"]


# =========================================================================== 1. images
def _records_from_input(data: Path, *, manifest: str | None):
    """ImageRecords: from ``manifest`` (paths relative to ``data``) when given, else from the
    FRLL-layout folder ``data`` (or ``data`` itself when it is a manifest file)."""
    from madpad.data import load_images
    from madpad.data.frll import frll_images

    if manifest:
        return list(load_images(manifest, root=data))
    if data.is_dir():
        return list(frll_images(data))
    return list(load_images(data))


def pick_reference_and_probe(records) -> dict[str, tuple[Any, Any]]:
    """Per subject: (reference, probe) bona fide images. ``capture`` ``enrolment``/``probe``
    when present, otherwise the first two images of the subject in id order."""
    by_subject: dict[str, list] = {}
    for r in records:
        if getattr(r, "label", "bona_fide") != "bona_fide" or len(r.subjects) != 1:
            continue
        by_subject.setdefault(r.subject, []).append(r)
    out = {}
    for subj, recs in sorted(by_subject.items()):
        recs = sorted(recs, key=lambda r: r.id)
        ref = next((r for r in recs if r.capture == "enrolment"), None)
        probe = next((r for r in recs if r.capture == "probe"), None)
        if ref is None or probe is None:
            if len(recs) < 2:
                continue
            ref, probe = recs[0], recs[1]
        out[subj] = (ref, probe)
    return out


def select_images(ctx) -> dict:
    """Pick subjects and copy (or resize) their reference and probe images.

    inputs: ``data`` (FRLL folder, or a manifest's root). params: ``manifest`` (optional),
    ``n_subjects`` (None = all), ``seed``, ``max_side`` (resize longer side; None = copy),
    ``probe_variation`` (0 = probe files as they are; > 0 = each probe becomes a simulated live
    capture with :func:`madpad.mad.pairs.vary_live_capture` at this strength, seeded per image).
    outputs: ``images`` (folder), ``table`` (images.csv with IMAGE_COLUMNS).
    """
    from madpad.io import read_image, write_image
    from madpad.segment.base import downscale

    p = ctx.params
    data = Path(ctx.inputs["data"])
    pairs = pick_reference_and_probe(_records_from_input(data, manifest=p.get("manifest") or None))
    if len(pairs) < 2:
        raise ValueError(f"{data}: need at least 2 subjects with two bona fide images each; found {len(pairs)}")
    subjects = sorted(pairs)
    n = p.get("n_subjects")
    if n:
        rng = np.random.default_rng(int(p.get("seed", 0)))
        subjects = sorted(rng.choice(subjects, size=min(int(n), len(subjects)), replace=False).tolist())
    out_dir = Path(ctx.outputs["images"])
    out_dir.mkdir(parents=True, exist_ok=True)
    max_side = p.get("max_side")
    variation = float(p.get("probe_variation") or 0.0)
    if variation < 0:
        raise ValueError(f"probe_variation must be >= 0 (0 = the probe files as they are); got {variation}")
    rows = []
    for subj in subjects:
        for role, rec in zip(("reference", "probe"), pairs[subj]):
            src = Path(rec.path)
            img = read_image(src)
            if max_side and max(img.shape[:2]) > int(max_side):
                img, _ = downscale(img, int(max_side))
            if role == "probe" and variation > 0:
                # a simulated live capture: crop/shift/rotation, colour, blur, noise, JPEG (madpad.mad.pairs)
                from madpad.mad.pairs import vary_live_capture

                img = vary_live_capture(img, seed=_item_seed(p.get("seed", 0), rec.id), strength=variation)
                name = f"{rec.id}.png"
                write_image(out_dir / name, img)
            elif img.shape[:2] != read_image_shape(src):
                name = f"{rec.id}.jpg"
                write_image(out_dir / name, img, quality=95)
            else:
                name = f"{rec.id}{src.suffix.lower()}"
                shutil.copyfile(src, out_dir / name)
            rows.append({"id": rec.id, "file": name, "subject": subj, "role": role,
                         "gender": (rec.extra or {}).get("gender", ""), "source_path": str(src),
                         "width": img.shape[1], "height": img.shape[0],
                         "variation": variation if role == "probe" else 0.0})
    write_csv(ctx.outputs["table"], rows, IMAGE_COLUMNS)
    log(ctx, "selected %d subjects, %d images", len(subjects), len(rows))
    return {"subjects": len(subjects), "images": len(rows)}


def read_image_shape(path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
    return h, w


def _item_seed(seed, item_id: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{seed}\x1f{item_id}".encode()).digest()[:8], "little")


def _images(ctx) -> tuple[Path, list[dict]]:
    return Path(ctx.inputs["images"]), read_csv(ctx.inputs["table"])


# =========================================================================== 2. faces
def _face_item(item: dict) -> dict:
    """Worker: face box + 68 landmarks of one image."""
    from madpad.face import analyze_face

    a = analyze_face(item["path"], detector=item["detector"], landmarker="dlib68")
    out = {"id": item["id"], "status": a.status, "error": a.error}
    if a.status == "ok":
        out["box"] = [float(v) for v in a.detection.box]
        out["landmarks"] = np.round(np.asarray(a.landmarks, float), 2).tolist()
    return out


def _detector_spec(params: dict) -> Any:
    det = params.get("detector", "dlib_hog")
    if isinstance(det, str):
        return {"name": det, "upsample": int(params.get("upsample", 0)), "max_side": params.get("detect_max_side", 800)} \
            if det == "dlib_hog" else det
    return det


def detect_faces(ctx) -> dict:
    """Face box and 68 landmarks of each original image. output ``faces`` (JSON id -> entry)."""
    from madpad.io import atomic_write_json

    folder, rows = _images(ctx)
    det = _detector_spec(ctx.params)
    items = [{"id": r["id"], "path": str(folder / r["file"]), "detector": det} for r in rows]
    results = run_map(ctx, _face_item, items, desc="faces")
    faces = {}
    for it, res in zip(items, results):
        faces[it["id"]] = ({"id": it["id"], "status": "failed", "error": failure_text(res)}
                           if is_failure(res) else res)
    atomic_write_json(ctx.outputs["faces"], faces)
    bad = [k for k, v in faces.items() if v["status"] != "ok"]
    log(ctx, "faces: %d ok, %d without a usable face %s", len(faces) - len(bad), len(bad), bad[:10])
    return {"ok": len(faces) - len(bad), "failed": len(bad)}


def _load_faces(path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


# =========================================================================== 3. segment
def _segment_item(item: dict) -> dict:
    """Worker: segment one image with one segmenter; write matte PNG + composite JPEG to the
    item's scratch paths (in the stage's cache dir, so a resumed run finds them)."""
    from madpad.io import read_image, write_image
    from madpad.segment import get_segmenter, replace_background

    t0 = time.perf_counter()
    row = {"id": item["id"], "segmenter": item["label"], "status": "ok", "error": "", "seconds": ""}
    try:
        seg = component("segmenter", [item["name"], item["params"]],
                        lambda: get_segmenter(item["name"], **item["params"]))
        img = read_image(item["path"])
        face = item.get("face")
        if getattr(seg, "needs_face", False) and face is None:
            raise ValueError(f"no face hint for {item['id']} (face detection failed on the original)")
        matte = seg.segment(img, face=face)
        row["seconds"] = round(time.perf_counter() - t0, 3)
        m8 = np.rint(matte * 255).astype(np.uint8)
        write_image(item["matte_out"], np.repeat(m8[..., None], 3, axis=2))
        write_image(item["image_out"], replace_background(img, m8, background=item["background"]), quality=95)
        row["foreground_share"] = round(float(matte.mean()), 4)
    except Exception as exc:  # noqa: BLE001 - per-item failure: recorded, the stage carries on
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    return row


def _scratch(ctx, *parts: str) -> Path:
    """A folder for per-item files that must survive an interrupted run (the stage cache dir)."""
    base = Path(ctx.cache_dir) if getattr(ctx, "cache_dir", None) else Path(ctx.outputs[next(iter(ctx.outputs))]).parent
    d = base.joinpath("files", *parts)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _publish_file(src: str | Path, dst: Path) -> bool:
    src = Path(src)
    if not src.is_file():
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return True


def _available_segmenters(specs, *, model_dir, skip_unavailable: bool):
    """Build each segmenter once to check its configuration (cheap: no model is loaded);
    missing model files / packages are skipped with a note, or raised."""
    from madpad.errors import MissingDependencyError
    from madpad.segment import ModelFileNotFoundError, get_segmenter

    keep, notes = [], []
    for label, name, params in specs:
        if name.startswith("rembg") and model_dir and "model_dir" not in params:
            params = {**params, "model_dir": str(model_dir)}
        try:
            seg = get_segmenter(name, **params)
            if hasattr(seg, "check"):
                seg.check()
        except (ModelFileNotFoundError, MissingDependencyError) as exc:
            if not skip_unavailable:
                raise
            notes.append(f"segmenter {label!r} skipped (not available): {exc}")
            continue
        keep.append((label, name, params))
    return keep, notes


def segment(ctx) -> dict:
    """Segment every image with every configured segmenter.

    params: ``segmenters`` (names, ``rembg:<model>`` or ``{name, label, **params}``),
    ``background`` ("white", "icao_grey", "blur" or [r, g, b]), ``model_dir`` (rembg model
    folder; default ``$U2NET_HOME``). outputs: ``segmented`` folder
    (``<label>/<id>.jpg`` composites, ``<label>/mattes/<id>.png``), ``table`` segmented.csv.
    """
    from madpad.segment import segmenter_spec

    p = ctx.params
    folder, rows = _images(ctx)
    faces = _load_faces(ctx.inputs["faces"])
    out = Path(ctx.outputs["segmented"])
    background = p.get("background", "white")
    if isinstance(background, list):
        background = tuple(background)
    specs = [segmenter_spec(s) for s in as_list(p.get("segmenters"))]
    if not specs:
        raise ValueError("params.segmenters is empty: name at least one segmenter")
    specs, notes = _available_segmenters(specs, model_dir=p.get("model_dir") or None,
                                         skip_unavailable=bool(p.get("skip_unavailable", True)))
    for n_ in notes:
        log(ctx, "%s", n_)
    if not specs:
        raise ValueError("no segmenter is available: " + "; ".join(notes))
    labels = [s[0] for s in specs]
    if len(set(labels)) != len(labels) or ORIGINAL in labels:
        raise ValueError(f"segmenter labels must be unique and not {ORIGINAL!r}; got {labels}")
    items = []
    for label, name, params in specs:
        scratch = _scratch(ctx, f"{label}-{spec_hash([name, params, background])}")
        for r in rows:
            f = faces.get(r["id"], {})
            items.append({
                "id": r["id"], "label": label, "name": name, "params": params,
                "path": str(folder / r["file"]),
                "face": {"box": f["box"], "landmarks": f["landmarks"]} if f.get("status") == "ok" else None,
                "matte_out": str(scratch / f"{r['id']}.png"),
                "image_out": str(scratch / f"{r['id']}.jpg"),
                "background": list(background) if isinstance(background, tuple) else background,
            })
    results = run_map(ctx, _segment_item, items, desc="segment")
    table = []
    for it, res in zip(items, results):
        if is_failure(res):
            res = {"id": it["id"], "segmenter": it["label"], "status": "failed", "error": failure_text(res)}
        else:
            res = dict(res)
        if res["status"] == "ok":
            ok = _publish_file(it["image_out"], out / it["label"] / f"{it['id']}.jpg") and \
                _publish_file(it["matte_out"], out / it["label"] / "mattes" / f"{it['id']}.png")
            if not ok:
                res.update(status="failed", error="segmented file missing from the stage scratch folder")
        res["file"] = f"{it['label']}/{it['id']}.jpg" if res["status"] == "ok" else ""
        res["matte"] = f"{it['label']}/mattes/{it['id']}.png" if res["status"] == "ok" else ""
        table.append(res)
    # run times go to the notes file, not the table: the table feeds later stages' cache keys
    # and must not change when the same mattes are computed again
    timing: dict[str, list] = {}
    for r in table:
        sec = r.pop("seconds", "")
        if r["status"] == "ok" and sec != "":
            timing.setdefault(r["segmenter"], []).append(float(sec))
    write_csv(ctx.outputs["table"], table, ["id", "segmenter", "file", "matte", "status", "error", "foreground_share"])
    if "notes" in ctx.outputs:
        from madpad.io import atomic_write_json

        seconds = {k: {"median": float(np.median(v)), "mean": float(np.mean(v)), "n": len(v)} for k, v in timing.items()}
        atomic_write_json(ctx.outputs["notes"], {"notes": notes, "seconds_per_image": seconds})
    failed = [f"{r['segmenter']}/{r['id']}: {r['error']}" for r in table if r["status"] != "ok"]
    for f in failed[:20]:
        log(ctx, "segment failed: %s", f)
    log(ctx, "segmented %d of %d (segmenter, image) items", len(table) - len(failed), len(table))
    return {"ok": len(table) - len(failed), "failed": len(failed), "segmenters": labels}


# =========================================================================== 4. morphs
def _morph_item(item: dict) -> dict:
    from madpad.io import write_image
    from madpad.morph import MORPH_METHODS

    row = {k: item[k] for k in ("id", "a", "b", "subject_a", "subject_b", "alpha", "method", "seed")}
    row.update(path=item["file"], params="", status="ok", error="")
    try:
        gen = component("morph", [item["method"], item["method_params"]],
                        lambda: MORPH_METHODS.create(item["method"], **item["method_params"]))
        img = gen.morph(item["path_a"], item["path_b"], alpha=float(item["alpha"]), seed=int(item["seed"]))
        write_image(item["out"], img, quality=95)
        row["params"] = json.dumps(gen.params(), sort_keys=True, default=str)
    except Exception as exc:  # noqa: BLE001 - per-item failure: recorded, the stage carries on
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}", path="")
    return row


def make_morphs(ctx) -> dict:
    """Landmark morphs of same-gender subject pairs from the original reference images.

    params: ``n_morphs``, ``seed``, ``method`` (default ``landmark``), ``method_params``,
    ``alpha`` (0.5). outputs: ``morphs`` folder, ``table`` (morph manifest columns).
    """
    from madpad.data.manifest import ImageRecord
    from madpad.morph.pairs import random_pairs

    p = ctx.params
    folder, rows = _images(ctx)
    refs = [r for r in rows if r["role"] == "reference"]
    recs = [ImageRecord(id=r["id"], path=folder / r["file"], subject=r["subject"], label="bona_fide",
                        extra={"gender": r.get("gender", "")}) for r in refs]
    same_gender = bool(p.get("same_gender", True)) and all(r.get("gender") for r in refs)
    n = int(p.get("n_morphs") or max(1, len(refs) // 2))
    pairs = random_pairs(recs, n_pairs=n, seed=int(p.get("seed", 0)), same_gender=same_gender)
    out = Path(ctx.outputs["morphs"])
    out.mkdir(parents=True, exist_ok=True)
    method = p.get("method", "landmark")
    scratch = _scratch(ctx, "morphs")
    items = []
    for k, pr in enumerate(pairs):
        mid = f"morph_{pr.a.id}_{pr.b.id}"
        items.append({"id": mid, "a": pr.a.id, "b": pr.b.id, "subject_a": pr.a.subject, "subject_b": pr.b.subject,
                      "alpha": float(p.get("alpha", 0.5)), "method": method, "seed": int(p.get("seed", 0)) + k,
                      "method_params": dict(p.get("method_params") or {}),
                      "path_a": str(pr.a.path), "path_b": str(pr.b.path), "file": f"{mid}.jpg",
                      "out": str(scratch / f"{mid}.jpg")})
    results = run_map(ctx, _morph_item, items, desc="morph")
    table = []
    for it, res in zip(items, results):
        if is_failure(res):
            err = failure_text(res)
            res = {k: it[k] for k in ("id", "a", "b", "subject_a", "subject_b", "alpha", "method", "seed")}
            res.update(path="", params="", status="failed", error=err)
        else:
            res = dict(res)
            if res["status"] == "ok" and not _publish_file(it["out"], out / it["file"]):
                res.update(status="failed", path="", error="morph file missing from the stage scratch folder")
        table.append(res)
    write_csv(ctx.outputs["table"], table,
              ["id", "path", "a", "b", "subject_a", "subject_b", "alpha", "method", "seed", "params", "status", "error"])
    ok = sum(r["status"] == "ok" for r in table)
    log(ctx, "morphs: %d ok of %d pairs (same_gender=%s)", ok, len(table), same_gender)
    return {"ok": ok, "failed": len(table) - ok}


# =========================================================================== 5. embed
def fr_spec(spec: Any) -> tuple[str, str, dict]:
    """``"dlib"`` or ``{name, label, **params}`` -> (label, name, params)."""
    if isinstance(spec, str):
        return spec, spec, {}
    if isinstance(spec, dict) and spec.get("name"):
        params = {k: v for k, v in spec.items() if k not in ("name", "label")}
        return str(spec.get("label", spec["name"])), str(spec["name"]), params
    raise ValueError(f"FR model entry must be a name or a mapping with 'name'; got {spec!r}")


def _embed_item(item: dict) -> dict:
    """Worker: embed a chunk of images with one FR model (embedding cache in the stage cache dir)."""
    from madpad.face import embed_batch, get_embedder

    emb = component("embedder", [item["name"], item["params"]], lambda: get_embedder(item["name"], **item["params"]))
    batch = embed_batch(item["paths"], emb, cache=item.get("cache"))
    return {"keys": item["keys"], "embeddings": batch.embeddings.astype(np.float32),
            "status": list(batch.status), "error": list(batch.error)}


def embed(ctx) -> dict:
    """Embeddings of every original, segmented and morph image for each FR model.

    params: ``fr_models`` (names or ``{name, label, **params}``), ``chunk`` (images per task).
    outputs: ``embeddings`` folder with ``<model>.npz`` (``keys``, ``embeddings``) and
    ``status.csv``. Keys: ``original/<id>``, ``<segmenter>/<id>``, ``morph/<morph id>``.
    """
    from madpad.io import atomic_path

    p = ctx.params
    folder, rows = _images(ctx)
    entries = [(f"{ORIGINAL}/{r['id']}", str(folder / r["file"])) for r in rows]
    seg_dir = Path(ctx.inputs["segmented"])
    for r in read_csv(ctx.inputs["segmented_table"]):
        if r["status"] == "ok":
            entries.append((f"{r['segmenter']}/{r['id']}", str(seg_dir / r["file"])))
    if "morphs_table" in ctx.inputs:
        mdir = Path(ctx.inputs["morphs"])
        for r in read_csv(ctx.inputs["morphs_table"]):
            if r["status"] == "ok":
                entries.append((f"morph/{r['id']}", str(mdir / r["path"])))
    out = Path(ctx.outputs["embeddings"])
    out.mkdir(parents=True, exist_ok=True)
    chunk = max(1, int(p.get("chunk", 8)))
    status_rows, summary = [], {}
    for spec in as_list(p.get("fr_models", ["dlib"])):
        label, name, params = fr_spec(spec)
        cache = str(Path(ctx.cache_dir) / "embeddings") if getattr(ctx, "cache_dir", None) else None
        items = [{"name": name, "params": params, "keys": [k for k, _ in entries[i:i + chunk]],
                  "paths": [v for _, v in entries[i:i + chunk]], "cache": cache}
                 for i in range(0, len(entries), chunk)]
        results = run_map(ctx, _embed_item, items, desc=f"embed {label}")
        keys, embs = [], []
        for it, res in zip(items, results):
            if is_failure(res):
                for k in it["keys"]:
                    status_rows.append({"model": label, "key": k, "status": "failed", "error": failure_text(res)})
                continue
            for k, e, s, err in zip(res["keys"], res["embeddings"], res["status"], res["error"]):
                status_rows.append({"model": label, "key": k, "status": s, "error": err})
                if s == "ok":
                    keys.append(k)
                    embs.append(e)
        arr = np.stack(embs).astype(np.float32) if embs else np.zeros((0, 0), np.float32)
        with atomic_path(out / f"{label}.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, keys=np.asarray(keys, dtype=str), embeddings=arr)
        summary[label] = {"ok": len(keys), "failed": len(entries) - len(keys)}
        log(ctx, "embed %s: %d ok, %d failed", label, len(keys), len(entries) - len(keys))
    write_csv(out / "status.csv", status_rows, ["model", "key", "status", "error"])
    return summary


def load_embeddings(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """``{model: {key: embedding}}`` from an embed stage output folder."""
    out = {}
    for f in sorted(Path(folder).glob("*.npz")):
        with np.load(f, allow_pickle=False) as z:
            keys, embs = z["keys"].tolist(), z["embeddings"]
        out[f.stem] = {k: embs[i] for i, k in enumerate(keys)}
    return out


# =========================================================================== 6. recognition
def _scores(emb: dict, ref_keys: list[str], probe_keys: list[str]) -> np.ndarray:
    """Cosine matrix (n_ref, n_probe) with NaN where an embedding is missing."""
    dim = next(iter(emb.values())).shape[0] if emb else 0
    A = np.stack([emb.get(k, np.full(dim, np.nan, np.float32)) for k in ref_keys]).astype(np.float64)
    B = np.stack([emb.get(k, np.full(dim, np.nan, np.float32)) for k in probe_keys]).astype(np.float64)
    return A @ B.T  # embeddings are L2-normalised: dot product = cosine


def comparison_sets(emb: dict, subjects: list[str], ref_id: dict, probe_id: dict, ref_variant: str,
                    probe_variant: str) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray]:
    """Genuine scores (reference vs probe of the same subject) and impostor scores (reference of
    one subject vs probe of every other subject) for one condition; NaN pairs are dropped.
    Also returns the full (n, n) score matrix (rows: references, columns: probes)."""
    S = _scores(emb, [f"{ref_variant}/{ref_id[s]}" for s in subjects],
                [f"{probe_variant}/{probe_id[s]}" for s in subjects])
    n = len(subjects)
    gen = np.diag(S)
    imp = S[~np.eye(n, dtype=bool)]
    info = {"genuine_missing": int(np.isnan(gen).sum()), "impostor_missing": int(np.isnan(imp).sum())}
    return gen[np.isfinite(gen)], imp[np.isfinite(imp)], info, S


def recognition_metrics(gen: np.ndarray, imp: np.ndarray, *, fmrs=(0.001, 0.01),
                        baseline_thresholds: dict | None = None) -> dict:
    """FNMR at each FMR (own threshold), EER, score means, and FMR/FNMR at the baseline's
    thresholds (the operational view: the system threshold does not move when the enrolment
    process changes)."""
    import warnings

    from madpad.metrics.verification import eer, fmr, fnmr, fnmr_at_fmr

    out = {"n_genuine": int(gen.size), "n_impostor": int(imp.size),
           "genuine_mean": finite_mean(gen), "impostor_mean": finite_mean(imp)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x in fmrs:
            tag = f"{x * 100:g}%"
            if gen.size and imp.size:
                pt = fnmr_at_fmr(gen, imp, x)
                out[f"threshold@FMR{tag}"], out[f"FNMR@FMR{tag}"] = pt.threshold, pt.fnmr
            else:
                out[f"threshold@FMR{tag}"] = out[f"FNMR@FMR{tag}"] = float("nan")
            if baseline_thresholds and tag in baseline_thresholds and gen.size and imp.size:
                t = baseline_thresholds[tag]
                out[f"FNMR@baseline_t{tag}"] = fnmr(gen, t)
                out[f"FMR@baseline_t{tag}"] = fmr(imp, t)
        out["EER"] = eer(gen, imp).eer if gen.size and imp.size else float("nan")
    return out


def recognition_effect(ctx) -> dict:
    """FR effect per model and condition.

    Conditions: ``original_vs_original`` (baseline), ``<seg>_vs_original`` (segmented
    reference vs original probe: a segmented enrolment photo against a live capture) and
    ``<seg>_vs_<seg>`` (both segmented). outputs: ``table`` (recognition.csv), ``scores``
    (comparison scores CSV with a ``condition`` column), ``det`` (JSON DET curves).
    """
    from madpad.io import atomic_write_json

    p = ctx.params
    rows = read_csv(ctx.inputs["table"])
    ref_id = {r["subject"]: r["id"] for r in rows if r["role"] == "reference"}
    probe_id = {r["subject"]: r["id"] for r in rows if r["role"] == "probe"}
    subjects = sorted(set(ref_id) & set(probe_id))
    seg_labels = sorted({r["segmenter"] for r in read_csv(ctx.inputs["segmented_table"])})
    fmrs = [float(x) for x in as_list(p.get("fmrs", [0.001, 0.01]))]
    embs = load_embeddings(Path(ctx.inputs["embeddings"]))
    table, score_rows, det = [], [], {}
    for model, emb in embs.items():
        if not emb:
            continue
        conds = [("original_vs_original", ORIGINAL, ORIGINAL, ORIGINAL)]
        for s in seg_labels:
            conds += [(f"{s}_vs_original", s, s, ORIGINAL), (f"{s}_vs_{s}", s, s, s)]
        base_t = None
        det[model] = {}
        for cond, seg, rv, pv in conds:
            gen, imp, info, S = comparison_sets(emb, subjects, ref_id, probe_id, rv, pv)
            m = recognition_metrics(gen, imp, fmrs=fmrs, baseline_thresholds=base_t)
            if cond == "original_vs_original":
                base_t = {f"{x * 100:g}%": m[f"threshold@FMR{x * 100:g}%"] for x in fmrs}
                base = m
            m["genuine_shift"] = m["genuine_mean"] - base["genuine_mean"]
            m["impostor_shift"] = m["impostor_mean"] - base["impostor_mean"]
            table.append({"model": model, "condition": cond, "segmenter": seg, **info, **m})
            det[model][cond] = _det_points(gen, imp)
            if p.get("write_scores", True):
                for i, si in enumerate(subjects):
                    for j, sj in enumerate(subjects):
                        if np.isfinite(S[i, j]):
                            score_rows.append({
                                "system": model, "kind": "genuine" if i == j else "impostor",
                                "reference": f"{rv}/{ref_id[si]}", "probe": f"{pv}/{probe_id[sj]}",
                                "reference_subjects": si, "probe_subject": sj, "score": round(float(S[i, j]), 6),
                                "condition": cond})
    write_csv(ctx.outputs["table"], table)
    write_csv(ctx.outputs["scores"], score_rows,
              ["system", "kind", "reference", "probe", "reference_subjects", "probe_subject", "score", "condition"])
    atomic_write_json(ctx.outputs["det"], det)
    log(ctx, "recognition: %d rows for %d model(s), %d subjects", len(table), len(embs), len(subjects))
    return {"rows": len(table)}


def _det_points(gen: np.ndarray, imp: np.ndarray, max_points: int = 200) -> dict:
    """(FMR, FNMR) points of a verification DET curve, thinned to ``max_points``."""
    if not gen.size or not imp.size:
        return {"fmr": [], "fnmr": []}
    ts = np.unique(np.concatenate([gen, imp]))
    if ts.size > max_points:
        ts = np.quantile(np.concatenate([gen, imp]), np.linspace(0, 1, max_points))
    fmr = [(imp >= t).mean() for t in ts]
    fnmr = [(gen < t).mean() for t in ts]
    return {"fmr": [float(v) for v in fmr], "fnmr": [float(v) for v in fnmr]}


# =========================================================================== 7. quality
def _quality_item(item: dict) -> dict:
    from madpad.face import analyze_face
    from madpad.io import read_image
    from madpad.quality import measure_quality, quality_components

    row = {"key": item["key"], "id": item["id"], "variant": item["variant"], "status": "ok", "error": ""}
    try:
        img = read_image(item["path"])
        a = analyze_face(img, detector=item["detector"], landmarker="dlib68")
        if a.status != "ok":
            row.update(status=a.status, error=a.error)
            return row
        q = measure_quality(img, a.landmarks, box=a.detection.box)
        row.update(q.as_dict())
        row.update(quality_components(q))
    except Exception as exc:  # noqa: BLE001 - per-item failure: recorded, the stage carries on
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    return row


QUALITY_COLUMNS = ["sharpness", "exposure_mean", "exposure_clipped", "background_std", "background_spread",
                   "inter_eye_distance", "yaw",
                   "roll", "q_sharpness", "q_exposure", "q_background_uniformity", "q_face_size", "q_pose", "utility"]


def quality_effect(ctx) -> dict:
    """Quality measures of every original and segmented image (faces re-detected on each
    image), the recognition utility from the first FR model, and a per-variant summary.

    outputs: ``table`` (quality.csv, one row per image and variant), ``summary``
    (quality_summary.csv: means per variant, and the change against the originals).
    """
    from madpad.quality import recognition_utility

    p = ctx.params
    folder, rows = _images(ctx)
    seg_dir = Path(ctx.inputs["segmented"])
    det = _detector_spec(p)
    items = [{"key": f"{ORIGINAL}/{r['id']}", "id": r["id"], "variant": ORIGINAL, "path": str(folder / r["file"]),
              "detector": det} for r in rows]
    for r in read_csv(ctx.inputs["segmented_table"]):
        if r["status"] == "ok":
            items.append({"key": f"{r['segmenter']}/{r['id']}", "id": r["id"], "variant": r["segmenter"],
                          "path": str(seg_dir / r["file"]), "detector": det})
    results = run_map(ctx, _quality_item, items, desc="quality")
    table = []
    for it, res in zip(items, results):
        if is_failure(res):
            res = {"key": it["key"], "id": it["id"], "variant": it["variant"], "status": "failed",
                   "error": failure_text(res)}
        table.append(res)
    # recognition utility: similarity to the subject's *other* original image
    embs = load_embeddings(Path(ctx.inputs["embeddings"])) if "embeddings" in ctx.inputs else {}
    model = p.get("utility_model") or (next(iter(embs)) if embs else None)
    other = {}
    by_subject: dict[str, dict] = {}
    for r in rows:
        by_subject.setdefault(r["subject"], {})[r["role"]] = r["id"]
    for roles in by_subject.values():
        if "reference" in roles and "probe" in roles:
            other[roles["reference"]], other[roles["probe"]] = roles["probe"], roles["reference"]
    if model and model in embs:
        emb = embs[model]
        for r in table:
            e, o = emb.get(r["key"]), emb.get(f"{ORIGINAL}/{other.get(r['id'], '')}")
            r["utility"] = recognition_utility(e, o) if e is not None and o is not None else float("nan")
    write_csv(ctx.outputs["table"], table, ["key", "id", "variant", "status", "error", *QUALITY_COLUMNS])
    summary = summarize_quality(table)
    write_csv(ctx.outputs["summary"], summary)
    log(ctx, "quality: %d images, utility model %s", len(table), model)
    return {"rows": len(table), "utility_model": model}


def _num(v) -> float:
    """A table cell as float (None / empty / unparsable -> NaN; 0 stays 0)."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return float("nan")
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def summarize_quality(table: list[dict]) -> list[dict]:
    """Mean of each measure per variant, failures, and the change against ``original``
    computed on the images measured in both (paired)."""
    variants = [ORIGINAL] + sorted({r["variant"] for r in table} - {ORIGINAL})
    by_key = {(r["variant"], r["id"]): r for r in table}
    out = []
    for v in variants:
        rs = [r for r in table if r["variant"] == v]
        ok = [r for r in rs if r["status"] == "ok"]
        row = {"variant": v, "n": len(rs), "no_face_or_failed": len(rs) - len(ok)}
        for c in QUALITY_COLUMNS:
            row[c] = finite_mean(_num(r.get(c)) for r in ok)
        if v != ORIGINAL:
            for c in ("sharpness", "background_std", "background_spread", "q_background_uniformity", "utility"):
                d = []
                for r in ok:
                    base = by_key.get((ORIGINAL, r["id"]))
                    if base and base["status"] == "ok":
                        d.append(_num(r.get(c)) - _num(base.get(c)))
                row[f"delta_{c}"] = finite_mean(d)
        out.append(row)
    return out


# =========================================================================== 8. detection
def distance_dmad_scores(emb: dict, pairs: list[tuple[str, str]]) -> np.ndarray:
    """Untrained differential MAD: ``1 - cos(suspect, live)`` of FR embeddings
    (higher = more likely attack; NaN when an embedding is missing)."""
    out = np.full(len(pairs), np.nan)
    for i, (s, l) in enumerate(pairs):
        a, b = emb.get(s), emb.get(l)
        if a is not None and b is not None:
            out[i] = 1.0 - float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return out


def detection_operating_points(attack: np.ndarray, bona_fide_orig: np.ndarray, bona_fide: dict[str, np.ndarray],
                               apcer_targets=(0.2, 0.1, 0.01), species: str = "morph") -> list[dict]:
    """Rows of the MAD-effect table.

    ``metric="BPCER"`` rows: the threshold is fixed at each APCER target on ``attack`` + the
    original bona fide scores (conservative: APCER <= target, attack when score >= t); the
    columns named after each bona fide condition hold that condition's BPCER at this threshold.
    One ``metric="D-EER"`` row: each bona fide condition's D-EER against the same attacks.
    """
    from madpad.metrics.pad import bpcer, bpcer_at_apcer, d_eer

    a, b0 = attack[np.isfinite(attack)], bona_fide_orig[np.isfinite(bona_fide_orig)]
    rows = []
    if not a.size or not b0.size:
        return rows
    scores = np.concatenate([b0, a])
    labels = ["bona_fide"] * b0.size + ["attack"] * a.size
    spec = [""] * b0.size + [species] * a.size
    for x in apcer_targets:
        op = bpcer_at_apcer(scores, labels, x, species=spec)
        row = {"metric": "BPCER", "apcer_target": x, "threshold": float(op.threshold), "apcer": float(op.apcer)}
        for cond, b in bona_fide.items():
            b = b[np.isfinite(b)]
            row[cond] = (bpcer(np.concatenate([b, a]), ["bona_fide"] * b.size + ["attack"] * a.size,
                               op.threshold) if b.size else float("nan"))
        rows.append(row)
    row = {"metric": "D-EER", "apcer_target": "", "threshold": "", "apcer": ""}
    for cond, b in bona_fide.items():
        b = b[np.isfinite(b)]
        if b.size:
            s = np.concatenate([b, a])
            lab = ["bona_fide"] * b.size + ["attack"] * a.size
            row[cond] = float(d_eer(s, lab, species=[""] * b.size + [species] * a.size).d_eer)
    rows.append(row)
    return rows


def detection_effect(ctx) -> dict:
    """MAD effect. Pairs (differential MAD): bona fide = (reference image, the subject's original
    probe as live capture), with the reference original or segmented; attack = (morph, original
    probe of each contributor). Detectors: ``<fr model>_distance`` for every embedded FR model
    (untrained, 1 - cosine), plus any trained madpad.mad detector given in ``detectors`` as
    ``{name, model_dir}``. outputs: ``table`` (detection.csv), ``scores`` (PAD scores CSV with
    ``detector`` and ``condition`` columns).
    """
    p = ctx.params
    _, rows = _images(ctx)
    ref = {r["subject"]: r["id"] for r in rows if r["role"] == "reference"}
    probe = {r["subject"]: r["id"] for r in rows if r["role"] == "probe"}
    subjects = sorted(set(ref) & set(probe))
    seg_labels = sorted({r["segmenter"] for r in read_csv(ctx.inputs["segmented_table"])})
    morphs = [r for r in read_csv(ctx.inputs["morphs_table"]) if r["status"] == "ok"]
    attack_pairs = []
    for m in morphs:
        for subj in (m["subject_a"], m["subject_b"]):
            if subj in probe:
                attack_pairs.append((f"morph/{m['id']}", f"{ORIGINAL}/{probe[subj]}"))
    bf_pairs = {v: [(f"{v}/{ref[s]}", f"{ORIGINAL}/{probe[s]}") for s in subjects] for v in [ORIGINAL, *seg_labels]}
    targets = [float(x) for x in as_list(p.get("apcer_targets", [0.2, 0.1, 0.01]))]
    embs = load_embeddings(Path(ctx.inputs["embeddings"]))
    detectors = as_list(p.get("detectors", ["distance"]))
    table, score_rows, notes = [], [], []
    for det in detectors:
        name = det if isinstance(det, str) else det.get("name")
        if name == "distance":
            for model, emb in embs.items():
                label = f"{model}_distance"
                att = distance_dmad_scores(emb, attack_pairs)
                bfs = {v: distance_dmad_scores(emb, pr) for v, pr in bf_pairs.items()}
                _collect(table, score_rows, label, att, bfs, attack_pairs, bf_pairs, targets)
        else:
            res = _trained_detector_scores(det, ctx, attack_pairs, bf_pairs)
            if isinstance(res, str):
                notes.append(res)
                log(ctx, "%s", res)
                continue
            att, bfs = res
            label = str(det.get("label", name)) if isinstance(det, dict) else str(det)
            _collect(table, score_rows, label, att, bfs, attack_pairs, bf_pairs, targets)
    write_csv(ctx.outputs["table"], table)
    write_csv(ctx.outputs["scores"], score_rows, ["id", "score", "label", "species", "detector", "condition"])
    from madpad.io import atomic_write_json

    atomic_write_json(ctx.outputs["notes"], {"notes": notes, "n_attack_pairs": len(attack_pairs),
                                             "n_bona_fide_pairs": len(subjects), "n_morphs": len(morphs)})
    return {"rows": len(table), "notes": notes}


def _collect(table, score_rows, label, att, bfs, attack_pairs, bf_pairs, targets):
    for r in detection_operating_points(att, bfs[ORIGINAL], bfs, targets):
        table.append({"detector": label, "n_attack": int(np.isfinite(att).sum()),
                      "n_bona_fide": int(np.isfinite(bfs[ORIGINAL]).sum()), **r})
    for (s, l), v in zip(attack_pairs, att):
        if np.isfinite(v):
            score_rows.append({"id": f"{s}|{l}", "score": float(v), "label": "attack", "species": "landmark",
                               "detector": label, "condition": "attack"})
    for cond, pr in bf_pairs.items():
        for (s, l), v in zip(pr, bfs[cond]):
            if np.isfinite(v):
                score_rows.append({"id": f"{s}|{l}", "score": float(v), "label": "bona_fide", "species": "",
                                   "detector": label, "condition": cond})


def _trained_detector_scores(det: Any, ctx, attack_pairs, bf_pairs):
    """Scores of a madpad.mad detector: ``{name, model_dir}`` loads a trained checkpoint
    (``madpad.mad.load_detector``), ``{name, **params}`` without ``model_dir`` builds a
    detector that needs no training (e.g. ``embedding_distance``). Returns
    ``(attack_scores, {condition: bona_fide_scores})`` or a note string saying why the
    detector is not available."""
    spec = {"name": det} if isinstance(det, str) else dict(det)
    name = spec.get("name")
    try:
        from madpad import mad
    except Exception as exc:  # noqa: BLE001  # pragma: no cover - depends on the installation
        return f"detector {name!r}: madpad.mad not available ({exc})"
    try:
        if spec.get("model_dir"):
            model = mad.load_detector(spec["model_dir"])
        else:
            params = {k: v for k, v in spec.items() if k not in ("name", "label", "model_dir")}
            model = mad.get_detector(name, **params)
        paths = _key_paths(ctx)

        def score(pairs):
            ps = [mad.Pair(id=f"{s}|{l}", suspect=paths[s], live=paths[l]) for s, l in pairs]
            return np.asarray(model.score(ps), dtype=np.float64)

        return score(attack_pairs), {v: score(pr) for v, pr in bf_pairs.items()}
    except Exception as exc:  # noqa: BLE001 - reported as "not available" in the study report
        return f"detector {name!r}: not available ({type(exc).__name__}: {exc})"


def _key_paths(ctx) -> dict[str, str]:
    folder, rows = _images(ctx)
    out = {f"{ORIGINAL}/{r['id']}": str(folder / r["file"]) for r in rows}
    seg_dir = Path(ctx.inputs["segmented"])
    for r in read_csv(ctx.inputs["segmented_table"]):
        if r["status"] == "ok":
            out[f"{r['segmenter']}/{r['id']}"] = str(seg_dir / r["file"])
    mdir = Path(ctx.inputs["morphs"])
    for r in read_csv(ctx.inputs["morphs_table"]):
        if r["status"] == "ok":
            out[f"morph/{r['id']}"] = str(mdir / r["path"])
    return out


# =========================================================================== 9. report
def report(ctx) -> dict:
    """One self-contained HTML report (tables, DET plots, example masks). output ``html``."""
    from madpad.pipeline.stages.study_report import build_report

    html, summary = build_report(ctx)
    from madpad.io import atomic_write_json, atomic_write_text

    atomic_write_text(ctx.outputs["html"], html)
    if "summary" in ctx.outputs:
        atomic_write_json(ctx.outputs["summary"], summary)
    return {"bytes": len(html)}
