"""Evidence table for dcmorph: DDIM inversion round-trip errors and CPU timings (tiny random-init models).

Prints the relative L2 round-trip error ||sample(invert(x)) - x|| / ||x|| (no guidance, same
conditioning both ways) for a noise model that does not depend on x, a smooth closed-form model,
and the tiny UNet with our attention processors (output damped x0.1, and undamped for contrast),
then per-morph CPU timings of the tiny pipelines.

    python benchmarks/bench_dcmorph.py [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import numpy as np
    import torch

    from madpad.morph.dcmorph.attention import IdentityCondition
    from madpad.morph.dcmorph.generator import make_dcmorph
    from madpad.morph.dcmorph.pipeline import DCMorphPipeline, make_schedulers

    torch.set_num_threads(args.threads)
    import os

    print(f"# dcmorph evidence (tiny random-init models)\nmachine: {platform.machine()}, {os.cpu_count()} "
          f"CPUs, torch {torch.__version__}, threads {args.threads}\n")

    class Analytic(DCMorphPipeline):
        def __init__(self, eps):
            self.scheduler, self.inverse_scheduler = make_schedulers()
            self._eps = eps

        def predict_noise(self, latents, t, text, identity, size):
            return self._eps(latents, int(t))

    def rel(a, b):
        return ((a - b).norm() / b.norm()).item()

    rows = []
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 4, 8, 8, generator=g)
    fixed = torch.randn(1, 4, 8, 8, generator=g)
    const = Analytic(lambda x, t: fixed * np.cos(t / 300.0))
    for steps, depth in ((5, 5), (30, 30), (30, 29), (30, 10)):
        z = const.invert(x0, steps=steps, depth=depth, text=None, identity=None, size=64)
        rows.append(("noise model independent of x", f"{depth} of {steps}",
                     rel(const.sample(z, steps=steps, depth=depth, cond=None, cond_identity=None, size=64), x0)))
    x1 = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    smooth = Analytic(lambda x, t: 0.5 * x + 0.15 * torch.sin(3 * x))
    for steps in (10, 20, 40, 80):
        z = smooth.invert(x1, steps=steps, text=None, identity=None, size=64)
        rows.append(("smooth model 0.5x + 0.15 sin 3x", str(steps),
                     rel(smooth.sample(z, steps=steps, cond=None, cond_identity=None, size=64), x1)))
    pipe = DCMorphPipeline.from_tiny_config("tiny_sd15")
    neg = pipe.encode_prompt("monochrome, lowres")
    null = IdentityCondition((pipe.project_identity(np.zeros(512, np.float32)),), (1.0,))
    x2 = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    for damp in (1.0, 0.1):
        conv = pipe.unet.conv_out
        saved = conv.weight.detach().clone(), conv.bias.detach().clone()
        with torch.no_grad():
            conv.weight.mul_(damp)
            conv.bias.mul_(damp)
        for steps in ((4, 8, 16, 32) if damp != 1.0 else (8, 32)):
            z = pipe.invert(x2, steps=steps, text=neg, identity=null, size=64)
            rows.append((f"tiny UNet + processors, null identity (output x{damp})", str(steps),
                         rel(pipe.sample(z, steps=steps, cond=neg, cond_identity=null, size=64), x2)))
        with torch.no_grad():
            conv.weight.copy_(saved[0])
            conv.bias.copy_(saved[1])
    print("## Inversion round trip (relative L2 error)\n\n| model | steps | error |\n|---|---|---|")
    for m, s, e in rows:
        print(f"| {m} | {s} | {e:.2e} |")

    print("\n## Morph timings on this CPU (64x64, inversions not cached / cached)\n")
    print("| config | steps | stream | first morph s | cached morph s |\n|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    for cfg in ("tiny_sd15", "tiny_sdxl"):
        for stream in ("dual", "identity"):
            gen = make_dcmorph(tiny_random=cfg, steps=30, stream=stream)
            t0 = time.perf_counter()
            gen.morph(a, b)
            t1 = time.perf_counter()
            gen.morph(a, b)
            t2 = time.perf_counter()
            print(f"| {cfg} | 30 | {stream} | {t1 - t0:.2f} | {t2 - t1:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
