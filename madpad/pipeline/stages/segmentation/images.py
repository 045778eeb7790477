"""Stage 1 of the segmentation study: one reference (enrolment) and one or more probe images per
subject, from the main data set (FRLL) and optional extra data sets (``frll_canada`` portraits,
``selfie`` phone captures with real backgrounds)."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from madpad.pipeline.stages._common import log, write_csv
from madpad.pipeline.stages.segmentation.common import IMAGE_COLUMNS


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


#: kinds of the study's extra data sets (param ``datasets``)
DATASET_KINDS = ("frll", "frll_canada", "selfie", "manifest")


@dataclass
class SubjectImages:
    """One subject of the study: its reference (enrolment) record and probe records; a probe
    with ``synthetic`` True is made from the reference file itself (a single-image data set)."""

    dataset: str
    reference: Any
    probes: list
    synthetic: bool = False


def dataset_subjects(kind: str, root: Path, *, manifest: str | None = None, dataset: str | None = None,
                     selfie_reference: str = "lisa1") -> dict[str, SubjectImages]:
    """Subjects of one data set. ``frll`` / ``manifest``: reference and probe as in
    :func:`pick_reference_and_probe`; ``frll_canada`` (one portrait per subject): the portrait is
    the reference and a simulated live capture of it the probe; ``selfie`` (one person, several
    phone selfies with real backgrounds): ``selfie_reference`` is the reference, every other
    image a probe."""
    from madpad.data.manifest import ImageRecord

    name = dataset or kind
    if kind not in DATASET_KINDS:
        raise ValueError(f"dataset kind must be one of {list(DATASET_KINDS)}; got {kind!r}")
    if kind in ("frll", "manifest"):
        pairs = pick_reference_and_probe(_records_from_input(root, manifest=manifest if kind == "manifest" else None))
        return {s: SubjectImages(name, r, [pr]) for s, (r, pr) in pairs.items()}
    if kind == "frll_canada":
        from madpad.data.frll import frll_canada_images

        return {r.subject: SubjectImages(name, r, [r], synthetic=True) for r in frll_canada_images(root)}
    files = sorted(f for f in Path(root).iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise ValueError(f"{root}: no selfie images (*.jpg, *.png)")
    recs = [ImageRecord(id=f"{name}_{f.stem}", path=f.resolve(), subject=name, label="bona_fide", source=name)
            for f in files]
    ref = next((r for r in recs if r.id == f"{name}_{selfie_reference}"), None)
    if ref is None:
        raise ValueError(f"{root}: selfie_reference {selfie_reference!r} not found among {[f.stem for f in files]}")
    return {name: SubjectImages(name, ref, [r for r in recs if r is not ref])}


def _dataset_specs(p: dict) -> list[dict]:
    out = []
    for i, d in enumerate(p.get("datasets") or []):
        if not isinstance(d, dict) or not d.get("kind") or not d.get("root"):
            raise ValueError(f"params.datasets[{i}] must be a mapping with 'kind' and 'root'; got {d!r}")
        root = os.path.expandvars(os.path.expanduser(str(d["root"])))
        if "$" in root or not Path(root).is_dir():
            raise ValueError(f"params.datasets[{i}].root: folder not found: {root}")
        out.append({**d, "root": Path(root), "label": str(d.get("label", d["kind"]))})
    return out


def select_images(ctx) -> dict:
    """Pick subjects and copy (or resize) their reference and probe images.

    inputs: ``data`` (FRLL folder, or a manifest's root: the main data set, the only one the
    morphs are made from). params: ``manifest`` (optional), ``n_subjects`` (None = all), ``seed``,
    ``max_side`` (resize longer side; None = copy), ``probe_variation`` (0 = probe files as they
    are; > 0 = each probe of the main data set becomes a simulated live capture with
    :func:`madpad.mad.pairs.vary_live_capture` at this strength, seeded per image), ``datasets``
    (extra data sets: ``[{kind: frll_canada | selfie | frll | manifest, root: DIR, label?,
    n_subjects?, manifest?, selfie_reference?}]``, ``root`` may use ``$MADPAD_SHARED``; a
    single-image data set's probe is always a simulated live capture, strength
    ``max(probe_variation, 1)``; selfie probes are real captures, kept as they are).
    outputs: ``images`` (folder), ``table`` (images.csv with IMAGE_COLUMNS).
    """
    p = ctx.params
    data = Path(ctx.inputs["data"])
    main_kind = "manifest" if p.get("manifest") or not data.is_dir() else "frll"
    sets = [{"kind": main_kind, "root": data, "label": main_kind, "manifest": p.get("manifest") or None,
             "n_subjects": p.get("n_subjects")}] + _dataset_specs(p)
    labels = [d["label"] for d in sets]
    if len(set(labels)) != len(labels):
        raise ValueError(f"data set labels must be unique; got {labels} (give extra data sets a 'label')")
    out_dir = Path(ctx.outputs["images"])
    out_dir.mkdir(parents=True, exist_ok=True)
    variation = float(p.get("probe_variation") or 0.0)
    if variation < 0:
        raise ValueError(f"probe_variation must be >= 0 (0 = the probe files as they are); got {variation}")
    rows, counts = [], {}
    for k, d in enumerate(sets):
        subj = dataset_subjects(d["kind"], d["root"],
                                manifest=d.get("manifest"), dataset=d["label"],
                                selfie_reference=str(d.get("selfie_reference", "lisa1")))
        if k == 0 and len(subj) < 2:
            raise ValueError(f"{data}: need at least 2 subjects with two bona fide images each; found {len(subj)}")
        names = sorted(subj)
        n = d.get("n_subjects")
        if n:
            rng = np.random.default_rng(int(p.get("seed", 0)) + k)
            names = sorted(rng.choice(names, size=min(int(n), len(names)), replace=False).tolist())
        for s in names:
            si = subj[s]
            strength = max(variation, 1.0) if si.synthetic else (variation if k == 0 else 0.0)
            rows.append(_image_row(out_dir, si.reference, si.reference.id, s, "reference", d["label"], p, 0.0))
            for rec in si.probes:
                pid = f"{rec.id}_live" if si.synthetic else rec.id
                rows.append(_image_row(out_dir, rec, pid, s, "probe", d["label"], p, strength))
        counts[d["label"]] = len(names)
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"image ids collide across data sets: {dup}")
    write_csv(ctx.outputs["table"], rows, IMAGE_COLUMNS)
    failed = [r for r in rows if r["status"] != "ok"]
    items = getattr(ctx, "items", None)
    if items is not None:  # the run summary's item counts
        items.total += len(rows)
        items.failed += len(failed)
    for r in failed:
        log(ctx, "image %s failed: %s", r["id"], r["error"])
    log(ctx, "selected %s subjects, %d images (%d failed)", counts, len(rows), len(failed))
    return {"subjects": sum(counts.values()), "images": len(rows), "failed": len(failed), "datasets": counts}


def _image_row(out_dir: Path, rec, image_id: str, subject: str, role: str, dataset: str, p: dict,
               variation: float) -> dict:
    """:func:`_write_image` with ``status`` ``ok``, or a ``failed`` row with the error (an
    unreadable or undecodable image is recorded and the study goes on without it)."""
    try:
        row = _write_image(out_dir, rec, image_id, subject, role, dataset, p, variation)
    except Exception as exc:  # noqa: BLE001 - per-item failure: recorded, the study goes on
        text = str(exc).strip()
        msg = text.splitlines()[0] if text else type(exc).__name__
        return {"id": image_id, "file": "", "subject": subject, "role": role,
                "gender": (getattr(rec, "extra", None) or {}).get("gender", ""), "source_path": str(rec.path),
                "width": "", "height": "", "variation": variation, "dataset": dataset, "status": "failed",
                "error": msg}
    return {**row, "status": "ok", "error": ""}


def _write_image(out_dir: Path, rec, image_id: str, subject: str, role: str, dataset: str, p: dict,
                 variation: float) -> dict:
    """Copy / resize / vary one image into the images folder; its images.csv row."""
    from madpad.io import read_image, write_image
    from madpad.segment.base import downscale

    src = Path(rec.path)
    img = read_image(src)
    max_side = p.get("max_side")
    if max_side and max(img.shape[:2]) > int(max_side):
        img, _ = downscale(img, int(max_side))
    if role == "probe" and variation > 0:
        # a simulated live capture: crop/shift/rotation, colour, blur, noise, JPEG (madpad.mad.pairs)
        from madpad.mad.pairs import vary_live_capture

        img = vary_live_capture(img, seed=_item_seed(p.get("seed", 0), image_id), strength=variation)
        name = f"{image_id}.png"
        write_image(out_dir / name, img)
    elif img.shape[:2] != read_image_shape(src):
        name = f"{image_id}.jpg"
        write_image(out_dir / name, img, quality=95)
    else:
        name = f"{image_id}{src.suffix.lower()}"
        shutil.copyfile(src, out_dir / name)
    return {"id": image_id, "file": name, "subject": subject, "role": role,
            "gender": (rec.extra or {}).get("gender", ""), "source_path": str(src),
            "width": img.shape[1], "height": img.shape[0], "variation": variation, "dataset": dataset}


def read_image_shape(path) -> tuple[int, int]:
    """(height, width) of an image file, from its header."""
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
    return h, w


def _item_seed(seed, item_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\x1f{item_id}".encode()).digest()[:8], "little")
