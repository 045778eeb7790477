"""Synthetic T-shirt presentation attacks (the TFPA database is not public).

What the generator does, per wearer image (a frontal head-and-shoulders photo whose eyes are known
from a ``.tem`` landmark file or found by :mod:`madpad.face`):

1. **Canvas extension.** The photo is scaled so that the output is ``width`` pixels wide and placed
   at the top of a larger canvas (``pad_x`` of the photo width added left and right, ``ext_y`` of
   its height added below; ``ext_y=0`` for photos that already show the chest: then nothing is
   synthesised below and the print goes on the photo's own chest, 2.6 eye distances below the eyes). The added area is *synthesised*: the background colour is taken from
   the photo's top corners (vertical gradient to its mid-height corners, light noise), and a shirt
   continues the photo's shoulders: a torso silhouette (shoulders widening to ``shoulder_span`` of
   the photo width, then straight sides), filled with the shirt colour sampled at the photo's bottom
   edge and shaded with a vertical gradient, a horizontal roundness fall-off and a few soft folds.
   Nothing here is real photography of a torso.
2. **Print.** Another subject's face (aligned by the eyes to a fixed crop, the print scale drawn in
   ``print_scale`` times the wearer's eye distance) is degraded like a textile print (saturation and
   contrast reduced, blacks lifted, a halftone-like dot pattern, Gaussian noise, slight blur),
   warped with a random perspective (corner jitter ``perspective``) onto the chest below the
   photo's bottom edge, and multiplied by the shirt's shading.
3. **Species** (attack presentation attack instrument species):

   * ``tshirt_face_visible``: the wearer's own face stays visible;
   * ``tshirt_face_occluded``: an opaque board (flat colour with texture) covers the wearer's face
     from the eyebrows to the chin;
   * ``tshirt_head_cropped``: the frame starts just above the print (the real head is out of view);
   * ``tshirt_head_turned_approx``: an *approximation* of a head turned away: the face ellipse is
     replaced by a synthetic hair texture in the wearer's hair colour (no real back-of-head image);
   * ``tshirt_large_rotated``: a large print (``large_scale`` times the wearer's eye distance, on a
     canvas extended by ``large_ext_y``) turned in-plane by ``rotation`` degrees (either sign), the
     frame starting just above it (the wearer's head is out of view);
   * ``tshirt_small_high``: a small print (``small_scale``) high on the chest, just below the
     collar, the wearer's face covered by a board;
   * ``tshirt_multi_person``: two people side by side (the wearer and another wearer of the set,
     each on its own extended canvas, joined with a feathered seam of ``pair_overlap`` of the
     canvas width and shifted vertically by up to ``pair_shift`` of the height); the wearer's face
     is covered by a board and the other person is bona fide.

   Bona fide images get the same canvas extension without a print (capture ``extended``), the
   original framing rescaled to the same width (capture ``portrait``) and two people side by side
   without a print (capture ``multi_person``).

   By default (:data:`DEFAULT_SPECIES`, :data:`DEFAULT_BONA_FIDE`) the first four species and the
   ``extended``/``portrait`` captures are made; the others are chosen with ``species=``/``bona_fide=``
   (``--species all --bona-fide all``). The partner of a two-person image is drawn (seeded) from
   the other wearers given to :func:`generate_set`, so a subject-disjoint split stays disjoint when
   each split is generated from its own wearers; its subject is in the manifest's
   ``other_subjects`` column.

Everything is seeded: one ``numpy.random.Generator`` per wearer from ``(seed, wearer index)``.
The manifest records the print quadrilateral and the wearer's face box in output pixels.

Modules: this one holds the species, :class:`SynthConfig`, the sources, the per-wearer and set
generators and the ``synth`` CLI; the image composition (canvas, torso, print, occluders, pairs)
is in :mod:`madpad.pad.synth_scene`, whose public names are importable from here too.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from madpad.data import write_table
from madpad.errors import FaceNotFoundError, MadpadError, UsageError
from madpad.io import (
    IMAGE_SUFFIXES,
    atomic_write_text,
    read_image,
    write_image,
)
from madpad.pad.synth_scene import (  # the scene composition; re-exported: importable from here as before
    Canvas,
    _crop_above,
    _resize,
    apply_print,
    compose_pair,
    extend_canvas,
    hair_over_face,
    occlude_face,
    print_degrade,
    printed_face_crop,
)

__all__ = ["ATTRIBUTION", "BONA_FIDE_CAPTURES", "DEFAULT_BONA_FIDE", "DEFAULT_SPECIES", "MANIFEST_COLUMNS",
           "MULTI_PERSON", "SPECIES", "Canvas", "Source", "SynthConfig", "apply_print", "compose_pair",
           "extend_canvas", "find_tem", "generate_for_wearer", "generate_set", "hair_over_face", "list_sources",
           "locate_eyes", "main", "occlude_face", "print_degrade", "printed_face_crop", "select_sources"]

#: every attack species the generator makes (see the module docstring)
SPECIES = ("tshirt_face_visible", "tshirt_face_occluded", "tshirt_head_cropped", "tshirt_head_turned_approx",
           "tshirt_large_rotated", "tshirt_small_high", "tshirt_multi_person")
#: the species made by default (:class:`SynthConfig`, ``synth`` without ``--species``)
DEFAULT_SPECIES = SPECIES[:4]
#: species and captures that need a second wearer in the frame
MULTI_PERSON = ("tshirt_multi_person", "multi_person")
BONA_FIDE_CAPTURES = ("extended", "portrait", "multi_person")
DEFAULT_BONA_FIDE = BONA_FIDE_CAPTURES[:2]
MANIFEST_COLUMNS = ("id", "path", "subject", "label", "species", "capture", "source", "printed_subject",
                    "printed_source", "wearer_source", "other_subjects", "seed", "print_quad", "print_box",
                    "print_angle", "wearer_face_box", "other_face_boxes", "torso_top", "width", "height")

ATTRIBUTION = """# Attribution of the synthetic T-shirt attack images

