"""The layering of the package: each layer imports only from layers below it.

    0  madpad, errors, registry, io, cli, data     (images, manifests, base utilities)
    1  metrics                                      (pure numpy)
    2  face                                         (detect, align, embed)
    3  morph, mad, pad, segment, quality            (siblings do not import each other)
    4  report, pipeline (runner), vulnerability
    5  CLIs and applications: generate, detect, demo, *.cli, *.__main__, pipeline.stages

Imports inside functions count too. ``madpad.metrics`` must stay pure numpy/scipy.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "madpad"

LAYER_OF_TOP = {
    "errors": 0, "registry": 0, "io": 0, "cli": 0, "data": 0, "sample_data": 0, "configs": 0,
    "metrics": 1,
    "face": 2,
    "morph": 3, "mad": 3, "pad": 3, "segment": 3, "quality": 3,
    "report": 4, "pipeline": 4, "vulnerability": 4,
    "generate": 5, "detect": 5, "demo": 5, "demo_report": 5,
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer(module: str) -> tuple[int, str]:
    parts = module.split(".")
    if len(parts) == 1:
        return 0, "madpad"
    top = parts[1]
    if module == "madpad.cli":
        return 0, "cli"
    if parts[-1] in ("cli", "__main__") or module.startswith("madpad.pipeline.stages"):
        return 5, top  # a package's own CLI/stage modules (may be imported within the package)
    if top not in LAYER_OF_TOP:
        raise AssertionError(f"module {module} is not assigned to a layer; add '{top}' to LAYER_OF_TOP")
    return LAYER_OF_TOP[top], top


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    pkg = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
    return out


def test_layers_import_only_downwards():
    violations = []
    for path in sorted(PKG.rglob("*.py")):
        me = module_name(path)
        my_layer, my_top = layer(me)
        for lineno, target in imported_modules(path):
            if not target.startswith("madpad.") or target == "madpad":
                continue
            t_layer, t_top = layer(target)
            if t_layer < my_layer or t_top == my_top or my_layer == 5 or t_layer == 0:
                continue
            if t_layer == my_layer and my_layer == 4 and {my_top, t_top} == {"vulnerability", "report"}:
                continue  # the vulnerability comparison command may feed the report
            violations.append(f"{path.relative_to(PKG.parent)}:{lineno} ({me}, layer {my_layer}) imports "
                              f"{target} (layer {t_layer})")
    assert not violations, "layering violations:\n" + "\n".join(violations)


def test_metrics_are_pure_numpy():
    allowed = {"numpy", "scipy", "math", "warnings", "dataclasses", "typing", "__future__", "collections",
               "functools", "itertools", "numbers", "operator", "enum"}
    bad = []
    for path in sorted((PKG / "metrics").rglob("*.py")):
        for lineno, target in imported_modules(path):
            top = target.split(".")[0]
            if top not in allowed and top != "madpad":
                bad.append(f"{path.name}:{lineno} imports {target}")
            if top == "madpad" and not (target.startswith("madpad.metrics") or target in ("madpad.errors",)):
                bad.append(f"{path.name}:{lineno} imports {target}")
    assert not bad, bad


def test_importing_madpad_has_no_side_effects():
    import os
    import subprocess
    import sys

    code = (
        "import os, sys, logging\n"
        "before = dict(os.environ)\n"
        "import madpad, madpad.data, madpad.metrics, madpad.face, madpad.morph, madpad.report, madpad.pipeline\n"
        "changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))\n"
        "heavy = sorted(m for m in ('torch', 'ultralytics', 'diffusers', 'open_clip', 'ray', 'rembg', 'mediapipe') "
        "if m in sys.modules)\n"
        "print(changed, heavy, logging.getLogger().handlers)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[] [] []", out.stdout + out.stderr
