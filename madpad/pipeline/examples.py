"""Small example stages (``pipelines/example_small.yaml``): per-image statistics and a summary.

They show the stage contract on real images and are what the runner's tests use:

* :func:`stats_stage` - reads an image manifest, computes simple per-image measures with
  ``ctx.map`` (mean brightness, RMS contrast, Laplacian-variance sharpness; all in
  [0, 255]-scaled grey levels) and writes ``stats.csv`` with a ``status``/``error`` column per
  image. ``params.fail_ids`` lists image ids whose item function raises (fault injection to see
  per-item failures recorded); ``params.fail_if_exists`` names a file whose presence makes the
  stage fail *after* all items are computed (fault injection to see resume: the per-item
  results are cached, so the rerun computes nothing again). An item with ``"crash": true``
  ends its worker process (used to test how the runner handles a dying worker).
* :func:`summary_stage` - reads ``stats.csv`` and writes ``summary.json``: counts and the mean
  of each measure per capture kind (``params.fail_if_exists`` as above).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

STAT_COLUMNS = ("id", "subject", "capture", "brightness", "contrast", "sharpness", "status", "error")


def image_stats(item: dict) -> dict:
    """Per-image measures of ``item["path"]`` (top-level, so it can run in worker processes)."""
    from madpad.io import read_image

    if item["id"] in item.get("fail_ids", ()):
        raise ValueError(f"injected failure for {item['id']}")
    if item.get("crash"):  # fault injection: the worker process dies (tests of --executor local)
        os._exit(3)
    rgb = read_image(item["path"]).astype(np.float64)
    grey = rgb @ np.array([0.299, 0.587, 0.114])
    lap = (-4.0 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:])
    return {"brightness": round(float(grey.mean()), 6), "contrast": round(float(grey.std()), 6),
            "sharpness": round(float(lap.var()), 6)}


def stats_stage(ctx) -> dict:
    from madpad.data import load_images, write_table

    root = ctx.inputs.get("root")
    images = load_images(ctx.inputs["manifest"], root=root)
    fail_ids = list(ctx.params.get("fail_ids") or [])
    items = [{"id": r.id, "path": str(r.path), "fail_ids": fail_ids} for r in images]
    results = ctx.map(image_stats, items, key=lambda it: (it["id"], it["path"], it["id"] in fail_ids),
                      desc="image stats")
    rows = []
    for rec, res in zip(images, results):
        row = {"id": rec.id, "subject": rec.subject, "capture": rec.capture}
        if res:
            rows.append({**row, **res, "status": "ok", "error": ""})
        else:
            rows.append({**row, "brightness": "", "contrast": "", "sharpness": "", "status": "failed",
                         "error": res.error})
    flag = ctx.params.get("fail_if_exists") or ""
    if flag and Path(flag).exists():
        raise RuntimeError(f"injected stage failure: {flag} exists")
    write_table(ctx.outputs["table"], rows, columns=STAT_COLUMNS)
    n_failed = sum(r["status"] != "ok" for r in rows)
    ctx.log.info("%d images, %d failed", len(rows), n_failed)
    return {"n_images": len(rows), "n_failed": n_failed}


def summary_stage(ctx) -> dict:
    from madpad.data import read_table
    from madpad.io import atomic_write_json

    flag = ctx.params.get("fail_if_exists") or ""
    if flag and Path(flag).exists():
        raise RuntimeError(f"injected stage failure: {flag} exists")
    table = read_table(ctx.inputs["table"])
    per: dict = {}
    for r in table.rows:
        if r["status"] != "ok":
            continue
        g = per.setdefault(r["capture"] or "-", {"n": 0, "brightness": 0.0, "contrast": 0.0, "sharpness": 0.0})
        g["n"] += 1
        for k in ("brightness", "contrast", "sharpness"):
            g[k] += float(r[k])
    for g in per.values():
        for k in ("brightness", "contrast", "sharpness"):
            g[k] = round(g[k] / g["n"], 6) if g["n"] else math.nan
    out = {"n_images": len(table.rows), "n_failed": sum(r["status"] != "ok" for r in table.rows),
           "per_capture": dict(sorted(per.items()))}
    atomic_write_json(ctx.outputs["summary"], out)
    ctx.log.info("summary: %s", json.dumps(out))
    return {"n_images": out["n_images"]}
