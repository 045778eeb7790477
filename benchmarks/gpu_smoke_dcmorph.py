"""GPU smoke test of dcmorph: the tiny pipeline end to end, and one full-size UNet step.

Part 1, tiny random-init models (meaningless images), for each tiny config (SD1.5-class,
SDXL-class) and preset (madpad, reference): build time, a first morph (two DDIM inversions +
guided sampling), a morph with the inversions cached, its time per step (decoding included),
peak GPU memory. Checks: the output is finite and repeatable, the UNet's parameters are in the
reduced dtype and the VAE's in float32 (read from the parameters), and, on CUDA, attention slicing
and model CPU offload give the same morph (within 2 grey levels).

Part 2, a **full-size random-init SD1.5 UNet** (860M parameters, the real block structure from
``madpad/configs/dcmorph/unet/sd15.json``) with madpad's dual-identity attention processors, in
float16 on CUDA: one guided step (batch 2: unconditional + conditional) at 512x512 (64x64 latents)
with two identities of 4 tokens. Prints build time, the mean time of a step over ``--full-steps``
steps after one warm-up step, and peak GPU memory. ``--full-size sd15,sdxl`` adds the SDXL UNet
(2.6B parameters, 1024x1024). Without CUDA this part is skipped unless ``--full-size-cpu`` is given
(float32, small latents by default: a code-path check, not a timing).

    python benchmarks/gpu_smoke_dcmorph.py                       # auto device
    python benchmarks/gpu_smoke_dcmorph.py --device cpu --steps 4
    python benchmarks/gpu_smoke_dcmorph.py --device cpu --steps 2 --full-size-cpu --full-latent 8
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time


def _sync(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_tiny(config: str, *, preset: str, device: str, dtype: str, steps: int, threads: int | None) -> dict:
    import numpy as np
    import torch

    from madpad.morph.dcmorph import make_dcmorph
    from madpad.morph.dcmorph.pipeline import DCMorphPipeline

    if threads:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    gen = make_dcmorph(tiny_random=config, steps=steps, device=device, dtype=dtype, preset=preset)
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
    dtypes = gen.pipeline.component_dtypes()
    row = {
        "config": config, "preset": preset, "device": str(dev), "unet_dtype": dtypes["unet"],
        "vae_dtype": dtypes["vae"], "size": gen.size, "steps": steps,
        "build_s": build, "first_morph_s": t_first, "cached_morph_s": t_cached,
        "cached_ms_per_step": 1000 * t_cached / steps, "unet_calls_first": n_first, "unet_calls_cached": n_cached,
        "finite": bool(np.isfinite(first).all()), "repeatable": bool(np.array_equal(first, cached)),
        "peak_gpu_mib": (torch.cuda.max_memory_allocated() / 2**20) if dev.type == "cuda" else float("nan"),
    }
    want = str(gen.dtype).replace("torch.", "")
    if row["vae_dtype"] != "float32" or row["unet_dtype"] != want:
        raise SystemExit(f"{config}: UNet parameters are {row['unet_dtype']} (want {want}), VAE {row['vae_dtype']} "
                         f"(want float32)")
    if dev.type == "cuda":
        pipe = DCMorphPipeline.from_tiny_config(config)
        sliced = make_dcmorph(tiny_random=config, pipeline=pipe, steps=steps, device=device, dtype=dtype,
                              preset=preset, attention_slicing=16)
        row["slicing_max_diff"] = int(np.abs(sliced.morph(a, b).astype(int) - first.astype(int)).max())
        pipe = DCMorphPipeline.from_tiny_config(config)
        offload = make_dcmorph(tiny_random=config, pipeline=pipe, steps=steps, device=device, dtype=dtype,
                               preset=preset, cpu_offload=True)
        row["offload_max_diff"] = int(np.abs(offload.morph(a, b).astype(int) - first.astype(int)).max())
    return row


def run_full_size(arch: str, *, device, dtype, latent: int | None, steps: int) -> dict:
    """One guided step of a full-size random-init UNet with madpad's dual-identity processors."""
    import diffusers
    import torch

    from madpad.morph.dcmorph.attention import install_identity_processors, morph_condition
    from madpad.morph.dcmorph.faceid import canonical_unet_config
    from madpad.morph.dcmorph.pipeline import TextConditioning, _batch_identities

    cfg = canonical_unet_config(arch)
    side = int(latent or cfg["sample_size"])
    cross = int(cfg["cross_attention_dim"])
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):
        unet = diffusers.UNet2DConditionModel(**cfg)
    install_identity_processors(unet)
    unet = unet.to(dtype=dtype).eval()
    _sync(torch, device)
    build = time.perf_counter() - t0
    n_params = sum(p.numel() for p in unet.parameters())
    g = torch.Generator(device="cpu").manual_seed(1)

    def rnd(*shape):
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    x = rnd(2, 4, side, side)
    text = TextConditioning(rnd(2, 77, cross), rnd(2, 1280) if arch == "sdxl" else None)
    tok_a, tok_b, null = rnd(1, 4, cross), rnd(1, 4, cross), rnd(1, 4, cross)
    identity = _batch_identities(morph_condition(null, null, 0.5), morph_condition(tok_a, tok_b, 0.5))
    kwargs = {}
    if arch == "sdxl":
        size = side * 8
        ids = torch.tensor([[size, size, 0, 0, size, size]], device=device, dtype=dtype).repeat(2, 1)
        kwargs["added_cond_kwargs"] = {"text_embeds": text.pooled, "time_ids": ids}
    t = torch.tensor(500, device=device)
    times = []
    with torch.no_grad():
        for i in range(steps + 1):
            _sync(torch, device)
            t1 = time.perf_counter()
            out = unet(x, t, encoder_hidden_states=text.embeds, cross_attention_kwargs={"identity": identity},
                       return_dict=False, **kwargs)[0]
            _sync(torch, device)
            if i:  # the first call is a warm-up
                times.append(time.perf_counter() - t1)
    p_dtypes = sorted({str(p.dtype).replace("torch.", "") for p in unet.parameters()})
    return {"unet": f"{arch} full-size random-init", "params_M": n_params / 1e6, "device": str(device),
            "unet_dtype": ", ".join(p_dtypes), "latent": f"2x4x{side}x{side}", "build_s": build,
            "step_ms": 1000 * sum(times) / max(1, len(times)), "timed_steps": len(times),
            "finite": bool(torch.isfinite(out).all()),
            "peak_gpu_mib": (torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda" else float("nan")}


def table(rows: list[dict]) -> str:
    cols = list(rows[0].keys())
    for r in rows[1:]:
        cols += [k for k in r if k not in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [(f"{r[c]:.3f}" if isinstance(r.get(c), float) else str(r.get(c, ""))) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", choices=["auto", "float16", "bfloat16", "float32"])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--configs", default="tiny_sd15,tiny_sdxl")
    p.add_argument("--presets", default="madpad,reference")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--full-size", default="sd15", help="full-size UNets to step on CUDA: sd15, sdxl, both, or none")
    p.add_argument("--full-steps", type=int, default=10, help="timed full-size steps (after one warm-up)")
    p.add_argument("--full-latent", type=int, default=None,
                   help="latent side of the full-size step (default: the model's, 64 for SD1.5 / 128 for SDXL)")
    p.add_argument("--full-size-cpu", action="store_true",
                   help="run the full-size step on the CPU too (float32; slow: a code-path check)")
    args = p.parse_args(argv)
    import torch

    cuda = torch.cuda.is_available() and args.device in ("auto", "cuda") or args.device.startswith("cuda")
    print(f"# dcmorph GPU smoke (tiny random-init models; images meaningless)\n"
          f"python {platform.python_version()}, torch {torch.__version__}, "
          f"cuda available: {torch.cuda.is_available()}"
          + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "")
          + f", machine {platform.machine()}, {os.cpu_count()} CPUs\n")
    rows = [run_tiny(c.strip(), preset=pr.strip(), device=args.device, dtype=args.dtype, steps=args.steps,
                     threads=args.threads)
            for c in args.configs.split(",") if c.strip() for pr in args.presets.split(",") if pr.strip()]
    print(table(rows))
    full = []
    archs = {"none": [], "both": ["sd15", "sdxl"]}.get(args.full_size, [a.strip() for a in args.full_size.split(",")])
    if archs and (cuda or args.full_size_cpu):
        device = torch.device("cuda" if cuda else "cpu")
        dtype = {"auto": torch.float16 if cuda else torch.float32}.get(args.dtype) or getattr(torch, args.dtype)
        latent = args.full_latent if (cuda or args.full_latent) else 8
        full = [run_full_size(a, device=device, dtype=dtype, latent=latent,
                              steps=args.full_steps if cuda else 1) for a in archs]
        print("\n## full-size UNet step (random init, madpad's dual-identity processors, CFG batch of 2)\n")
        print(table(full))
    elif archs:
        print(f"\nfull-size UNet step ({', '.join(archs)}): skipped, no CUDA device (use --full-size-cpu for a "
              f"CPU code-path check)")
    bad = [r["config"] + "/" + r["preset"] for r in rows if not r["finite"] or not r["repeatable"]
           or r.get("slicing_max_diff", 0) > 2 or r.get("offload_max_diff", 0) > 2]
    bad += [r["unet"] for r in full if not r["finite"]]
    if bad:
        print(f"FAILED: {bad}", file=sys.stderr)
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
