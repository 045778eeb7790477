"""Post-processing chains: what attackers do to hide morph artefacts, and what issuance does to any photo.

A morph is rarely submitted as the morphing tool wrote it: attackers sharpen, denoise, match
colour and contrast, recompress and resample it, or print and scan it; document issuance then
resizes, compresses or prints every photo, bona fide or morph. A detector trained on raw tool
output learns the tool's file history. This module applies such processing as named, seeded
steps composed into chains (numpy + OpenCV only):

==============  =====================================================================  =================
step            what it does                                                           parameters
==============  =====================================================================  =================
``sharpen``     unsharp mask: ``x + amount * (x - gauss(x, sigma))``                    amount, sigma
``denoise``     edge-preserving smoothing: bilateral filter or light fastNlMeans        method, strength
``colour``      colour match: Lab a/b shift and saturation change                       shift, saturation
``contrast``    contrast, brightness and gamma change                                   contrast, brightness, gamma
``jpeg``        JPEG recompression at ``quality`` (cv2's encoder, 4:2:0)                quality
``resample``    downscale by ``scale`` and back up (down/up interpolations)             scale, down, up
``print_scan``  blur + halftone-like dot pattern + noise + slight colour shift + JPEG   blur, dots, noise, tint, quality
==============  =====================================================================  =================

Spec syntax (:func:`parse_chain`): steps joined by ``+``; a step is a name, a name with its
shorthand number (``jpeg75`` = quality 75, ``resample50`` = scale 0.5) or a name with
``(key=value,...)``, e.g. ``"sharpen+jpeg75"``, ``"denoise(method=bilateral)+resample(scale=0.6,up=cubic)"``;
or a list of such strings or of dicts ``{"step": "jpeg", "quality": 75}``. ``""``/``"none"`` is
the empty chain. Parameters left out are drawn per application from the step's range, from the
generator given to :func:`apply_chain`, so ``apply_chain(image, chain, rng)`` is a pure function
of the image, the chain and the generator's state.

:func:`random_chain` draws a fully specified chain from a named profile (:data:`PROFILES`):
``attacker`` (the post-processing an attacker applies to hide artefacts), ``issuance``
(resize/JPEG or print-and-scan of document issuance), ``jpeg`` (recompression only), ``none``.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from madpad.errors import UsageError

INTERPOLATIONS = ("nearest", "linear", "cubic", "area", "lanczos")


def _interp(name: str) -> int:
    import cv2

    return {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC,
            "area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4}[name]


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Round trip through cv2's JPEG encoder (RGB in, RGB out)."""
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


# --------------------------------------------------------------------------- the steps
def _sharpen(img, rng, p):
    import cv2

    x = img.astype(np.float32)
    blur = cv2.GaussianBlur(x, (0, 0), sigmaX=float(p["sigma"]))
    return _u8(x + float(p["amount"]) * (x - blur))


def _denoise(img, rng, p):
    import cv2

    s = float(p["strength"])
    if p["method"] == "bilateral":
        return cv2.bilateralFilter(np.ascontiguousarray(img), d=5, sigmaColor=10.0 + 30.0 * s, sigmaSpace=3.0)
    h = 2.0 + 5.0 * s
    bgr = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(img[:, :, ::-1]), None, h, h, 5, 11)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _colour(img, rng, p):
    import cv2

    lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)  # float Lab: no 8-bit round-trip loss
    mean_ab = lab[:, :, 1:].mean(axis=(0, 1))
    lab[:, :, 1:] = (lab[:, :, 1:] - mean_ab) * float(p["saturation"]) + mean_ab + np.asarray(p["shift"], np.float32)
    return _u8(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB) * 255.0)


def _contrast(img, rng, p):
    x = img.astype(np.float32) / 255.0
    mean = x.mean()
    x = (x - mean) * float(p["contrast"]) + mean + float(p["brightness"]) / 255.0
    x = np.clip(x, 0.0, 1.0) ** float(p["gamma"])
    return _u8(x * 255.0)


def _jpeg(img, rng, p):
    return jpeg(img, int(p["quality"]))


def _resample(img, rng, p):
    import cv2

    h, w = img.shape[:2]
    s = float(p["scale"])
    small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=_interp(p["down"]))
    return cv2.resize(small, (w, h), interpolation=_interp(p["up"]))


