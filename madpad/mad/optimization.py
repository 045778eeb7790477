"""Training state of the DifFoundMAD-style detectors: class balancing (positive-class weight or a
balanced sampler, one at a time), the warm-up + cosine learning-rate schedule, and the resume file
(model, optimiser, scheduler, RNG and grad-scaler state in one safetensors file, JSON metadata;
nothing is unpickled). Used by :mod:`madpad.mad.foundation`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from madpad.errors import UsageError
from madpad.mad.backbone import _torch


def class_pos_weight(y) -> float:
    """``pos_weight`` of class-weighted BCE: n_bona_fide / n_attack (attack = positive class)."""
    y = np.asarray(y).astype(int)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"class weights need both classes; got {n_neg} bona fide and {n_pos} attack")
    return n_neg / n_pos


def sample_weights(y) -> np.ndarray:
    """Per-sample weights 1 / count(class): each class gets the same total weight."""
    y = np.asarray(y).astype(int)
    counts = np.bincount(y, minlength=2).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"balanced sampling needs both classes; got counts {counts.tolist()}")
    return 1.0 / counts[y]


def make_sampler(y, class_balance: str, *, generator):
    torch = _torch()
    if class_balance == "sampler":
        w = torch.as_tensor(sample_weights(y), dtype=torch.double)
        return torch.utils.data.WeightedRandomSampler(w, num_samples=len(y), replacement=True, generator=generator)
    return None


def warmup_cosine(step: int, *, warmup: int, total: int) -> float:
    """LR multiplier: linear warm-up to 1 over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _save_resume(path: Path, net, opt, sched, gen, *, epoch, best, history, best_state, fingerprint,
                 scaler=None) -> None:
    """Everything needed to continue training, in one safetensors file (JSON in its metadata)."""
    torch = _torch()
    from safetensors.torch import save_file

    from madpad.io import atomic_path

    tensors = {"lora." + k: v for k, v in net.lora_state().items()}
    tensors.update({"head." + k: v for k, v in net.head_state().items()})
    if best_state is not None:
        tensors.update({"best_lora." + k: v for k, v in best_state[0].items()})
        tensors.update({"best_head." + k: v for k, v in best_state[1].items()})
    sd = opt.state_dict()
    scalar_state = {}
    for idx, st in sd["state"].items():
        for name, val in st.items():
            if torch.is_tensor(val):
                tensors[f"opt.{idx}.{name}"] = val.detach().cpu().contiguous()
            else:
                scalar_state[f"{idx}.{name}"] = val
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    tensors["rng.sampler"] = gen.get_state()
    meta = {"epoch": epoch, "best": best, "history": history, "param_groups": sd["param_groups"],
            "scalar_state": scalar_state, "scheduler": sched.state_dict(), "fingerprint": fingerprint,
            "has_best": best_state is not None}
    meta["scheduler"].pop("lr_lambdas", None)
    if scaler is not None:
        meta["grad_scaler"] = {k: (float(v) if torch.is_tensor(v) else v) for k, v in scaler.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"madpad": json.dumps(meta, default=_json_default)})


def _json_default(o):
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    if isinstance(o, (np.generic,)):
        return o.item()
    return str(o)


def _load_resume(path: Path, net, opt, sched, gen, fingerprint: str, *, scaler=None) -> dict:
    torch = _torch()
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["madpad"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("fingerprint") != fingerprint:
        raise UsageError(f"{path} was written by a run with another configuration or other training pairs; "
                         f"delete it or set resume=false to start over")
    net.load_trainable({k[5:]: v for k, v in tensors.items() if k.startswith("lora.")},
                       {k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    for k, v in meta.get("scalar_state", {}).items():
        idx, name = k.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    sched_state = dict(meta["scheduler"])
    sched_state["lr_lambdas"] = [None] * len(opt.param_groups)
    sched.load_state_dict(sched_state)
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    gen.set_state(tensors["rng.sampler"])
    if scaler is not None and meta.get("grad_scaler"):
        scaler.load_state_dict(meta["grad_scaler"])
    best = meta["best"]
    for k in ("d_eer", "loss"):
        if isinstance(best.get(k), str):
            best[k] = float(best[k])
    out = {"epoch": int(meta["epoch"]), "best": best, "history": meta["history"]}
    if meta.get("has_best"):
        out["best_state"] = ({k[len("best_lora."):]: v for k, v in tensors.items() if k.startswith("best_lora.")},
                             {k[len("best_head."):]: v for k, v in tensors.items() if k.startswith("best_head.")})
    return out