The images in this folder are **synthetic composites** made by `madpad.pad.synth` from real
photographs. The source photographs (wearers and printed faces) come from:

- Face Research Lab London Set. Lisa DeBruine and Benedict Jones (2017). figshare.
  doi:10.6084/m9.figshare.5047666.v5. CC BY 4.0.
- Young Adult White Faces with Manipulated Versions. Lisa DeBruine and Benedict Jones (2017).
  figshare. doi:10.6084/m9.figshare.4220517.v1. CC BY 4.0.

(when the sources given to the generator are these sets; the manifest's `wearer_source` and
`printed_source` columns name every source file used). License: CC BY 4.0,
https://creativecommons.org/licenses/by/4.0/. The subjects consented to the use of their photos
"in original or altered forms" for research and illustration.

## What was changed

- the wearer photo was rescaled and placed on a larger canvas; the added background and the
  torso/shirt below the shoulders are synthesised (colours sampled from the photo, gradient
  shading, soft folds), not photographed;
- attack images (`label=attack`) carry another subject's face (eye-aligned crop, print-like colour
  loss: reduced saturation and contrast, lifted blacks, dot pattern, noise, blur), warped in
  perspective onto the synthetic chest and shaded with the shirt;
- species `tshirt_face_occluded`: a synthetic board covers the wearer's face;
  `tshirt_head_cropped`: the image is cropped below the wearer's chin;
  `tshirt_head_turned_approx`: the wearer's face is replaced by a synthetic hair texture;
  `tshirt_large_rotated`: a large print, turned in-plane, and the image cropped below the chin;
  `tshirt_small_high`: a small print high on the chest and a board over the wearer's face;
  `tshirt_multi_person`: as the board-covered wearer, joined side by side with a second wearer;
- bona fide images (`label=bona_fide`): the same canvas extension without print (`capture=extended`),
  only rescaled (`capture=portrait`), or two wearers' extended canvases joined side by side with a
  feathered seam (`capture=multi_person`);
- images re-encoded as JPEG.