def _print_scan(img, rng, p):
    import cv2

    h, w = img.shape[:2]
    x = cv2.GaussianBlur(img.astype(np.float32), (0, 0), sigmaX=float(p["blur"]))
    # halftone-like screen: a rotated dot grid of period ~ 3.5 px, stronger in mid-tones
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    th = np.deg2rad(45.0)
    period = 3.5
    u = (xx * np.cos(th) + yy * np.sin(th)) * (2 * np.pi / period)
    v = (-xx * np.sin(th) + yy * np.cos(th)) * (2 * np.pi / period)
    screen = np.cos(u) * np.cos(v)
    mid = 1.0 - np.abs(x.mean(axis=2, keepdims=True) / 127.5 - 1.0)
    x = x + float(p["dots"]) * screen[:, :, None] * mid
    x = x + rng.normal(0.0, float(p["noise"]), size=x.shape).astype(np.float32)
    tint = np.asarray(p["tint"], dtype=np.float32)  # per-channel gain - 1 (paper and scanner colour)
    x = x * (1.0 + tint)[None, None, :]
    return jpeg(_u8(x), int(p["quality"]))


@dataclass(frozen=True)
class StepKind:
    """One kind of step: its function, how to draw each parameter, its shorthand parameter."""

    name: str
    fn: Callable
    draws: dict                              # parameter -> rng -> value (drawn in this order)
    check: dict                              # parameter -> value -> value (raises ValueError)
    shorthand: str | None = None             # parameter of the trailing number (jpeg75)
    shorthand_scale: float = 1.0             # resample50 -> 0.5
    description: str = ""


def _num(lo, hi, *, integer=False):
    def check(v):
        v = int(v) if integer else float(v)
        if not lo <= v <= hi:
            raise ValueError(f"must be in [{lo}, {hi}]")
        return v
    return check


def _choice(options):
    def check(v):
        v = str(v)
        if v not in options:
            raise ValueError(f"must be one of {list(options)}")
        return v
    return check


def _vec3(lo, hi):
    def check(v):
        a = [float(t) for t in (v if isinstance(v, (list, tuple)) else str(v).split(";"))]
        if len(a) != 3 or any(not lo <= t <= hi for t in a):
            raise ValueError(f"must be three numbers in [{lo}, {hi}] (r;g;b)")
        return tuple(a)
    return check


def _vec2(lo, hi):
    def check(v):
        a = [float(t) for t in (v if isinstance(v, (list, tuple)) else str(v).split(";"))]
        if len(a) != 2 or any(not lo <= t <= hi for t in a):
            raise ValueError(f"must be two numbers in [{lo}, {hi}] (a;b)")
        return tuple(a)
    return check


STEPS: dict[str, StepKind] = {s.name: s for s in (
    StepKind("sharpen", _sharpen,
             {"amount": lambda r: float(r.uniform(0.3, 1.2)), "sigma": lambda r: float(r.uniform(0.8, 2.0))},
             {"amount": _num(0.0, 5.0), "sigma": _num(0.1, 10.0)}, description="unsharp mask"),
    StepKind("denoise", _denoise,
             {"method": lambda r: ("bilateral", "nlmeans")[int(r.integers(2))],
              "strength": lambda r: float(r.uniform(0.2, 1.0))},
             {"method": _choice(("bilateral", "nlmeans")), "strength": _num(0.0, 3.0)},
             description="bilateral filter or light fastNlMeans"),
    StepKind("colour", _colour,
             {"shift": lambda r: tuple(float(v) for v in r.uniform(-4.0, 4.0, size=2)),
              "saturation": lambda r: float(r.uniform(0.85, 1.15))},
             {"shift": _vec2(-30.0, 30.0), "saturation": _num(0.0, 3.0)}, description="Lab a/b shift + saturation"),
    StepKind("contrast", _contrast,
             {"contrast": lambda r: float(r.uniform(0.85, 1.2)), "brightness": lambda r: float(r.uniform(-12, 12)),
              "gamma": lambda r: float(r.uniform(0.85, 1.15))},
             {"contrast": _num(0.1, 3.0), "brightness": _num(-128.0, 128.0), "gamma": _num(0.2, 5.0)},
             description="contrast, brightness, gamma"),
    StepKind("jpeg", _jpeg, {"quality": lambda r: int(r.integers(50, 96))}, {"quality": _num(1, 100, integer=True)},
             shorthand="quality", description="JPEG recompression"),
    StepKind("resample", _resample,
             {"scale": lambda r: float(r.uniform(0.4, 0.85)),
              "down": lambda r: ("area", "linear", "cubic", "nearest")[int(r.integers(4))],
              "up": lambda r: ("linear", "cubic", "lanczos")[int(r.integers(3))]},
             {"scale": _num(0.05, 4.0), "down": _choice(INTERPOLATIONS), "up": _choice(INTERPOLATIONS)},
             shorthand="scale", shorthand_scale=0.01, description="down- then upsampling"),
    StepKind("print_scan", _print_scan,
             {"blur": lambda r: float(r.uniform(0.6, 1.5)), "dots": lambda r: float(r.uniform(3.0, 8.0)),
              "noise": lambda r: float(r.uniform(1.5, 4.0)),
              "tint": lambda r: tuple(float(v) for v in r.uniform(-0.04, 0.04, size=3)),
              "quality": lambda r: int(r.integers(70, 93))},
             {"blur": _num(0.0, 10.0), "dots": _num(0.0, 64.0), "noise": _num(0.0, 64.0), "tint": _vec3(-0.5, 0.5),
              "quality": _num(1, 100, integer=True)},
             description="print-and-scan: blur, halftone dots, noise, colour shift, JPEG"),
)}


