"""Stage 4 of the segmentation study: landmark morphs of subject pairs from the original
reference images (the attack set)."""

from __future__ import annotations

import json
from pathlib import Path

from madpad.pipeline.stages._common import (
    component,
    failure_text,
    is_failure,
    log,
    publish_file,
    run_map,
    scratch_dir,
    write_csv,
)
from madpad.pipeline.stages.segmentation.common import images_table


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
    """Landmark morphs of same-gender subject pairs from the original reference images of the
    main data set (the first data set of images.csv; extra data sets are bona fide only).

    params: ``n_morphs``, ``seed``, ``method`` (default ``landmark``), ``method_params``,
    ``alpha`` (0.5). outputs: ``morphs`` folder, ``table`` (morph manifest columns).
    """
    from madpad.data.manifest import ImageRecord
    from madpad.morph.pairs import random_pairs

    p = ctx.params
    folder, rows = images_table(ctx)
    # morphs come from the main data set only (the first one of images.csv)
    main = rows[0].get("dataset", "") if rows else ""
    refs = [r for r in rows if r["role"] == "reference" and r.get("dataset", "") == main]
    recs = [ImageRecord(id=r["id"], path=folder / r["file"], subject=r["subject"], label="bona_fide",
                        extra={"gender": r.get("gender", "")}) for r in refs]
    same_gender = bool(p.get("same_gender", True)) and all(r.get("gender") for r in refs)
    n = int(p.get("n_morphs") or max(1, len(refs) // 2))
    pairs = random_pairs(recs, n_pairs=n, seed=int(p.get("seed", 0)), same_gender=same_gender)
    out = Path(ctx.outputs["morphs"])
    out.mkdir(parents=True, exist_ok=True)
    method = p.get("method", "landmark")
    scratch = scratch_dir(ctx, "morphs")
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
            if res["status"] == "ok" and not publish_file(it["out"], out / it["file"]):
                res.update(status="failed", path="", error="morph file missing from the stage scratch folder")
        table.append(res)
    write_csv(ctx.outputs["table"], table,
              ["id", "path", "a", "b", "subject_a", "subject_b", "alpha", "method", "seed", "params", "status", "error"])
    ok = sum(r["status"] == "ok" for r in table)
    log(ctx, "morphs: %d ok of %d pairs (same_gender=%s)", ok, len(table), same_gender)
    return {"ok": ok, "failed": len(table) - ok}
