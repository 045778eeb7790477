"""GPU smoke test of the dcmorph pipeline on the tiny random-init models (meaningless images).

Runs on CUDA in float16 with the VAE in float32 (``--device auto`` picks CUDA when present) and
falls back to the CPU (float32) so it can be checked anywhere. For each tiny config (SD1.5-class,
SDXL-class) it prints: build time, a first morph (two DDIM inversions + guided sampling), a morph
with the inversions cached (sampling only, batch of 2 for guidance) and its time per step
(decoding included), peak GPU memory,
and checks that the output is finite, the VAE ran in float32 and, on CUDA, that attention slicing
and model CPU offload give the same morph (within 2 grey levels).

    python benchmarks/gpu_smoke_dcmorph.py                 # auto device
    python benchmarks/gpu_smoke_dcmorph.py --device cpu --steps 4
"""

from __future__ import annotations

import argparse
import platform
import sys
import time


def _sync(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(config: str, *, device: str, dtype: str, steps: int, threads: int | None) -> dict:
    import numpy as np
    import torch

    from madpad.morph.dcmorph import make_dcmorph

    if threads:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    gen = make_dcmorph(tiny_random=config, steps=steps, device=device, dtype=dtype)
    dev = gen.device
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    build = time.perf_counter() - t0
    calls = {"n": 0}
    orig = gen.pipeline.predict_noise

    def counting(*args, **kw):
        calls["n"] += 1
        return orig(*args, **kw)

    gen.pipeline.predict_noise = counting
    _sync(torch, dev)
    t0 = time.perf_counter()
    first = gen.morph(a, b, alpha=0.5, seed=0)
    _sync(torch, dev)
    t_first = time.perf_counter() - t0
    n_first = calls["n"]
    t0 = time.perf_counter()
    cached = gen.morph(a, b, alpha=0.5, seed=0)
    _sync(torch, dev)
    t_cached = time.perf_counter() - t0
    n_cached = calls["n"] - n_first
    gen.pipeline.predict_noise = orig
    row = {
        "config": config, "device": str(dev), "unet_dtype": str(gen.pipeline.unet.dtype).replace("torch.", ""),
        "vae_dtype": str(gen.pipeline.vae.dtype).replace("torch.", ""), "size": gen.size, "steps": steps,
        "build_s": build, "first_morph_s": t_first, "cached_morph_s": t_cached,
        "cached_ms_per_step": 1000 * t_cached / steps, "unet_calls_first": n_first, "unet_calls_cached": n_cached,
        "finite": bool(np.isfinite(first).all()), "repeatable": bool(np.array_equal(first, cached)),
        "peak_gpu_mib": (torch.cuda.max_memory_allocated() / 2**20) if dev.type == "cuda" else float("nan"),
    }
    if row["vae_dtype"] != "float32":
        raise SystemExit(f"{config}: the VAE is {row['vae_dtype']}, expected float32")
    if dev.type == "cuda":
        sliced = make_dcmorph(tiny_random=config, steps=steps, device=device, dtype=dtype, attention_slicing=16)
        row["slicing_max_diff"] = int(np.abs(sliced.morph(a, b).astype(int) - first.astype(int)).max())
        offload = make_dcmorph(tiny_random=config, steps=steps, device=device, dtype=dtype, cpu_offload=True)
        row["offload_max_diff"] = int(np.abs(offload.morph(a, b).astype(int) - first.astype(int)).max())
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", choices=["auto", "float16", "bfloat16", "float32"])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--configs", default="tiny_sd15,tiny_sdxl")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)
    import torch

    print(f"# dcmorph GPU smoke (tiny random-init models; images meaningless)\n"
          f"python {platform.python_version()}, torch {torch.__version__}, "
          f"cuda available: {torch.cuda.is_available()}"
          + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "")
          + f", machine {platform.machine()}, {__import__('os').cpu_count()} CPUs\n")
    rows = [run(c.strip(), device=args.device, dtype=args.dtype, steps=args.steps, threads=args.threads)
            for c in args.configs.split(",") if c.strip()]
    cols = list(rows[0].keys())
    for r in rows[1:]:
        cols += [k for k in r if k not in cols]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = [(f"{r[c]:.3f}" if isinstance(r.get(c), float) else str(r.get(c, ""))) for c in cols]
        print("| " + " | ".join(cells) + " |")
    bad = [r["config"] for r in rows if not r["finite"] or not r["repeatable"]
           or r.get("slicing_max_diff", 0) > 2 or r.get("offload_max_diff", 0) > 2]
    if bad:
        print(f"FAILED: {bad}", file=sys.stderr)
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