# --------------------------------------------------------------------------- chains
@dataclass(frozen=True)
class Step:
    """One step of a chain: a step name and the parameters fixed for it (others are drawn)."""

    name: str
    params: tuple = ()                       # sorted (key, value) pairs

    def __str__(self) -> str:
        if not self.params:
            return self.name
        kind = STEPS[self.name]
        if kind.shorthand and len(self.params) == 1 and self.params[0][0] == kind.shorthand:
            v = self.params[0][1] / kind.shorthand_scale
            if float(v).is_integer():
                return f"{self.name}{int(v)}"

        def fmt(v):
            if isinstance(v, tuple):
                return ";".join(repr(float(t)) for t in v)
            return repr(v) if isinstance(v, float) else str(v)
        return f"{self.name}(" + ",".join(f"{k}={fmt(v)}" for k, v in self.params) + ")"


@dataclass(frozen=True)
class Chain:
    """An ordered tuple of :class:`Step`; ``str(chain)`` is its spec (``parse_chain`` reads it back)."""

    steps: tuple = field(default_factory=tuple)

    def __str__(self) -> str:
        return "+".join(str(s) for s in self.steps) or "none"

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]


def _unknown(what: str, name: str, known: Sequence[str]) -> UsageError:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return UsageError(f"unknown {what} {name!r}{hint} (known: {', '.join(known)})")


def make_step(name: str, **params) -> Step:
    """A validated :class:`Step` (unknown step or parameter, or a value out of range: UsageError)."""
    name = str(name).strip()
    if name not in STEPS:
        raise _unknown("processing step", name, list(STEPS))
    kind = STEPS[name]
    out = {}
    for k, v in params.items():
        if k not in kind.check:
            raise _unknown(f"parameter of step {name}", k, list(kind.check))
        try:
            out[k] = kind.check[k](v)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"step {name}: {k}={v!r} {exc}") from None
    return Step(name, tuple(sorted(out.items())))


_TOKEN = re.compile(r"^([a-z_]+?)(\d+(?:\.\d+)?)?(?:\((.*)\))?$")


def _parse_token(tok: str) -> Step:
    t = tok.strip()
    m = _TOKEN.match(t)
    if not m:
        raise UsageError(f"cannot read processing step {tok!r}; write NAME, NAMEnumber (jpeg75) or "
                         "NAME(key=value,...)")
    name, num, args = m.group(1), m.group(2), m.group(3)
    if name not in STEPS:
        raise _unknown("processing step", name, list(STEPS))
    params: dict = {}
    if num is not None:
        kind = STEPS[name]
        if kind.shorthand is None:
            raise UsageError(f"step {name} takes no shorthand number ({tok!r}); write {name}(key=value)")
        params[kind.shorthand] = float(num) * kind.shorthand_scale
    if args:
        for part in args.split(","):
            if not part.strip():
                continue
            k, sep, v = part.partition("=")
            if not sep:
                raise UsageError(f"step {tok!r}: write key=value, got {part!r}")
            params[k.strip()] = v.strip()
    return make_step(name, **params)


def parse_chain(spec) -> Chain:
    """A :class:`Chain` from a spec: ``"sharpen+jpeg75"``, a list of step strings or of dicts
    ``{"step": NAME, **params}``, a :class:`Chain`, or ``None``/``""``/``"none"`` (empty)."""
    if isinstance(spec, Chain):
        return spec
    if spec is None:
        return Chain(())
    if isinstance(spec, str):
        s = spec.strip()
        if s in ("", "none"):
            return Chain(())
        return Chain(tuple(_parse_token(t) for t in s.split("+")))
    if isinstance(spec, dict):
        spec = [spec]
    steps = []
    for item in spec:
        if isinstance(item, Step):
            steps.append(item)
        elif isinstance(item, str):
            steps.extend(parse_chain(item).steps)
        elif isinstance(item, dict):
            d = dict(item)
            if "step" not in d:
                raise UsageError(f"a chain step given as a mapping needs 'step': NAME; got {item!r}")
            name = d.pop("step")
            steps.append(make_step(name, **d))
        else:
            raise UsageError(f"a chain step must be a string or a mapping; got {item!r}")
    return Chain(tuple(steps))


