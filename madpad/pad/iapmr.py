"""Vulnerability of face recognition to T-shirt attacks: IAPMR against the printed subject.

``python -m madpad.pad iapmr --manifest MANIFEST.csv --references DIR --enrol DIR --out DIR``

* licit comparisons set the FR threshold: every ``--enrol`` image (e.g. FRLL neutral) against every
  ``--references`` image (e.g. FRLL smiling, the same subjects in another capture); same subject id
  = genuine, different = zero-effort impostor; thresholds at the FMR targets (conservative: realised
  FMR <= target, :func:`madpad.metrics.threshold_at_fmr`);
* attack comparisons: each attack image of the manifest against the reference image of its
  ``printed_subject``. Two face selections are reported: ``largest`` (the embedder's own policy:
  the largest detected face, what a single-face FR pipeline does) and ``any`` (every detected face
  is cropped and compared, the best score counts: an FR system searching all faces in a frame).
* IAPMR = share of attack comparisons with ``score >= threshold``; an attack image in which no face
  is found cannot match and counts as a non-match (the denominator is every attack image).

Writes

* ``comparisons.csv``: the licit comparisons in the standard comparison-scores format
  (``docs/CONTRACTS.md``, "Score files": ``system,kind,reference,probe,reference_subjects,
  probe_subject,score``; ``kind`` genuine or impostor; ``reference`` a ``--references`` image,
  ``probe`` an ``--enrol`` image), which ``python -m madpad.report vulnerability`` reads;
* ``attack_comparisons.csv``: ``system,selection,attack,species,reference,printed_subject,
  wearer_subject,score``, one row per attack image and face selection (``score`` empty when no
  face was found);
* ``iapmr.json``: thresholds, realised FMR/FNMR and IAPMR per selection and species.

FR scores are cosine similarities (higher = same person).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from madpad.errors import ManifestError, UsageError
from madpad.face.comparisons import COMPARISON_COLUMNS, genuine_impostor_scores
from madpad.io import atomic_write_json, read_image

ATTACK_COLUMNS = ("system", "selection", "attack", "species", "reference", "printed_subject", "wearer_subject",
                  "score")


def _subject_map(folder: Path, tag: str) -> dict[str, Path]:
    from madpad.pad.synth import list_sources

    return {s.subject: s.path for s in list_sources(folder, tag=tag)}


def face_crops(image: np.ndarray, detector, *, margin: float = 0.6) -> list[np.ndarray]:
    """Every detected face as a crop with ``margin`` (share of the box size) on each side."""
    h, w = image.shape[:2]
    out = []
    for d in detector.detect(image):
        x0, y0, x1, y1 = d.box
        mx, my = margin * (x1 - x0), margin * (y1 - y0)
        a, b = int(max(0, x0 - mx)), int(max(0, y0 - my))
        c, e = int(min(w, x1 + mx)), int(min(h, y1 + my))
        if c - a >= 8 and e - b >= 8:
            out.append(np.ascontiguousarray(image[b:e, a:c]))
    return out


def run_iapmr(*, manifest, references, enrol, out_dir, tag: str = "frll", embedder: str = "dlib",
              fmr_targets=(0.001, 0.01), progress: bool = True) -> dict:
    from madpad.data import load_images, write_table
    from madpad.face import cosine_similarity, embed_batch, get_detector, get_embedder
    from madpad.metrics import fmr as fmr_at
    from madpad.metrics import iapmr, threshold_at_fmr

    images = load_images(manifest)
    man = images.path
    rows = [r for r in images if r.label == "attack"]
    if not rows:
        raise UsageError(f"{man}: no attack rows")
    if "printed_subject" not in images.extra_columns:
        raise ManifestError("missing column 'printed_subject'", path=man)
    refs = _subject_map(Path(references), tag)
    enr = _subject_map(Path(enrol), tag)
    emb = get_embedder(embedder)
    ref_ids = sorted(refs)
    enr_ids = sorted(enr)
    R = embed_batch([refs[s] for s in ref_ids], emb, progress=progress, desc="references")
    E = embed_batch([enr[s] for s in enr_ids], emb, progress=progress, desc="enrolment")
    # licit comparisons: each reference (enrolled) against each enrolment-set image (probe)
    licit = genuine_impostor_scores(R.embeddings, E.embeddings, ref_ids, enr_ids)
    genuine, impostor = licit.genuine, licit.impostor
    comps = [{"system": embedder, "kind": kind, "reference": str(refs[ref_ids[i]]), "probe": str(enr[enr_ids[j]]),
              "reference_subjects": ref_ids[i], "probe_subject": enr_ids[j], "score": f"{score:.6f}"}
             for i, j, kind, score in licit.pairs()]
    attack_rows = []
    ref_index = {s: k for k, s in enumerate(ref_ids)}
    det = get_detector("dlib_hog")
    attack = {"largest": [], "any": []}
    species = []
    it = rows
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(rows, desc="attacks", unit="img")
    for r in it:
        ps = r.extra.get("printed_subject", "")
        if ps not in ref_index or not np.isfinite(R.embeddings[ref_index[ps]]).all():
            raise UsageError(f"{man}: printed subject {ps!r} (row id {r.id}) has no usable reference in {references}")
        ref = R.embeddings[ref_index[ps]][None, :]
        img = read_image(r.path)
        b = embed_batch([img], emb)
        s_largest = float(cosine_similarity(b.embeddings, ref)[0]) if np.isfinite(b.embeddings).all() else float("-inf")
        crops = face_crops(img, det)
        s_any = s_largest
        if crops:
            cb = embed_batch(crops, emb)
            good = np.isfinite(cb.embeddings).all(axis=1)
            if good.any():
                s_any = max(s_any, float(np.max(cosine_similarity(cb.embeddings[good], np.repeat(ref, good.sum(), 0)))))
        attack["largest"].append(s_largest)
        attack["any"].append(s_any)
        species.append(r.species)
        for sel, v in (("largest", s_largest), ("any", s_any)):
            attack_rows.append({"system": embedder, "selection": sel, "attack": r.id, "species": r.species,
                                "reference": str(refs[ps]), "printed_subject": ps, "wearer_subject": r.subject,
                                "score": f"{v:.6f}" if np.isfinite(v) else ""})
    species = np.array(species)
    result = {"system": embedder, "n_genuine": int(genuine.size), "n_impostor": int(impostor.size),
              "n_attack": len(rows), "match_rule": ">=", "no_face_counts_as": "non-match", "operating_points": []}
    for x in fmr_targets:
        t = threshold_at_fmr(impostor, x)
        op = {"fmr_target": x, "threshold": t, "fmr": fmr_at(impostor, t), "fnmr": float(np.mean(genuine < t)),
              "iapmr": {}}
        for sel, vals in attack.items():
            v = np.array(vals)
            # -inf (no face) never matches; iapmr() wants finite scores, so count those as misses here
            per = {"all": float(np.mean(v >= t))}
            for sp in sorted(set(species.tolist())):
                vv = v[species == sp]
                per[sp] = float(np.mean(vv >= t))
            if np.isfinite(v).all():
                assert abs(per["all"] - iapmr(v, threshold=t)) < 1e-12
            op["iapmr"][sel] = per
        result["operating_points"].append(op)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "comparisons.csv", comps, columns=COMPARISON_COLUMNS, fmt="csv")
    write_table(out / "attack_comparisons.csv", attack_rows, columns=ATTACK_COLUMNS, fmt="csv")
    atomic_write_json(out / "iapmr.json", result)
    return result


def main(argv=None) -> int:
    from madpad.cli import run_main

    ap = argparse.ArgumentParser(prog="python -m madpad.pad iapmr", description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", required=True, help="synthetic set manifest (label, species, printed_subject)")
    ap.add_argument("--references", required=True, help="folder of reference images of the printed subjects "
                    "(e.g. FRLL smiling/)")
    ap.add_argument("--enrol", required=True, help="folder of licit enrolment images of the same subjects "
                    "(e.g. FRLL neutral/) for the genuine/impostor threshold")
    ap.add_argument("--tag", default="frll", help="subject id prefix used in the manifest's printed_subject")
    ap.add_argument("--embedder", default="dlib")
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    def body():
        res = run_iapmr(manifest=args.manifest, references=args.references, enrol=args.enrol, out_dir=args.out,
                        tag=args.tag, embedder=args.embedder, progress=not args.no_progress)
        print(json.dumps(res["operating_points"], indent=1), file=sys.stderr)
        return 0

    return run_main(body, prog="madpad.pad iapmr")
