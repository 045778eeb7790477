"""Stage 5 of the segmentation study: face embeddings of the original, segmented and morph
images for each FR model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from madpad.pipeline.stages._common import (
    as_list,
    component,
    failure_text,
    is_failure,
    log,
    run_map,
    write_csv,
)
from madpad.pipeline.stages.segmentation.common import keyed_images, write_embeddings


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

    params: ``fr_models`` (names or ``{name, label, **params}``), ``chunk`` (images per task),
    ``skip_unavailable`` (an ONNX FR network whose file is missing is skipped with a note;
    default true). outputs: ``embeddings`` folder with ``<model>.npz`` (``keys``,
    ``embeddings``), ``status.csv`` and ``notes.json`` (models skipped and why). Keys: ``original/<id>``, ``<segmenter>/<id>``, ``morph/<morph id>``.
    """
    p = ctx.params
    entries = keyed_images(ctx)
    out = Path(ctx.outputs["embeddings"])
    out.mkdir(parents=True, exist_ok=True)
    chunk = max(1, int(p.get("chunk", 8)))
    status_rows, summary, notes = [], {}, []
    for spec in as_list(p.get("fr_models", ["dlib"])):
        label, name, params = fr_spec(spec)
        note = unavailable_note(name, params)
        if note:
            if not p.get("skip_unavailable", True):
                raise ValueError(note)
            notes.append(note)
            log(ctx, "%s", note)
            continue
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
        write_embeddings(out / f"{label}.npz", keys, arr)
        summary[label] = {"ok": len(keys), "failed": len(entries) - len(keys)}
        log(ctx, "embed %s: %d ok, %d failed", label, len(keys), len(entries) - len(keys))
    write_csv(out / "status.csv", status_rows, ["model", "key", "status", "error"])
    from madpad.io import atomic_write_json

    atomic_write_json(out / "notes.json", {"notes": notes, "models": list(summary)})
    if not summary:
        raise ValueError("no FR model is available: " + "; ".join(notes))
    return summary


def unavailable_note(name: str, params: dict) -> str:
    """Why the FR model ``name`` cannot run here (its ONNX file missing or different), or ''."""
    from madpad.face.fr_onnx import (
        ONNX_FR_MODELS,
        FRModelMismatchError,
        FRModelNotFoundError,
    )

    cls = ONNX_FR_MODELS.get(name)
    if cls is None:
        return ""
    try:
        cls.model_file(model_path=params.get("model_path"), check_sha256=params.get("check_sha256", True))
    except (FRModelNotFoundError, FRModelMismatchError) as exc:
        return f"FR model {name!r} skipped (not available): {exc}"
    return ""