def _round(v):
    """Drawn values are kept to 4 decimals, so a chain's spec string reads back to the same chain."""
    if isinstance(v, float):
        return round(v, 4)
    if isinstance(v, tuple):
        return tuple(round(t, 4) if isinstance(t, float) else t for t in v)
    return v


def resolve_step(step: Step, rng: np.random.Generator) -> Step:
    """The step with every parameter set: all parameters are drawn in a fixed order (so the
    generator's stream does not depend on which were given), then the given ones win."""
    kind = STEPS[step.name]
    drawn = {k: _round(draw(rng)) for k, draw in kind.draws.items()}
    drawn.update(dict(step.params))
    return Step(step.name, tuple(sorted(drawn.items())))


def _as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def apply_chain(image: np.ndarray, chain, rng=None) -> np.ndarray:
    """``image`` (RGB uint8) through every step of ``chain`` (spec or :class:`Chain`); parameters
    a step leaves open and the steps' own noise come from ``rng`` (a Generator or a seed).
    Returns a new RGB uint8 image of the same size."""
    ch = parse_chain(chain)
    img = np.ascontiguousarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"apply_chain needs an RGB uint8 image (H, W, 3); got {img.dtype} {img.shape}")
    if not ch.steps:
        return img.copy()
    g = _as_rng(0 if rng is None else rng)
    for step in ch.steps:
        s = resolve_step(step, g)
        img = np.ascontiguousarray(STEPS[s.name].fn(img, g, dict(s.params)))
    return img


# --------------------------------------------------------------------------- profiles
def _attacker(rng: np.random.Generator) -> list[str]:
    """The post-processing of the issue: enhancement steps, maybe a resampling, then a final
    recompression or a print-and-scan (sometimes nothing at all)."""
    if rng.uniform() < 0.1:
        return []
    steps = []
    for name, p in (("denoise", 0.3), ("sharpen", 0.4), ("colour", 0.35), ("contrast", 0.35)):
        if rng.uniform() < p:
            steps.append(name)
    order = rng.permutation(len(steps))
    steps = [steps[i] for i in order]
    if rng.uniform() < 0.35:
        steps.append("resample")
    last = rng.uniform()
    if last < 0.65:
        steps.append("jpeg")
    elif last < 0.85:
        steps.append("print_scan")
    return steps


def _issuance(rng: np.random.Generator) -> list[str]:
    u = rng.uniform()
    if u < 0.6:
        return ["resample", "jpeg"]
    if u < 0.8:
        return ["jpeg"]
    return ["print_scan"]


PROFILES: dict[str, Callable[[np.random.Generator], list[str]]] = {
    "none": lambda rng: [],
    "jpeg": lambda rng: ["jpeg"],
    "attacker": _attacker,
    "issuance": _issuance,
}


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise _unknown("chain profile", str(profile), list(PROFILES))
    return profile


def random_chain(rng, profile: str = "attacker") -> Chain:
    """A chain drawn from the named profile (:data:`PROFILES`), every parameter drawn too, so
    ``str(chain)`` records exactly what was applied (apart from the steps' noise)."""
    check_profile(profile)
    g = _as_rng(rng)
    names = PROFILES[profile](g)
    return Chain(tuple(resolve_step(Step(n), g) for n in names))


def chain_rng(seed: int, *parts) -> np.random.Generator:
    """The generator of one chain draw, a pure function of (seed, parts)."""
    h = hashlib.sha256("\x1f".join(map(str, (int(seed),) + parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def chain_or_profile(spec) -> tuple[str | None, Chain | None]:
    """``(profile, None)`` when ``spec`` names a profile, else ``(None, parse_chain(spec))``;
    an unknown single name gets a close match among both steps and profiles."""
    if isinstance(spec, str) and spec.strip() in PROFILES:
        return spec.strip(), None
    try:
        return None, parse_chain(spec)
    except UsageError:
        if isinstance(spec, str) and re.fullmatch(r"[a-z_]+", spec.strip() or "-"):
            raise _unknown("chain profile or step", spec.strip(), list(PROFILES) + list(STEPS)) from None
        raise


__all__ = [
    "PROFILES",
    "STEPS",
    "Chain",
    "Step",
    "apply_chain",
    "chain_or_profile",
    "chain_rng",
    "check_profile",
    "jpeg",
    "make_step",
    "parse_chain",
    "random_chain",
    "resolve_step",
]
