"""Training a detector from a config dict: library form of ``python -m madpad.detect train``.

:func:`load_train_config` resolves a config (defaults :data:`TRAIN_DEFAULTS` < YAML file <
``key=value`` overrides, ``$VAR`` and ``~`` expanded in paths); :func:`train_from_config`
optionally builds D-MAD pairs (``data.build``), builds the detector named by ``detector`` with
``params``, fits it on ``data.train`` (model selection on ``data.dev``; ``data.train_species`` /
``data.dev_species`` / ``data.test_species`` keep some attack species per split, and dev may
hold species absent from training: leave-one-method-out dev), writes the checkpoint
to ``out`` and, for ``data.dev`` / ``data.test``, ``out/scores_<split>.csv`` and the error rates
in ``out/train_summary.json``. The command line (:mod:`madpad.mad.cli`) and the pipeline stage
(:mod:`madpad.pipeline.stages.dmad`) both call these. Scores: higher = more likely a morph.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from madpad.errors import UsageError
from madpad.mad.scoring import feature_cache, score_with_status

log = logging.getLogger(__name__)

Echo = Callable[[str], None]

TRAIN_DEFAULTS: dict = {
    "detector": "embedding_logreg",
    "params": {},
    "data": {
        "train": None,
        "dev": None,
        "test": None,
        "train_species": None,   # attack species kept for train (+ dev unless dev_species) (cross-method protocol)
        "dev_species": None,     # attack species kept for dev (default: train_species); may name species absent
                                 # from training (leave-one-method-out dev: model selection rewards generalisation)
        "test_species": None,    # attack species kept for test
        "extra_dev": [],         # more labelled dev pair CSVs (other subjects, e.g. another dataset): appended to dev
        "build": {
            "frll": None,          # FRLL folder (neutral/, smiling/)
            "images": None,        # or an image manifest (id,path,subject,label,...,capture)
            "images_root": None,
            "morphs": [],          # morph manifests (from python -m madpad.generate)
            "out": None,           # default: <out>/pairs
            "fractions": [0.6, 0.2, 0.2],
            "seed": 0,
            "live_variants": 2,
            "attack_live": "both",
            "live_strength": 1.0,
            "suspect_long_side": 600,
            "suspect_jpeg_quality": 90,
            "max_morphs_per_method": 0,
            "suspect_chains": "",  # chain of every suspect: profile (attacker, issuance) or spec (sharpen+jpeg75)
            "live_profile": "default",  # simulated live captures: default or gate (madpad.mad.pairs.LIVE_PROFILES)
        },
    },
    "out": None,
    "cache": None,          # per-image feature cache folder (default: $MADPAD_CACHE/mad-features if set)
    "seed": 0,
    "threads": None,
}


def load_train_config(config_path: str | os.PathLike | None = None, set_items: Sequence[str] = ()) -> dict:
    """:data:`TRAIN_DEFAULTS` < the YAML file < ``key=value`` items (dotted keys), with key and
    type checks; paths with ``$VAR`` / ``~`` expanded (see :func:`expand_paths`)."""
    from madpad.cli import resolve_config

    cfg = resolve_config(TRAIN_DEFAULTS, config_path=config_path, set_items=list(set_items))
    expand_paths(cfg)
    return cfg


def expand_paths(cfg: dict) -> None:
    """Expand '$VAR' / '${VAR}' and '~' in path values (so configs can say
    ${MADPAD_SHARED}/data/frll); relative paths stay relative to the working directory."""

    def fix(v):
        if not v:
            return v
        v = os.path.expanduser(os.path.expandvars(str(v)))
        if "$" in v:
            raise UsageError(f"config path {v!r} names an environment variable that is not set")
        return v

    d = cfg["data"]
    for k in ("train", "dev", "test"):
        d[k] = fix(d[k])
    extra = d["extra_dev"]
    if not (extra is None or isinstance(extra, str)
            or isinstance(extra, list) and all(isinstance(v, str) for v in extra)):
        raise UsageError(f"data.extra_dev must be a pair CSV path or a list of them; got {extra!r}")
    d["extra_dev"] = [fix(v) for v in ([extra] if isinstance(extra, str) else extra or [])]
    b = d["build"]
    for k in ("frll", "images", "images_root", "out"):
        b[k] = fix(b[k])
    b["morphs"] = [{**m, "path": fix(m.get("path"))} if isinstance(m, dict) else fix(m)
                   for m in ([b["morphs"]] if isinstance(b["morphs"], (str, dict)) else (b["morphs"] or []))]
    cfg["out"] = fix(cfg["out"])
    cfg["cache"] = fix(cfg["cache"])
    for k, v in list(cfg.get("params", {}).items()):
        if k in ("model_config", "pretrained") and isinstance(v, str) and ("/" in v or v.endswith(".json")):
            cfg["params"][k] = fix(v)


def evaluate(pairs, scores, status) -> dict:
    """Error rates (:func:`madpad.mad.evaluation.summarize`) of the pairs scored ``ok``;
    ``{}`` when a pair has no label."""
    from madpad.mad.evaluation import summarize

    ok = np.array([s == "ok" for s in status]) & np.isfinite(scores)
    lab = [p for p, k in zip(pairs, ok) if k]
    if not lab or any(p.label is None for p in lab):
        return {}
    y = np.array([p.y for p in lab])
    out = summarize(scores[ok], y, [p.species for p in lab])
    out["n_failed"] = int((~ok).sum())
    return out


def format_rates(m: dict) -> str:
    """One line: D-EER and BPCER at APCER 1/5/10 % of an :func:`evaluate` dict."""
    if not m:
        return "(no labels)"
    f = lambda v: "nan" if v != v else f"{100 * v:.2f}%"
    return (f"D-EER {f(m['d_eer'])}, BPCER@APCER1% {f(m['bpcer_at_apcer_1'])}, 5% {f(m['bpcer_at_apcer_5'])}, "
            f"10% {f(m['bpcer_at_apcer_10'])} ({m['n_bona_fide']} bona fide, {m['n_attack']} attack"
            f"{', ' + str(m['n_failed']) + ' failed' if m.get('n_failed') else ''})")


def _build_pairs(cfg: dict, echo: Echo) -> dict:
    from madpad.data import load_images
    from madpad.mad.pairs import BuildConfig, build_dmad_pairs, load_morph_manifests

    b = cfg["data"]["build"]
    if b["frll"] and b["images"]:
        raise UsageError("data.build: give either 'frll' (a folder) or 'images' (a manifest), not both")
    if b["frll"]:
        from madpad.data.frll import frll_images

        images = frll_images(b["frll"])
    else:
        images = load_images(b["images"], root=b["images_root"])
    morph_files = b["morphs"] or []
    if isinstance(morph_files, str):
        morph_files = [morph_files]
    if not morph_files:
        raise UsageError("data.build.morphs: list at least one morph manifest (python -m madpad.generate output)")
    morphs = load_morph_manifests(morph_files)  # entries PATH, PATH=SPECIES or {path, species}
    out = Path(b["out"] or Path(cfg["out"]) / "pairs")
    bc = BuildConfig(fractions=tuple(b["fractions"]), seed=int(b["seed"]), live_variants=int(b["live_variants"]),
                     attack_live=b["attack_live"], live_strength=float(b["live_strength"]),
                     suspect_long_side=int(b["suspect_long_side"]), suspect_jpeg_quality=int(b["suspect_jpeg_quality"]),
                     max_morphs_per_method=int(b["max_morphs_per_method"]),
                     suspect_chains=str(b["suspect_chains"] or ""), live_profile=str(b["live_profile"]))
    built = build_dmad_pairs(images, morphs, out, config=bc)
    echo(f"pairs built in {out}: " + ", ".join(f"{k}: {v['bona_fide']} bona fide + {v['attack']} attack"
                                               for k, v in built.counts.items())
         + (f"; {built.dropped_morphs} morphs dropped (contributors in different splits)" if built.dropped_morphs else "")
         + (f"; {len(built.failures)} image failures (see failures.csv)" if built.failures else ""))
    data = cfg["data"]
    for split in ("train", "dev", "test"):
        if not data[split] and split in built.files:
            data[split] = str(built.files[split])
    return {"counts": built.counts, "dropped_morphs": built.dropped_morphs, "failures": len(built.failures),
            "directory": str(out)}


def species_option(value, *, field: str) -> list[str] | None:
    """A ``data.*_species`` option as a list of names (``None`` or ``[]`` = all species); a one-line
    :class:`UsageError` naming ``field`` when it is neither a name nor a list of names."""
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(s, str) and s for s in items):
        raise UsageError(f"{field} must be a species name or a list of names; got {value!r}")
    return list(items)


def select_species(pairs, species, *, field: str, path, strict: bool = True, warn: Echo | None = None):
    """Bona fide pairs + the attack pairs of ``species`` (:func:`madpad.mad.pairs.filter_pairs`).
    A species the pairs do not hold is a one-line :class:`UsageError` naming ``field`` and
    ``path`` (``strict=False``: a warning)."""
    from madpad.mad.pairs import filter_pairs

    species = species_option(species, field=field)
    if species is None:
        return list(pairs)
    known = sorted({p.species for p in pairs if p.label == "attack"})
    unknown = [s for s in species if s not in known]
    if unknown:
        msg = f"{field}: unknown attack species {unknown} for {path}; its pairs hold {known}"
        if strict:
            raise UsageError(msg)
        (warn or log.warning)(msg)
    return filter_pairs(pairs, species=species)


def _load_split(path, species, *, name: str, warn: Echo, field: str | None = None, strict: bool = True):
    from madpad.mad.pairs import read_pairs_csv

    if not path:
        return None
    pairs = read_pairs_csv(path, require_labels=True)
    if species:
        pairs = select_species(pairs, species, field=field or f"data.{name}_species", path=path, strict=strict,
                               warn=warn)
    n_att = sum(p.label == "attack" for p in pairs)
    if (n_att == 0 or n_att == len(pairs)) and name != "train":
        warn(f"data.{name} ({path}) has {len(pairs) - n_att} bona fide and {n_att} attack pairs"
             f"{' of species ' + str(species) if species else ''}; it is not used")
        return None
    if n_att == 0 or n_att == len(pairs):
        raise UsageError(f"data.{name} ({path}) needs bona fide and attack pairs"
                         f"{' of species ' + str(species) if species else ''}; got {len(pairs) - n_att} bona fide "
                         f"and {n_att} attack")
    return pairs


def _with_extra_dev(dev, paths, species, *, train, test, warn: Echo):
    """``dev`` + the pairs of every ``data.extra_dev`` CSV in ``paths``, kept to the dev attack
    ``species`` (:func:`madpad.mad.pairs.add_dev_pairs`: their subjects must not be train or test
    subjects)."""
    from madpad.mad.pairs import add_dev_pairs, read_pairs_csv

    extra = []
    for path in paths:
        pairs = read_pairs_csv(path, require_labels=True)
        if species:
            pairs = select_species(pairs, species, field="data.extra_dev", path=path, strict=False, warn=warn)
        extra.append((f"data.extra_dev {path}", pairs))
    out = add_dev_pairs(dev, extra, others={"train": train, "test": test or []})
    return out if any(p.label == "attack" for p in out) and any(p.label == "bona_fide" for p in out) else None


def train_from_config(cfg: dict, *, echo: Echo | None = None, warn: Echo | None = None) -> dict:
    """Train, save and evaluate the detector of a resolved config (:func:`load_train_config`);
    returns the summary written to ``out/train_summary.json``. The config's ``threads`` and
    ``seed`` are applied first (:func:`madpad.cli.apply_runtime_options`: thread count, global
    random seeds). ``echo`` receives the progress lines (default: this module's logger, level
    INFO), ``warn`` the warnings (default: WARNING)."""
    from madpad.cli import apply_runtime_options
    from madpad.io import atomic_write_json
    from madpad.mad import MORPH_DETECTORS, get_detector
    from madpad.mad.pairs import write_scores_csv

    echo = echo or log.info
    warn = warn or log.warning
    apply_runtime_options(threads=cfg.get("threads"), seed=cfg.get("seed"))
    if not cfg.get("out"):
        raise UsageError("'out' (the checkpoint directory) is required, e.g. --set out=runs/my_detector")
    out = Path(cfg["out"])
    # built first: an unknown detector or parameter fails before any data work (no work in __init__)
    params = {**MORPH_DETECTORS.load(cfg["detector"]).training_defaults(out, int(cfg["seed"])),
              **dict(cfg.get("params") or {})}
    det = get_detector(cfg["detector"], **params)
    summary: dict = {"config": copy.deepcopy(cfg)}
    b = cfg["data"]["build"]
    if b["frll"] or b["images"]:
        summary["build"] = _build_pairs(cfg, echo)
    data = cfg["data"]
    if not data["train"]:
        raise UsageError("data.train (a labelled pair CSV) is required, or data.build to make one")
    for k in ("train_species", "dev_species", "test_species"):
        species_option(data.get(k), field=f"data.{k}")
    train = _load_split(data["train"], data["train_species"], name="train", warn=warn)
    # dev keeps data.dev_species (LOMO dev: species may be absent from training), else train's species
    own = data.get("dev_species") is not None
    dev_species = data["dev_species"] if own else data["train_species"]
    dev = _load_split(data["dev"], dev_species, name="dev", warn=warn, field=None if own else "data.train_species",
                      strict=own)
    test = _load_split(data["test"], data["test_species"], name="test", warn=warn)
    if data.get("extra_dev"):
        dev = _with_extra_dev(dev, data["extra_dev"], dev_species, train=train, test=test, warn=warn)
    cache = feature_cache(cfg.get("cache"))
    t0 = time.time()
    fit_kwargs = {"dev": dev}
    if "cache" in _fit_params(det):
        fit_kwargs["cache"] = cache
    det.fit(train, **fit_kwargs)
    summary["train_seconds"] = round(time.time() - t0, 1)
    summary["counts"] = {n: {"bona_fide": sum(p.label == "bona_fide" for p in ps),
                             "attack": sum(p.label == "attack" for p in ps)}
                         for n, ps in (("train", train), ("dev", dev), ("test", test)) if ps}
    det.save(out)
    echo(f"checkpoint written: {out} ({cfg['detector']}, trained in {summary['train_seconds']} s)")
    for name, ps in (("dev", dev), ("test", test)):
        if not ps:
            continue
        s, st, er = score_with_status(det, ps, cache=cache)
        write_scores_csv(out / f"scores_{name}.csv", ps, s, status=st, errors=er)
        summary[name] = evaluate(ps, s, st)
        echo(f"{name}: {format_rates(summary[name])} -> {out / f'scores_{name}.csv'}")
    if hasattr(det, "history_") and det.history_:
        summary["history"] = det.history_
    atomic_write_json(out / "train_summary.json", summary)
    return summary


def _fit_params(det) -> set:
    import inspect

    return set(inspect.signature(det.fit).parameters)


__all__ = ["TRAIN_DEFAULTS", "evaluate", "expand_paths", "format_rates", "load_train_config", "select_species",
           "species_option", "train_from_config"]