Generator parameters: see `synth_config.json` in this folder.
"""


@dataclass
class SynthConfig:
    """Parameters of the generator (see the module docstring)."""

    width: int = 600
    pad_x: float = 0.25
    ext_y: float = 0.7
    shoulder_span: float = 1.3
    print_scale: tuple[float, float] = (0.7, 1.0)
    print_offset_y: tuple[float, float] = (0.0, 0.06)
    perspective: float = 0.04
    saturation: tuple[float, float] = (0.55, 0.85)
    contrast: tuple[float, float] = (0.75, 0.9)
    black_lift: float = 22.0
    halftone: float = 0.08
    halftone_period: float = 3.0
    noise: float = 4.0
    blur_sigma: float = 0.8
    large_scale: tuple[float, float] = (1.2, 1.6)
    large_ext_y: float = 1.3
    rotation: tuple[float, float] = (5.0, 30.0)
    small_scale: tuple[float, float] = (0.35, 0.5)
    pair_overlap: tuple[float, float] = (0.1, 0.2)
    pair_shift: float = 0.06
    species: tuple[str, ...] = DEFAULT_SPECIES
    bona_fide: tuple[str, ...] = DEFAULT_BONA_FIDE
    jpeg_quality: int = 92
    seed: int = 0

    def __post_init__(self):
        bad = [s for s in self.species if s not in SPECIES]
        if bad:
            raise UsageError(f"unknown species {bad}; choose from {list(SPECIES)}")
        bad = [b for b in self.bona_fide if b not in BONA_FIDE_CAPTURES]
        if bad:
            raise UsageError(f"unknown bona fide capture {bad}; choose from {list(BONA_FIDE_CAPTURES)}")
        if int(self.width) < 64:
            raise UsageError(f"width must be >= 64 pixels; got {self.width}")


# --------------------------------------------------------------------------- sources
@dataclass
class Source:
    path: Path
    subject: str
    eyes: np.ndarray | None = None  # (2, 2) left/right eye centre (image left first), or None = detect


def _read_tem_eyes(tem: Path) -> np.ndarray | None:
    try:
        lines = tem.read_text(encoding="utf-8", errors="replace").split("\n")
        n = int(lines[0].strip())
        if n < 2:
            return None
        pts = np.array([[float(v) for v in lines[1 + i].split()[:2]] for i in range(2)])
    except (OSError, ValueError, IndexError):
        return None
    return pts[np.argsort(pts[:, 0])]


def find_tem(image_path: Path) -> Path | None:
    """``X.tem`` beside the image, or ``../landmarks/X.tem`` (FRLL layout)."""
    for cand in (image_path.with_suffix(".tem"), image_path.parent.parent / "landmarks" / (image_path.stem + ".tem")):
        if cand.is_file():
            return cand
    return None


def list_sources(folder, *, tag: str) -> list[Source]:
    d = Path(folder)
    if not d.is_dir():
        raise UsageError(f"source folder not found: {d}")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UsageError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {d}")
    out = []
    for p in files:
        tem = find_tem(p)
        subj = p.stem.split("_")[0]
        out.append(Source(path=p, subject=f"{tag}_{subj}" if tag else subj,
                          eyes=_read_tem_eyes(tem) if tem else None))
    return out


def locate_eyes(image: np.ndarray, src: Source, *, detector=None) -> np.ndarray:
    """Eye centres (2, 2), image-left eye first: from the ``.tem`` file or via madpad.face."""
    if src.eyes is not None:
        return np.asarray(src.eyes, dtype=np.float64)
    from madpad.face import analyze_face

    fa = analyze_face(image, **({"detector": detector} if detector is not None else {}))
    if fa.status != "ok" or fa.landmarks5 is None:
        raise FaceNotFoundError(f"{src.path}: no face to locate the eyes ({fa.status})")
    e = np.asarray(fa.landmarks5, dtype=np.float64)[:2]
    return e[np.argsort(e[:, 0])]


# --------------------------------------------------------------------------- generation
def _fmt_box(b) -> str:
    return ";".join(f"{float(v):.1f}" for v in np.asarray(b).reshape(-1))


def generate_for_wearer(photo: np.ndarray, eyes: np.ndarray, prints: list[tuple[np.ndarray, np.ndarray]],
                        cfg: SynthConfig, rng: np.random.Generator,
                        partner: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict]:
    """All variants for one wearer. ``prints``: one (image, eyes) per species in ``cfg.species``;
    ``partner``: (photo, eyes) of the second person for the two-person species and capture.
    Returns dicts with ``image``, ``label``, ``species``, ``capture`` and geometry fields
    (``wearer_face_box``, ``other_face_boxes``, ``print_quad``, ``print_angle``, ``torso_top``)."""
    if len(prints) != len(cfg.species):
        raise ValueError(f"need one printed face per species ({len(cfg.species)}); got {len(prints)}")
    needs_partner = any(s in MULTI_PERSON for s in (*cfg.species, *cfg.bona_fide))
    if needs_partner and partner is None:
        raise ValueError("the two-person species/capture need a partner photo (another wearer)")
    out = []
    canvas = extend_canvas(photo, eyes, cfg, rng)
    W = canvas.image.shape[1]
    geo = {"torso_top": canvas.torso_top}
    pair_canvas = None
    if needs_partner:
        pair_canvas = extend_canvas(partner[0], partner[1], cfg, rng)

    def pair(img_wearer: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """(image, wearer offset (dx, dy), other face boxes) with the wearer on a random side."""
        left = bool(rng.integers(2))
        a, b = (img_wearer, pair_canvas.image) if left else (pair_canvas.image, img_wearer)
        img, off_a, off_b = compose_pair(a, b, cfg, rng)
        off_w, off_o = (off_a, off_b) if left else (off_b, off_a)
        other = pair_canvas.face_box + np.array([off_o[0], off_o[1], off_o[0], off_o[1]])
        return img, np.array(off_w), [other]

    for cap in cfg.bona_fide:
        if cap == "extended":
            out.append({"image": canvas.image, "label": "bona_fide", "species": "", "capture": "extended",
                        "wearer_face_box": canvas.face_box, **geo})
        elif cap == "portrait":
            ph = canvas.photo_box[3]
            s = W / photo.shape[1]
            img = _resize(photo, W, max(1, round(photo.shape[0] * s)))
            fb = (canvas.face_box - np.array([canvas.photo_box[0], 0, canvas.photo_box[0], 0])) * (W / (canvas.photo_box[2] - canvas.photo_box[0]))
            out.append({"image": img, "label": "bona_fide", "species": "", "capture": "portrait",
                        "wearer_face_box": fb, "torso_top": ph * W / (canvas.photo_box[2] - canvas.photo_box[0])})
        else:  # multi_person
            img, off, others = pair(canvas.image)
            out.append({"image": img, "label": "bona_fide", "species": "", "capture": "multi_person",
                        "wearer_face_box": canvas.face_box + np.tile(off, 2), "other_face_boxes": others,
                        "torso_top": canvas.torso_top + off[1]})
    d = canvas.eye_dist
    large_canvas = None
    for sp, (pimg, peyes) in zip(cfg.species, prints):
        row = {"label": "attack", "species": sp, "capture": "extended"}
        face_box = canvas.face_box.copy()
        cv = canvas
        angle = 0.0
        top = None
        if sp == "tshirt_large_rotated":
            if large_canvas is None:
                from dataclasses import replace

                large_canvas = extend_canvas(photo, eyes, replace(cfg, ext_y=cfg.large_ext_y), rng)
            cv = large_canvas
            scale = rng.uniform(*cfg.large_scale)
            angle = float(rng.uniform(*cfg.rotation) * (1 if rng.integers(2) else -1))
        elif sp == "tshirt_small_high":
            scale = rng.uniform(*cfg.small_scale)
            # just below the collar: ~2.9 eye distances below the eyes (the chin is at ~2)
            top = float(cv.eyes[:, 1].mean() + rng.uniform(2.7, 3.1) * d)
        else:
            scale = rng.uniform(*cfg.print_scale)
        crop = printed_face_crop(pimg, peyes, eye_dist_px=scale * d)
        crop = print_degrade(crop, cfg, rng)
        img, quad = apply_print(cv, crop, cfg, rng, angle=angle, top=top)
        row["print_quad"] = quad
        row["print_angle"] = angle
        row["torso_top"] = cv.torso_top
        if sp in ("tshirt_face_occluded", "tshirt_small_high", "tshirt_multi_person"):
            img = occlude_face(img, face_box, cv.eyes, d, rng)
        elif sp == "tshirt_head_turned_approx":
            img = hair_over_face(img, cv.eyes, d, cv.hair_colour, rng)
        elif sp in ("tshirt_head_cropped", "tshirt_large_rotated"):
            img, y_c = _crop_above(img, quad, cv)
            row["print_quad"] = quad - np.array([0.0, y_c])
            row["capture"] = "cropped"
            row["torso_top"] = cv.torso_top - y_c
            face_box = None
        if sp == "tshirt_multi_person":
            img, off, others = pair(img)
            row["print_quad"] = quad + off
            row["torso_top"] = cv.torso_top + off[1]
            row["other_face_boxes"] = others
            row["capture"] = "multi_person"
            face_box = face_box + np.tile(off, 2)
        row["image"] = img
        row["wearer_face_box"] = face_box
        out.append(row)
    return out


def generate_set(*, wearers: list[Source], faces: list[Source], out_dir, cfg: SynthConfig,
                 limit: int | None = None, progress: bool = True) -> Path:
    """Write images + ``manifest.csv`` + ``ATTRIBUTION.md`` + ``synth_config.json`` into ``out_dir``.

    Printed subjects are drawn (seeded) from ``faces`` excluding the wearer's own subject id. Wearers
    that fail (unreadable image, no eyes) are listed in ``failures.csv`` and skipped.
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    if not faces:
        raise UsageError("no printed-face source images")
    face_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def load_face(i: int):
        if i not in face_cache:
            img = read_image(faces[i].path)
            face_cache[i] = (img, locate_eyes(img, faces[i]))
            if len(face_cache) > 64:
                face_cache.pop(next(iter(face_cache)))
        return face_cache[i]

    rows, failures = [], []
    todo = wearers[:limit] if limit is not None else wearers
    needs_partner = any(s in MULTI_PERSON for s in (*cfg.species, *cfg.bona_fide))
    for wi, w in enumerate(tqdm(todo, desc="T-shirt attacks", unit="wearer", disable=not progress or None)):
        rng = np.random.default_rng([int(cfg.seed), wi])
        partner_src = None
        try:
            photo = read_image(w.path)
            eyes = locate_eyes(photo, w)
            pool = [i for i, f in enumerate(faces)
                    if f.path != w.path and f.subject.split("_")[-1] != w.subject.split("_")[-1]]
            if not pool:
                raise UsageError(f"no printed-face subject other than the wearer {w.subject}")
            picks = rng.choice(pool, size=len(cfg.species), replace=len(pool) < len(cfg.species))
            prints = [load_face(int(i)) for i in picks]
            partner = None
            if needs_partner:
                others = [o for o in todo if o.subject != w.subject]
                if not others:
                    raise UsageError(f"two-person images need a second wearer besides {w.subject}")
                partner_src = others[int(rng.integers(len(others)))]
                pimg = read_image(partner_src.path)
                partner = (pimg, locate_eyes(pimg, partner_src))
            variants = generate_for_wearer(photo, eyes, prints, cfg, rng, partner=partner)
        except (MadpadError, ValueError, OSError) as exc:
            failures.append({"wearer": str(w.path), "error": str(exc)})
            continue
        pi = iter(picks)
        for v in variants:
            tag = v["species"] or f"bona_fide_{v['capture']}"
            rid = f"{w.subject}__{tag}"
            rel = f"images/{rid}.jpg"
            write_image(out / rel, v["image"], quality=cfg.jpeg_quality)
            printed = faces[int(next(pi))] if v["label"] == "attack" else None
            H, W_ = v["image"].shape[:2]
            q = v.get("print_quad")
            rows.append({
                "id": rid, "path": rel, "subject": w.subject, "label": v["label"], "species": v["species"],
                "capture": v["capture"], "source": "madpad.pad.synth",
                "printed_subject": printed.subject if printed else "",
                "printed_source": str(printed.path) if printed else "",
                "wearer_source": str(w.path),
                "other_subjects": partner_src.subject if v.get("other_face_boxes") else "",
                "seed": cfg.seed,
                "print_quad": _fmt_box(q) if q is not None else "",
                "print_box": _fmt_box([q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()]) if q is not None else "",
                "print_angle": f"{float(v['print_angle']):.1f}" if q is not None else "",
                "wearer_face_box": _fmt_box(v["wearer_face_box"]) if v.get("wearer_face_box") is not None else "",
                "other_face_boxes": "|".join(_fmt_box(b) for b in v.get("other_face_boxes") or []),
                "torso_top": f"{float(v['torso_top']):.1f}", "width": W_, "height": H,
            })
    write_table(out / "manifest.csv", rows, columns=MANIFEST_COLUMNS, fmt="csv")
    if failures:
        write_table(out / "failures.csv", failures, columns=("wearer", "error"), fmt="csv")
    atomic_write_text(out / "ATTRIBUTION.md", ATTRIBUTION)
    atomic_write_text(out / "synth_config.json", json.dumps(asdict(cfg), indent=2) + "\n")
    return out / "manifest.csv"


