"""What the segmentation-study stages share: image keys, the images table, the face detector
setting and the embeddings files of the embed stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from madpad.pipeline.stages._common import read_csv

ORIGINAL = "original"
IMAGE_COLUMNS = ["id", "file", "subject", "role", "gender", "source_path", "width", "height", "variation", "dataset",
                 "status", "error"]


def image_ok(row: dict) -> bool:
    """An images.csv row whose image was written (``status`` ok; tables without the column: all)."""
    return (row.get("status") or "ok") == "ok"


def images_table(ctx) -> tuple[Path, list[dict]]:
    """(images folder, rows of images.csv) of the inputs ``images`` and ``table``; rows of
    images that failed in the images stage are left out."""
    return Path(ctx.inputs["images"]), [r for r in read_csv(ctx.inputs["table"]) if image_ok(r)]


def study_roles(rows: list[dict]) -> tuple[list[str], dict, dict, dict]:
    """``(subjects, ref_id, probe_ids, dataset_of)`` from images.csv rows: one reference per
    subject, one or more probes (``probe_ids[subject]`` = list of ids), each subject's data set.
    Failed images (``status`` not ok) are left out; a subject needs a reference and a probe."""
    rows = [r for r in rows if image_ok(r)]
    ref_id = {r["subject"]: r["id"] for r in rows if r["role"] == "reference"}
    probe_ids: dict[str, list[str]] = {}
    for r in rows:
        if r["role"] == "probe":
            probe_ids.setdefault(r["subject"], []).append(r["id"])
    dataset_of = {r["subject"]: r.get("dataset", "") or "" for r in rows}
    subjects = sorted(set(ref_id) & set(probe_ids))
    return subjects, ref_id, probe_ids, dataset_of


def detector_spec(params: dict) -> Any:
    """The face detector of the params ``detector`` (``upsample``, ``detect_max_side`` for dlib_hog)."""
    det = params.get("detector", "dlib_hog")
    if isinstance(det, str):
        return {"name": det, "upsample": int(params.get("upsample", 0)), "max_side": params.get("detect_max_side", 800)} \
            if det == "dlib_hog" else det
    return det


def load_faces(path) -> dict:
    """The ``faces`` output of the faces stage (image id -> status, box, landmarks)."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def keyed_images(ctx) -> list[tuple[str, str]]:
    """``(key, path)`` of every image of the study: ``original/<id>`` (input ``table``),
    ``<segmenter>/<id>`` (input ``segmented_table``, rows that are ok) and ``morph/<morph id>``
    (input ``morphs_table`` when the stage has it, rows that are ok)."""
    folder, rows = images_table(ctx)
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
    return entries


def write_embeddings(path: Path, keys: list[str], embeddings: np.ndarray) -> None:
    """One model's embeddings file (``keys``, ``embeddings``), written atomically."""
    from madpad.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, keys=np.asarray(keys, dtype=str), embeddings=embeddings)


def load_embeddings(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """``{model: {key: embedding}}`` from an embed stage output folder."""
    out = {}
    for f in sorted(Path(folder).glob("*.npz")):
        with np.load(f, allow_pickle=False) as z:
            keys, embs = z["keys"].tolist(), z["embeddings"]
        out[f.stem] = {k: embs[i] for i, k in enumerate(keys)}
    return out
