"""One short LoRA training run of the foundation D-MAD detector on CUDA (CPU fallback).

On CUDA: open_clip ViT-B-16 (random weights unless --pretrained is given), LoRA on every
attention and MLP layer, AMP, synthetic learnable pairs at 224 px, a few epochs; prints
the loss per epoch, the dev D-EER, seconds per epoch, peak GPU memory, and checks that a
save/load round trip reproduces the scores. Without CUDA it runs the same code on the tiny
test model so the script itself is exercised here.

    python benchmarks/gpu_smoke_mad.py [--epochs 3] [--pairs 256] [--backbone ViT-B-16] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--backbone", default="ViT-B-16")
    ap.add_argument("--pretrained", default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", default=None, help="write smoke_result.json here")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from madpad.mad import load_detector
    from madpad.mad.evaluation import detection_eer
    from madpad.mad.foundation import FoundationDetector
    from madpad.mad.synthetic import synthetic_pairs

    cuda = torch.cuda.is_available()
    if cuda:
        params = dict(backbone=args.backbone, pretrained=args.pretrained, device="cuda", amp=True,
                      batch_size=args.batch_size, lr_lora=1e-3, lr_head=3e-3, warmup=0.0, lora_rank=4,
                      lora_alpha=8.0, lora_dropout=0.1, pair_feature="diff_prod", head_hidden=128)
        size, n = 224, args.pairs
    else:
        params = dict(backbone="madpad-tiny-vit", model_config="madpad-tiny-vit", pretrained=None, device="cpu",
                      batch_size=8, lr_lora=1e-2, lr_head=3e-2, warmup=0.0, lora_rank=2, lora_alpha=4.0,
                      lora_dropout=0.0, pair_feature="diff_prod", head_hidden=32, head_dropout=0.0)
        size, n = 64, min(args.pairs, 48)
    train = synthetic_pairs(n, seed=1, size=size)
    dev = synthetic_pairs(max(24, n // 4), seed=2, size=size)
    det = FoundationDetector(**params, epochs=args.epochs, patience=0, progress=False)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t = time.time()
    det.fit(train, dev=dev)
    seconds = time.time() - t
    s = det.score(dev)
    y = np.array([p.y for p in dev])
    with tempfile.TemporaryDirectory() as tmp:
        det.save(Path(tmp) / "ck")
        s2 = load_detector(Path(tmp) / "ck", device=params["device"]).score(dev)
    result = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu (fallback: tiny model)",
        "backbone": params["backbone"], "pretrained": params.get("pretrained"), "amp": bool(cuda),
        "train_pairs": len(train), "image_size": size, "epochs": args.epochs,
        "loss_per_epoch": [round(h["train_loss"], 4) for h in det.history_],
        "dev_d_eer_per_epoch": [h.get("dev_d_eer") for h in det.history_],
        "seconds_per_epoch": [h["seconds"] for h in det.history_], "fit_seconds": round(seconds, 1),
        "final_dev_d_eer": detection_eer(s, y),
        "max_abs_score_diff_after_reload": float(np.abs(s - s2).max()),
        "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "torch": torch.__version__,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "smoke_result.json").write_text(json.dumps(result, indent=2))
    ok = result["loss_per_epoch"][-1] < result["loss_per_epoch"][0] and result["max_abs_score_diff_after_reload"] < 1e-3
    print("SMOKE OK" if ok else "SMOKE FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
