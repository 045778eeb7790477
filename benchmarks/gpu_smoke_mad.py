"""GPU smoke test of the foundation D-MAD detector: LoRA training and scoring throughput per precision.

On CUDA: an open_clip ViT-B-16 from random init (or ``--pretrained``; ``--backbone-library timm``
for a timm ViT), LoRA on every block's attention and MLP projections, synthetic learnable
pairs at 224 px, a few epochs in each of ``--precisions`` (default bf16 and fp16). For each
precision it prints the loss per epoch, the dev D-EER, training pairs per second, scoring
pairs per second (fresh feature cache: both images through the backbone), the dtypes of the
frozen backbone weights and of the trained (LoRA + head) weights, peak GPU memory, and checks
that a save/load round trip reproduces the scores. Without CUDA (or with ``--tiny``) it runs
the same code on the tiny test model so the script itself is exercised on a CPU.

    python benchmarks/gpu_smoke_mad.py [--precisions bf16,fp16] [--epochs 2] [--pairs 256] [--out DIR]
    python benchmarks/gpu_smoke_mad.py --tiny --precisions fp32,bf16     # CPU check of the script
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def run_one(precision: str, args, *, cuda: bool, tiny: bool) -> dict:
    import numpy as np
    import torch

    from madpad.mad import load_detector
    from madpad.mad.cache import FeatureCache
    from madpad.mad.evaluation import detection_eer
    from madpad.mad.foundation import FoundationDetector
    from madpad.mad.synthetic import synthetic_pairs

    if not tiny:
        params = dict(backbone=args.backbone, backbone_library=args.backbone_library, pretrained=args.pretrained,
                      device="cuda" if cuda else "cpu", batch_size=args.batch_size, eval_batch_size=2 * args.batch_size,
                      lr_lora=1e-3, lr_head=3e-3, warmup=0.0, lora_rank=4, lora_alpha=8.0, lora_dropout=0.1,
                      pair_feature="diff_prod", head_hidden=128)
        size, n = 224, args.pairs
    else:
        params = dict(backbone="madpad-tiny-vit", model_config="madpad-tiny-vit", pretrained=None, device="cpu",
                      batch_size=8, lr_lora=1e-2, lr_head=3e-2, warmup=0.0, lora_rank=2, lora_alpha=4.0,
                      lora_dropout=0.0, pair_feature="diff_prod", head_hidden=32, head_dropout=0.0)
        size, n = 64, min(args.pairs, 48)
    train = synthetic_pairs(n, seed=1, size=size)
    dev = synthetic_pairs(max(24, n // 4), seed=2, size=size)
    det = FoundationDetector(**params, precision=precision, augment=0.0, epochs=args.epochs, patience=0,
                             progress=False)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t = time.time()
    det.fit(train, dev=dev)
    fit_seconds = time.time() - t
    frozen = sorted({str(p.dtype) for k, p in det.net_.visual.named_parameters() if "lora_" not in k})
    trained = sorted({str(p.dtype) for k, p in det.net_.visual.named_parameters() if "lora_" in k}
                     | {str(p.dtype) for p in det.net_.head.parameters()})
    if cuda:
        torch.cuda.synchronize()
    t = time.time()
    s = det.score(dev, cache=FeatureCache())
    if cuda:
        torch.cuda.synchronize()
    score_seconds = time.time() - t
    y = np.array([p.y for p in dev])
    with tempfile.TemporaryDirectory() as tmp:
        det.save(Path(tmp) / "ck")
        s2 = load_detector(Path(tmp) / "ck", device=params["device"]).score(dev, cache=FeatureCache())
    claimed = {"fp32": "torch.float32", "bf16": "torch.bfloat16", "fp16": "torch.float16"}[precision]
    epoch_seconds = [h["seconds"] for h in det.history_]
    result = {
        "precision": precision, "backbone": params["backbone"], "image_size": size, "train_pairs": len(train),
        "epochs": args.epochs, "loss_per_epoch": [round(h["train_loss"], 4) for h in det.history_],
        "dev_d_eer_per_epoch": [h.get("dev_d_eer") for h in det.history_], "seconds_per_epoch": epoch_seconds,
        "fit_seconds": round(fit_seconds, 1),
        "train_pairs_per_second": round(len(train) / min(epoch_seconds), 1) if min(epoch_seconds) > 0 else None,
        "score_pairs_per_second": round(len(dev) / score_seconds, 1) if score_seconds > 0 else None,
        "final_dev_d_eer": detection_eer(s, y), "frozen_weight_dtypes": frozen, "trained_weight_dtypes": trained,
        "max_abs_score_diff_after_reload": float(np.abs(s - s2).max()),
        "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
    }
    result["ok"] = bool(result["loss_per_epoch"][-1] < result["loss_per_epoch"][0]
                        and result["max_abs_score_diff_after_reload"] < 1e-3
                        and frozen == [claimed] and trained == ["torch.float32"] and np.isfinite(s).all())
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precisions", default=None, help="comma-separated: fp32, bf16, fp16 "
                                                       "(default bf16,fp16 on CUDA, fp32,bf16 on CPU)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--backbone", default="ViT-B-16")
    ap.add_argument("--backbone-library", default="open_clip", choices=["open_clip", "timm"])
    ap.add_argument("--pretrained", default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--tiny", action="store_true", help="the tiny test model on the CPU (checks the script)")
    ap.add_argument("--out", default=None, help="write smoke_result.json here")
    args = ap.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available() and not args.tiny
    tiny = args.tiny or not cuda
    precisions = [p.strip() for p in (args.precisions or ("bf16,fp16" if cuda else "fp32,bf16")).split(",") if p]
    runs = [run_one(p, args, cuda=cuda, tiny=tiny) for p in precisions]
    result = {"device": torch.cuda.get_device_name(0) if cuda else "cpu (tiny model)", "torch": torch.__version__,
              "runs": runs}
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "smoke_result.json").write_text(json.dumps(result, indent=2))
    ok = all(r["ok"] for r in runs)
    print("SMOKE OK" if ok else "SMOKE FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
