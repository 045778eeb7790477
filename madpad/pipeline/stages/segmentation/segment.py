"""Stage 3 of the segmentation study: every image with every segmenter (matte PNG + image with
the background replaced)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from madpad.pipeline.stages._common import (
    as_list,
    component,
    failure_text,
    is_failure,
    log,
    publish_file,
    run_map,
    scratch_dir,
    spec_hash,
    write_csv,
)
from madpad.pipeline.stages.segmentation.common import (
    ORIGINAL,
    images_table,
    load_faces,
)


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
    folder, rows = images_table(ctx)
    faces = load_faces(ctx.inputs["faces"])
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
        scratch = scratch_dir(ctx, f"{label}-{spec_hash([name, params, background])}")
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
            ok = publish_file(it["image_out"], out / it["label"] / f"{it['id']}.jpg") and \
                publish_file(it["matte_out"], out / it["label"] / "mattes" / f"{it['id']}.png")
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