def _choice_list(text: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    items = tuple(x.strip() for x in str(text).split(",") if x.strip())
    return allowed if items == ("all",) else items


def select_sources(sources: list[Source], spec: str | None, *, what: str) -> list[Source]:
    """The sources whose file stem is listed in ``spec`` (comma list or ``@FILE``, one stem per line),
    in the order of ``sources``; None keeps all. An unknown stem is a :class:`UsageError`."""
    if spec is None:
        return sources
    text = str(spec).strip()
    if text.startswith("@"):
        f = Path(text[1:])
        if not f.is_file():
            raise UsageError(f"{what}: list file not found: {f}")
        stems = [ln.strip() for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    else:
        stems = [x.strip() for x in text.split(",") if x.strip()]
    have = {s.path.stem for s in sources}
    missing = [x for x in stems if x not in have]
    if missing:
        raise UsageError(f"{what}: no photo named {missing[:5]} in the folder (give file stems, e.g. "
                         f"{sorted(have)[:2]})")
    want = set(stems)
    return [s for s in sources if s.path.stem in want]


def main(argv=None) -> int:
    from madpad.cli import run_main

    ap = argparse.ArgumentParser(
        prog="python -m madpad.pad synth",
        description="Synthetic T-shirt presentation attacks: extend upper-body photos with a synthetic torso, "
                    "print another subject's face on the chest, hide the wearer's face per species. Writes "
                    "images/, manifest.csv (id,path,subject,label,species,...,printed_subject), ATTRIBUTION.md.")
    ap.add_argument("--source", required=True, help="folder of wearer photos (frontal head-and-shoulders; eyes from "
                    "X.tem beside the image or ../landmarks/X.tem, else detected)")
    ap.add_argument("--faces", required=True, help="folder of printed-face photos (e.g. FRLL neutral/)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--species", default=",".join(DEFAULT_SPECIES),
                    help=f"comma list from {list(SPECIES)}, or 'all' (default: the first four)")
    ap.add_argument("--bona-fide", default=",".join(DEFAULT_BONA_FIDE),
                    help=f"bona fide captures per wearer, comma list from {list(BONA_FIDE_CAPTURES)}, 'all', or "
                         "empty for none (default: extended,portrait)")
    ap.add_argument("--wearers", default=None, help="only these wearer photos: comma list of file stems (e.g. "
                    "003f,008f) or @FILE with one stem per line (a subject-disjoint split)")
    ap.add_argument("--printed", default=None, help="only these printed-face photos (file stems or @FILE, as --wearers)")
    ap.add_argument("--width", type=int, default=600, help="output width in pixels")
    ap.add_argument("--pad-x", type=float, default=0.25, help="canvas added left and right, share of the photo width")
    ap.add_argument("--ext-y", type=float, default=0.7,
                    help="canvas added below, share of the photo height (synthetic torso); 0 for photos that "
                         "already show the chest: the print then goes on the photo itself")
    ap.add_argument("--source-tag", default=None, help="subject id prefix for wearers (default: folder name)")
    ap.add_argument("--faces-tag", default=None, help="subject id prefix for printed faces (default: parent folder name)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N wearers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    def body():
        if args.pad_x < 0 or args.ext_y < 0:
            raise UsageError(f"--pad-x and --ext-y must be >= 0; got {args.pad_x}, {args.ext_y}")
        cfg = SynthConfig(width=args.width, seed=args.seed, pad_x=args.pad_x, ext_y=args.ext_y,
                          species=_choice_list(args.species, SPECIES),
                          bona_fide=_choice_list(args.bona_fide, BONA_FIDE_CAPTURES))
        src, fcs = Path(args.source), Path(args.faces)
        wearers = list_sources(src, tag=args.source_tag if args.source_tag is not None else src.resolve().name)
        faces = list_sources(fcs, tag=args.faces_tag if args.faces_tag is not None else fcs.resolve().parent.name)
        wearers = select_sources(wearers, args.wearers, what="--wearers")
        faces = select_sources(faces, args.printed, what="--printed")
        manifest = generate_set(wearers=wearers, faces=faces, out_dir=args.out, cfg=cfg, limit=args.limit,
                                progress=not args.no_progress)
        with open(manifest, encoding="utf-8") as fh:
            n = sum(1 for _ in fh) - 1
        print(f"wrote {n} images -> {manifest}", file=sys.stderr)
        return 0

    return run_main(body, prog="madpad.pad synth")


if __name__ == "__main__":
    sys.exit(main())
