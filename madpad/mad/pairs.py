"""D-MAD pairs: reading pair files, simulated live captures, and building pair sets from manifests.

* :func:`read_pairs_csv` reads ``id,suspect,live`` (+ optional ``label,species,subjects``)
  with paths absolute or relative to the CSV's folder, validating at the boundary (the
  error names the file, the row and the field).
* :func:`vary_live_capture` simulates a trusted live capture from a studio photo: crop,
  scale, small rotation, colour/gamma, blur, sensor noise and JPEG, all drawn from a seeded
  generator, so the same seed always gives the same image. FRLL's neutral and smiling
  photos share one session (same light, background, camera), which makes the raw smiling
  photo an unrealistically easy "live capture".
* :func:`prepare_suspect` applies the same document-image processing to every suspect
  image (bona fide or morph): resize to a fixed long side and JPEG, so a detector cannot
  separate the classes by file resolution or codec.
* :func:`build_dmad_pairs` makes subject-disjoint train/dev/test pair sets from an image
  manifest and morph manifests: bona fide pair = (enrolment image of X, live capture of X);
  attack pair = (morph of X and Y, live capture of X or of Y). An attack pair goes to a
  split only when every contributor (and the live capture's subject) is in it. Options:
  ``suspect_chains`` (every suspect, bona fide and morph alike, through a seeded
  :mod:`madpad.mad.chains` post-processing chain), ``live_profile`` (:data:`LIVE_PROFILES`,
  e.g. ``gate``); the attack species of a morph is the species its manifest was named with
  (:func:`load_morph_manifests`: ``PATH=SPECIES`` or ``{path, species}``), else its method.
* :func:`reencode_suspects` writes a copy of a pair set with every suspect re-encoded by one chain.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from madpad.errors import ManifestError, UsageError
from madpad.mad.base import LABELS, Pair

log = logging.getLogger(__name__)

PAIR_REQUIRED_COLUMNS = ("id", "suspect", "live")
MAX_LISTED = 5


# --------------------------------------------------------------------------- reading pair files
def read_pairs_csv(path: str | os.PathLike, *, require_labels: bool = False, check_files: bool = True,
                   root: str | os.PathLike | None = None) -> list[Pair]:
    """Read a pair file (CSV or JSONL) into :class:`Pair` rows.

    Columns: ``id,suspect,live`` required; ``label`` (``bona_fide``/``attack``), ``species``
    (attack species, e.g. the morph method), ``subjects`` (``;``-joined) optional unless
    ``require_labels``. Relative paths are taken relative to ``root`` (default: the file's
    folder). Missing files are listed (up to 5) with their rows.
    """
    from madpad.data import read_table, split_subjects
    from madpad.io import resolve_relative_to

    table = read_table(path)
    p = table.path
    missing_cols = [c for c in PAIR_REQUIRED_COLUMNS + (("label",) if require_labels else ()) if c not in table.columns]
    if missing_cols:
        raise ManifestError(f"missing required column(s) {missing_cols}; the header has {table.columns} "
                            f"(a pair file needs id,suspect,live and optionally label,species)", path=p, row=1)
    if not table.rows:
        raise ManifestError("has no pairs (only a header)", path=p)
    base = Path(root) if root is not None else p.parent
    out: list[Pair] = []
    seen: dict[str, int] = {}
    missing: list[str] = []
    standard = {"id", "suspect", "live", "label", "species", "subjects"}
    for raw, row in zip(table.rows, table.row_numbers):
        pid = str(raw.get("id", "")).strip()
        if not pid:
            raise ManifestError("is empty", path=p, row=row, field="id")
        if pid in seen:
            raise ManifestError(f"duplicate id {pid!r} (first at row {seen[pid]})", path=p, row=row, field="id")
        seen[pid] = row
        paths = {}
        for fld in ("suspect", "live"):
            val = str(raw.get(fld, "") or "").strip()
            if not val:
                raise ManifestError("is empty; give an image path", path=p, row=row, field=fld)
            full = resolve_relative_to(base, val)
            if check_files and not full.is_file():
                missing.append(f"row {row} {fld}={val}")
            paths[fld] = full
        label = str(raw.get("label", "") or "").strip() or None
        if label is not None and label not in LABELS:
            raise ManifestError(f"must be one of {list(LABELS)}; got {label!r}", path=p, row=row, field="label")
        if require_labels and label is None:
            raise ManifestError(f"is empty; training needs {list(LABELS)}", path=p, row=row, field="label")
        species = str(raw.get("species", "") or "").strip()
        if label == "attack" and not species:
            raise ManifestError("is empty; an attack pair must name its attack species (e.g. the morph method)",
                                path=p, row=row, field="species")
        out.append(Pair(id=pid, suspect=paths["suspect"], live=paths["live"], label=label,
                        species=species if label == "attack" else ("" if label == "bona_fide" else species),
                        subjects=split_subjects(raw.get("subjects")),
                        extra={k: v for k, v in raw.items() if k not in standard}))
    if missing:
        more = f" (and {len(missing) - MAX_LISTED} more)" if len(missing) > MAX_LISTED else ""
        raise ManifestError(f"{len(missing)} image file(s) not found: {'; '.join(missing[:MAX_LISTED])}{more}",
                            path=p)
    return out


def write_scores_csv(path: str | os.PathLike, pairs: Sequence[Pair], scores: np.ndarray,
                     *, status: Sequence[str] | None = None, errors: Sequence[str] | None = None) -> Path:
    """Write ``id,score,label,species`` (+ ``status,error``) atomically (the PAD score CSV contract).

    A ``subject`` column (the live capture's subject, else the first listed subject) is added
    when every pair names one; ``python -m madpad.report pad`` then bootstraps by subject."""
    from madpad.data import write_table

    rows = []
    subjects = [pr.extra.get("live_subject") or (pr.subjects[0] if pr.subjects else "") for pr in pairs]
    with_subject = bool(subjects) and all(subjects)
    for i, (pr, s) in enumerate(zip(pairs, scores)):
        row = {"id": pr.id, "score": "" if not np.isfinite(s) else repr(float(s)),
               "label": pr.label or "", "species": pr.species if pr.label == "attack" else "",
               "status": "ok" if status is None else status[i], "error": "" if errors is None else errors[i]}
        if with_subject:
            row["subject"] = subjects[i]
        rows.append(row)
    cols = ["id", "score", "label", "species", "status", "error"] + (["subject"] if with_subject else [])
    return write_table(path, rows, columns=cols)


# --------------------------------------------------------------------------- image variation
def _seed_of(*parts) -> int:
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "little")


@dataclass
class LiveCaptureVariation:
    """Ranges of the simulated live-capture variation (``strength`` scales all of them)."""

    crop: tuple = (0.70, 0.95)        # crop side as a fraction of the shorter image side
    shift: float = 0.06               # max centre shift (fraction of the crop side)
    rotate_deg: float = 6.0
    out_size: tuple = (320, 720)      # output side in pixels (square crop)
    brightness: float = 0.18          # multiplicative +-
    contrast: float = 0.18
    saturation: float = 0.25
    white_balance: float = 0.08       # per-channel gain +-
    gamma: tuple = (0.8, 1.25)
    blur_prob: float = 0.6
    blur_sigma: tuple = (0.3, 1.6)
    noise_sigma: tuple = (0.0, 6.0)   # in 8-bit grey levels
    jpeg_quality: tuple = (55, 95)
    exposure: tuple = (1.0, 1.0)      # extra exposure factor (< 1 darkens); drawn only when not (1, 1)
    perspective: float = 0.0          # corner jitter (fraction of the side): small pose change; 0 = none


#: Named live-capture profiles (``BuildConfig.live_profile``). ``gate``: closer to real border
#: gates than ``default``: wider exposure (mostly darker), stronger blur and compression, and
#: small pose (perspective) and scale changes.
LIVE_PROFILES: dict[str, LiveCaptureVariation] = {
    "default": LiveCaptureVariation(),
    "gate": LiveCaptureVariation(crop=(0.6, 0.95), shift=0.08, rotate_deg=8.0, out_size=(240, 640), brightness=0.25,
                                 contrast=0.25, gamma=(0.8, 1.6), blur_prob=0.8, blur_sigma=(0.5, 2.5),
                                 noise_sigma=(1.0, 8.0), jpeg_quality=(30, 85), exposure=(0.45, 1.1),
                                 perspective=0.04),
}


def live_profile(name: str) -> LiveCaptureVariation:
    """The :class:`LiveCaptureVariation` of a named profile (:data:`LIVE_PROFILES`)."""
    if name not in LIVE_PROFILES:
        import difflib

        close = difflib.get_close_matches(str(name), list(LIVE_PROFILES), n=1)
        raise UsageError(f"unknown live profile {name!r}{'; did you mean ' + repr(close[0]) + '?' if close else ''} "
                         f"(known: {', '.join(LIVE_PROFILES)})")
    return LIVE_PROFILES[name]


def vary_live_capture(image: np.ndarray, *, seed: int, strength: float = 1.0,
                      ranges: LiveCaptureVariation | None = None) -> np.ndarray:
    """A simulated live capture of ``image`` (RGB uint8), deterministic for a given ``seed``."""
    import cv2

    from madpad.io import as_rgb_uint8

    r = ranges or LiveCaptureVariation()
    img = as_rgb_uint8(image)
    rng = np.random.default_rng(seed)
    s = float(strength)
    h, w = img.shape[:2]
    side = min(h, w) * (1.0 - s * (1.0 - rng.uniform(*r.crop)))
    cx = w / 2 + rng.uniform(-1, 1) * r.shift * s * side
    cy = h / 2 + rng.uniform(-1, 1) * r.shift * s * side
    angle = rng.uniform(-1, 1) * r.rotate_deg * s
    out = int(round(rng.uniform(*r.out_size)))
    # one affine warp: rotate about the crop centre, then map the crop square to out x out
    scale = out / side
    M = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    M[0, 2] += out / 2 - cx
    M[1, 2] += out / 2 - cy
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    x = cv2.warpAffine(img, M, (out, out), flags=interp, borderMode=cv2.BORDER_REFLECT101).astype(np.float32) / 255.0
    # colour: brightness, contrast, saturation, white balance, gamma
    x = x * (1 + rng.uniform(-1, 1) * r.brightness * s)
    mean = x.mean()
    x = (x - mean) * (1 + rng.uniform(-1, 1) * r.contrast * s) + mean
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * (1 + rng.uniform(-1, 1) * r.saturation * s)
    x = x * (1 + rng.uniform(-1, 1, size=3) * r.white_balance * s)[None, None, :]
    x = np.clip(x, 0, 1) ** (1 + (rng.uniform(*r.gamma) - 1) * s)
    # optics and sensor
    if rng.uniform() < r.blur_prob:
        x = cv2.GaussianBlur(x, (0, 0), sigmaX=max(0.05, rng.uniform(*r.blur_sigma) * s))
    x = x * 255.0 + rng.normal(0, rng.uniform(*r.noise_sigma) * s, size=x.shape)
    x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    q = int(round(100 - (100 - rng.uniform(*r.jpeg_quality)) * s))
    if tuple(r.exposure) != (1.0, 1.0):  # drawn only when set, so the default stream is unchanged
        e = 1.0 + (rng.uniform(*r.exposure) - 1.0) * s
        x = np.clip(np.rint(x.astype(np.float32) * e), 0, 255).astype(np.uint8)
    if r.perspective > 0:
        d = rng.uniform(-1, 1, size=(4, 2)) * r.perspective * s * out
        src = np.float32([[0, 0], [out - 1, 0], [out - 1, out - 1], [0, out - 1]])
        P = cv2.getPerspectiveTransform(src, (src + d).astype(np.float32))
        x = cv2.warpPerspective(x, P, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    return jpeg_roundtrip(x, quality=q)


def jpeg_roundtrip(image: np.ndarray, *, quality: int) -> np.ndarray:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def prepare_suspect(image: np.ndarray, *, long_side: int = 600, jpeg_quality: int = 90) -> np.ndarray:
    """Document-image processing applied to every suspect image: resize (long side) + JPEG.
    ``long_side=0`` keeps the size."""
    import cv2

    from madpad.io import as_rgb_uint8

    img = as_rgb_uint8(image)
    if long_side and max(img.shape[:2]) != long_side:
        f = long_side / max(img.shape[:2])
        size = (max(1, int(round(img.shape[1] * f))), max(1, int(round(img.shape[0] * f))))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
    return jpeg_roundtrip(img, quality=jpeg_quality) if jpeg_quality else img


# --------------------------------------------------------------------------- building pair sets
@dataclass
class BuildConfig:
    """Options of :func:`build_dmad_pairs` (all keyword; see docs/detect.md)."""

    fractions: tuple = (0.6, 0.2, 0.2)
    split_names: tuple = ("train", "dev", "test")
    seed: int = 0
    enrolment_capture: str = "enrolment"
    live_capture: str = "probe"
    live_variants: int = 2          # bona fide pairs per subject (each with its own live capture)
    attack_live: str = "both"       # "both": one attack pair per contributor; "random": one of them
    live_strength: float = 1.0
    suspect_long_side: int = 600
    suspect_jpeg_quality: int = 90
    max_morphs_per_method: int = 0  # 0 = all
    # processing chain of every suspect, bona fide and morph alike (madpad.mad.chains): a profile
    # name ("attacker", "issuance", ...; drawn per suspect, seeded) or a fixed chain spec
    # ("sharpen+jpeg75"); "" or "none" = no chain (the suspect is only resized + JPEG'd)
    suspect_chains: str = ""
    live_profile: str = "default"   # LIVE_PROFILES name of the simulated live captures ("gate")


@dataclass
class BuiltPairs:
    directory: Path
    files: dict                       # split -> pair CSV path
    counts: dict                      # split -> {"bona_fide": n, "attack": n}
    dropped_morphs: int = 0
    failures: list = field(default_factory=list)


def build_dmad_pairs(images, morphs: Iterable, out_dir: str | os.PathLike, *, config: BuildConfig | None = None,
                     progress: bool = True) -> BuiltPairs:
    """Build subject-disjoint D-MAD pair sets under ``out_dir``.

    ``images``: image records (``madpad.data.load_images`` / ``madpad.data.frll.frll_images``)
    with ``capture`` telling enrolment images from live-capture sources (a subject with only
    one image uses it for both). ``morphs``: morph records (``madpad.data.load_morphs``),
    failed rows skipped. Writes ``suspect/*.jpg`` (processed suspects), ``live/*.jpg``
    (simulated live captures) and ``pairs_<split>.csv`` (``id,suspect,live,label,species,
    subjects`` + ``live_subject,split``), paths relative to ``out_dir``. Existing image files
    are kept (resume). Returns file paths and per-split counts.
    """
    from tqdm.auto import tqdm

    from madpad.data import split_by_subject, write_table
    from madpad.io import read_image, write_image
    from madpad.mad.chains import apply_chain, chain_or_profile, chain_rng, random_chain

    cfg = config or BuildConfig()
    if cfg.attack_live not in ("both", "random"):
        raise UsageError(f"attack_live must be 'both' or 'random'; got {cfg.attack_live!r}")
    live_ranges = live_profile(cfg.live_profile)
    chain_profile, fixed_chain = chain_or_profile(cfg.suspect_chains or "")
    with_chains = chain_profile not in (None, "none") or bool(fixed_chain)
    # processed images of another chain setting or live profile get other names (resume stays right)
    chain_tag = f"__c{_seed_of(cfg.suspect_chains, cfg.seed) % 16 ** 8:08x}" if with_chains else ""
    live_tag = "" if cfg.live_profile == "default" else f"_{cfg.live_profile}"

    def suspect_chain(key: str):
        if not with_chains:
            return None
        return fixed_chain if chain_profile is None else random_chain(
            chain_rng(cfg.seed, "suspect_chain", key), chain_profile)
    out = Path(out_dir)
    (out / "suspect").mkdir(parents=True, exist_ok=True)
    (out / "live").mkdir(parents=True, exist_ok=True)

    enrol: dict[str, Path] = {}
    live_src: dict[str, Path] = {}
    for rec in images:
        if rec.label != "bona_fide":
            continue
        subj = rec.subject
        if rec.capture == cfg.enrolment_capture and subj not in enrol:
            enrol[subj] = Path(rec.path)
        elif rec.capture == cfg.live_capture and subj not in live_src:
            live_src[subj] = Path(rec.path)
    for subj in list(enrol):
        live_src.setdefault(subj, enrol[subj])
    for subj in list(live_src):
        enrol.setdefault(subj, live_src[subj])
    if not enrol:
        raise UsageError("no bona fide images in the image manifest")
    splits = split_by_subject(enrol.keys(), fractions=cfg.fractions, seed=cfg.seed, names=cfg.split_names)
    where = {s: n for n, ss in splits.items() for s in ss}

    morph_list = [m for m in morphs if getattr(m, "ok", True) and m.path is not None]
    if cfg.max_morphs_per_method:
        by_method: dict[str, list] = defaultdict(list)
        for m in morph_list:
            by_method[morph_species(m)].append(m)
        rng = np.random.default_rng(cfg.seed)
        morph_list = []
        for meth in sorted(by_method):
            ms = by_method[meth]
            idx = sorted(rng.permutation(len(ms))[:cfg.max_morphs_per_method])
            morph_list += [ms[i] for i in idx]

    rows: dict[str, list] = {n: [] for n in cfg.split_names}
    jobs: list[tuple[str, Path, str, dict]] = []  # (kind, src, rel_out, meta)

    def live_rel(subj: str, k: int) -> str:
        return f"live/{subj}_v{k}{live_tag}.jpg"

    def suspect_rel(key: str) -> str:
        return f"suspect/{key}{chain_tag}.jpg"

    def suspect_job(src: Path, key: str) -> tuple[str, dict]:
        chain = suspect_chain(key)
        jobs.append(("suspect", src, suspect_rel(key), {"chain": chain, "key": key}))
        return suspect_rel(key), ({"suspect_chain": str(chain)} if chain is not None else {})

    for subj in sorted(enrol):
        split = where[subj]
        srel, chain_col = suspect_job(enrol[subj], f"bf_{subj}")
        for k in range(cfg.live_variants):
            lrel = live_rel(subj, k)
            jobs.append(("live", live_src[subj], lrel, {"seed": _seed_of(cfg.seed, "live", subj, k)}))
            rows[split].append({"id": f"bf_{subj}_v{k}", "suspect": srel, "live": lrel, "label": "bona_fide",
                                "species": "", "subjects": subj, "live_subject": subj, "split": split, **chain_col})
    dropped = 0
    for m in morph_list:
        homes = {where.get(m.subject_a), where.get(m.subject_b)}
        if len(homes) != 1 or None in homes:
            dropped += 1
            continue
        split = homes.pop()
        species = morph_species(m)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{species}_{m.id}")
        srel, chain_col = suspect_job(Path(m.path), f"m_{safe}")
        rng = np.random.default_rng(_seed_of(cfg.seed, "attack", species, m.id))
        who = [m.subject_a, m.subject_b]
        if cfg.attack_live == "random":
            who = [who[int(rng.integers(2))]]
        for subj in who:
            if subj not in live_src:
                continue
            k = int(rng.integers(max(1, cfg.live_variants)))
            rows[split].append({"id": f"m_{safe}_{subj}", "suspect": srel, "live": live_rel(subj, k),
                                "label": "attack", "species": species, "subjects": f"{m.subject_a};{m.subject_b}",
                                "live_subject": subj, "split": split, **chain_col})

    failures = []
    failed_rel: set[str] = set()
    for kind, src, rel, meta in tqdm(jobs, desc="building pairs", disable=None if progress else True):
        dst = out / rel
        if dst.is_file():
            continue
        try:
            img = read_image(src)
            if kind == "live":
                img = vary_live_capture(img, seed=meta["seed"], strength=cfg.live_strength, ranges=live_ranges)
                write_image(dst, img, quality=95)
            else:
                img = prepare_suspect(img, long_side=cfg.suspect_long_side, jpeg_quality=0)
                if meta["chain"] is not None:  # the same chain distribution for bona fide and morph suspects
                    img = apply_chain(img, meta["chain"], chain_rng(cfg.seed, "suspect_chain_noise", meta["key"]))
                write_image(dst, img, quality=cfg.suspect_jpeg_quality or 95)
        except Exception as exc:  # per-item failure: record and carry on
            failures.append({"source": str(src), "output": rel, "error": f"{type(exc).__name__}: {exc}"})
            failed_rel.add(rel)
    files, counts = {}, {}
    for split, rs in rows.items():
        rs = [r for r in rs if r["suspect"] not in failed_rel and r["live"] not in failed_rel]
        f = out / f"pairs_{split}.csv"
        write_table(f, rs, columns=["id", "suspect", "live", "label", "species", "subjects", "live_subject", "split"]
                    + (["suspect_chain"] if with_chains else []))
        files[split] = f
        counts[split] = {"bona_fide": sum(r["label"] == "bona_fide" for r in rs),
                         "attack": sum(r["label"] == "attack" for r in rs)}
    if failures:
        write_table(out / "failures.csv", failures, columns=["source", "output", "error"])
    return BuiltPairs(out, files, counts, dropped, failures)


def pair_subject(p: Pair) -> str:
    """The subject whose live capture a pair holds (``live_subject``, else the first subject,
    else the pair id)."""
    return str(p.extra.get("live_subject") or (p.subjects[0] if p.subjects else p.id))


def add_dev_pairs(dev: Sequence[Pair] | None, extra: Sequence[tuple[str, Sequence[Pair]]], *,
                  others: Mapping[str, Sequence[Pair]]) -> list[Pair]:
    """``dev`` followed by the pairs of every ``(source, pairs)`` of ``extra`` (more dev subjects,
    e.g. another dataset). Dev subjects must stay disjoint from the other splits and pair ids
    unique: an extra pair whose id is already used, or whose live-capture subject
    (:func:`pair_subject`) is a subject of a split of ``others`` (``{"train": ..., "test": ...}``),
    is a one-line :class:`UsageError` naming ``source`` and the pair."""
    out = list(dev or [])
    ids = {p.id for p in out} | {p.id for ps in others.values() for p in (ps or [])}
    subjects = {k: {pair_subject(p) for p in (ps or [])} for k, ps in others.items()}
    for source, pairs in extra:
        for p in pairs:
            if p.id in ids:
                raise UsageError(f"{source}: pair id {p.id!r} is already used")
            for k, subs in subjects.items():
                if pair_subject(p) in subs:
                    raise UsageError(f"{source}: pair {p.id!r}: subject {pair_subject(p)!r} is a {k} subject")
            ids.add(p.id)
            out.append(p)
    return out


def filter_pairs(pairs: Sequence[Pair], *, species: Sequence[str] | None = None) -> list[Pair]:
    """Keep bona fide pairs and the attack pairs whose species is in ``species`` (None = all).
    Used for the cross-method protocol: train on one morph method, test on another."""
    if species is None:
        return list(pairs)
    keep = set(species)
    return [p for p in pairs if p.label != "attack" or p.species in keep]


# --------------------------------------------------------------------------- morph species
def morph_species(morph) -> str:
    """The attack species of a morph record: the species its manifest was named with
    (:func:`load_morph_manifests`, kept in ``extra["species"]``), else its morph method."""
    return str((getattr(morph, "extra", None) or {}).get("species") or "").strip() or morph.method


def parse_morph_source(entry) -> tuple[str, str | None]:
    """``(manifest path, species or None)`` of one ``data.build.morphs`` entry: ``PATH``,
    ``PATH=SPECIES`` or a mapping ``{path: PATH, species: SPECIES}``."""
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - {"path", "species"})
        if unknown or not str(entry.get("path") or "").strip():
            raise UsageError(f"a morph manifest entry is PATH, PATH=SPECIES or {{path: PATH, species: SPECIES}}; "
                             f"got {entry!r}")
        species = str(entry.get("species") or "").strip() or None
        return str(entry["path"]).strip(), species
    text = str(entry).strip()
    head, sep, tail = text.rpartition("=")
    if sep and head and tail.strip() and not any(c in tail for c in "/\\"):
        return head.strip(), tail.strip()
    return text, None


def load_morph_manifests(entries) -> list:
    """Morph records of several manifests (:func:`madpad.data.load_morphs`), each entry a
    ``PATH``, ``PATH=SPECIES`` or ``{path, species}`` (:func:`parse_morph_source`). A named
    species is stored in every record's ``extra["species"]`` and becomes the attack species of
    its pairs (several families made by the same registered method stay apart)."""
    from madpad.data import load_morphs

    if isinstance(entries, (str, dict)):
        entries = [entries]
    out = []
    for entry in entries:
        path, species = parse_morph_source(entry)
        for m in load_morphs(path):
            if species:
                m.extra = {**(m.extra or {}), "species": species}
            out.append(m)
    return out


# --------------------------------------------------------------------------- re-encoded copies
def reencode_suspects(pairs: Sequence[Pair], chain, out_dir: str | os.PathLike, *, seed: int = 0,
                      name: str = "pairs.csv", progress: bool = False) -> list[Pair]:
    """A copy of a pair set whose suspects are ALL passed through one ``chain`` (spec or
    :class:`~madpad.mad.chains.Chain`; its open parameters drawn per suspect, seeded by ``seed``
    and the suspect file name): writes ``out_dir/suspect/*.png`` (lossless, so the chain's own
    output is what is scored) and ``out_dir/<name>`` (live paths point at the original live
    images, relative to ``out_dir``). Existing images are kept (resume). Returns the new pairs
    (paths absolute), labels, species and subjects unchanged. Used to report every figure also
    with all suspects re-encoded by one chain."""
    from tqdm.auto import tqdm

    from madpad.data import write_table
    from madpad.io import read_image, write_image
    from madpad.mad.chains import apply_chain, chain_rng, parse_chain

    ch = parse_chain(chain)
    out = Path(out_dir)
    (out / "suspect").mkdir(parents=True, exist_ok=True)
    new_path: dict[str, Path] = {}
    for pr in pairs:
        if not isinstance(pr.suspect, (str, os.PathLike)):
            raise UsageError(f"pair {pr.id!r}: reencode_suspects needs image paths, not arrays")
        src = Path(pr.suspect).resolve()
        if str(src) not in new_path:
            new_path[str(src)] = out / "suspect" / f"{src.stem}_{_seed_of(src) % 16 ** 6:06x}.png"
    for src, dst in tqdm(sorted(new_path.items()), desc=f"re-encode ({ch})", disable=None if progress else True):
        if dst.is_file():
            continue
        img = apply_chain(read_image(src), ch, chain_rng(seed, "reencode", Path(src).name))
        write_image(dst, img)
    new_pairs = [Pair(id=pr.id, suspect=new_path[str(Path(pr.suspect).resolve())], live=pr.live, label=pr.label,
                      species=pr.species, subjects=pr.subjects, extra={**pr.extra, "suspect_chain": str(ch)})
                 for pr in pairs]
    extras = sorted({k for pr in new_pairs for k in pr.extra})
    rows = [{"id": pr.id, "suspect": os.path.relpath(pr.suspect, out), "live": os.path.relpath(Path(pr.live), out),
             "label": pr.label or "", "species": pr.species, "subjects": ";".join(pr.subjects),
             **{k: pr.extra.get(k, "") for k in extras}} for pr in new_pairs]
    write_table(out / name, rows, columns=["id", "suspect", "live", "label", "species", "subjects"] + extras)
    return new_pairs
