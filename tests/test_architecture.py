"""The layering of the package: each layer imports only from layers below it.

    0  madpad, errors, registry, io, cli, data     (images, manifests, base utilities)
    1  metrics                                      (pure numpy)
    2  face                                         (detect, align, embed)
    3  morph, mad, pad, segment, quality            (siblings do not import each other)
    4  report, weights, and pipeline: the runner and the stage functions
       (madpad.pipeline.stages.*), which may use report (not the reverse)
    5  CLIs and applications: generate, detect, demo, *.cli, *.__main__

Imports inside functions count too; ``from package import name`` counts as an import of
``package.name`` as well (it may be a module). A command-line module (layer 5) is imported by no
module below it, except its own package's argparse helpers; pipeline stages import none at all
(not even ``madpad.pipeline.__main__``): they call library functions, never a CLI's ``main``.
``madpad.metrics`` must stay pure numpy/scipy.
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
    "report": 4, "pipeline": 4, "weights": 4,
    "generate": 5, "detect": 5, "demo": 5,
}
#: (importer, imported) tops of layer 4 that may import each other in that direction
LAYER4_ALLOWED = {("pipeline", "report")}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_cli(module: str) -> bool:
    """A command-line module: ``*.cli`` / ``*.__main__`` (not the shared ``madpad.cli``
    helpers) or an application module of layer 5."""
    parts = module.split(".")
    if module == "madpad.cli" or len(parts) == 1:
        return False
    return parts[-1] in ("cli", "__main__") or LAYER_OF_TOP.get(parts[1]) == 5


def layer(module: str) -> tuple[int, str]:
    parts = module.split(".")
    if len(parts) == 1:
        return 0, "madpad"
    top = parts[1]
    if module == "madpad.cli":
        return 0, "cli"
    if is_cli(module):
        return 5, top
    if top not in LAYER_OF_TOP:
        raise AssertionError(f"module {module} is not assigned to a layer; add '{top}' to LAYER_OF_TOP")
    return LAYER_OF_TOP[top], top


def imports_of(source: str, module: str, *, is_package: bool = False,
               with_names: bool = False) -> list[tuple[int, str]]:
    """(line, imported module) of every import in ``source`` (the code of ``module``), relative
    imports resolved; with ``with_names``, ``from X import a`` gives ``X.a`` (a may be a module) too."""
    tree = ast.parse(source)
    pkg = module if is_package else module.rsplit(".", 1)[0]
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
            if with_names:
                out += [(node.lineno, f"{name}.{a.name}") for a in node.names if a.name != "*"]
    return out


def imported_modules(path: Path) -> list[tuple[int, str]]:
    return imports_of(path.read_text(encoding="utf-8"), module_name(path), is_package=path.name == "__init__.py")


def layering_violations(module: str, source: str, *, is_package: bool = False, where: str = "") -> list[str]:
    """The imports of ``module`` (its code ``source``) that go up the layers."""
    my_layer, my_top = layer(module)
    where = where or module
    out = []
    modules = set(imports_of(source, module, is_package=is_package))
    for lineno, target in imports_of(source, module, is_package=is_package, with_names=True):
        if not target.startswith("madpad.") or target == "madpad" or my_layer == 5:
            continue
        t_layer, t_top = layer(target)
        if is_cli(target) and (t_top != my_top or module.startswith("madpad.pipeline.stages")):
            out.append(f"{where}:{lineno} ({module}, layer {my_layer}) imports the command-line module {target}")
            continue
        if (lineno, target) not in modules:
            continue  # ``from X import a``: X is checked; a counted only when it is a command-line module
        if t_layer < my_layer or t_top == my_top or t_layer == 0:
            continue
        if t_layer == my_layer == 4 and (my_top, t_top) in LAYER4_ALLOWED:
            continue
        out.append(f"{where}:{lineno} ({module}, layer {my_layer}) imports {target} (layer {t_layer})")
    return out


def test_layers_import_only_downwards():
    violations = []
    for path in sorted(PKG.rglob("*.py")):
        violations += layering_violations(module_name(path), path.read_text(encoding="utf-8"),
                                          is_package=path.name == "__init__.py",
                                          where=str(path.relative_to(PKG.parent)))
    assert not violations, "layering violations:\n" + "\n".join(violations)


def test_pipeline_stages_sit_below_the_command_lines():
    """A stage module (layer 4, like the runner) that calls a CLI is refused; library imports pass."""
    stage = "madpad.pipeline.stages.demo.synthetic"
    assert layer(stage) == (4, "pipeline") and layer("madpad.pipeline.runner") == (4, "pipeline")
    bad = ("import madpad.generate\n"
           "from madpad import detect\n"
           "def run(ctx):\n"
           "    from madpad.demo import main\n"
           "    from madpad.mad import cli\n"
           "    from ...__main__ import main as pipeline_main\n"
           "    from madpad.morph.dcmorph.cli import main as dcmorph_main\n")
    found = layering_violations(stage, bad)
    assert [v.split(" imports the command-line module ")[1] for v in found] == [
        "madpad.generate", "madpad.detect", "madpad.demo", "madpad.demo.main", "madpad.mad.cli",
        "madpad.pipeline.__main__", "madpad.morph.dcmorph.cli"]
    good = ("from madpad.mad import MORPH_DETECTORS, get_detector\n"
            "from madpad.morph.batch import run_morph_job\n"
            "from madpad.report.pad import pad_report\n"
            "from madpad.pipeline.runner import read_record\n"
            "from madpad.cli import parse_component_spec\n"
            "from . import common\n")
    assert layering_violations(stage, good) == []
    # the report library sits beside the pipeline and must not reach into it; a library calls no
    # other package's CLI (its own package's argparse helpers are allowed)
    assert len(layering_violations("madpad.report.synthetic", "from madpad.pipeline import run_pipeline\n")) == 1
    assert len(layering_violations("madpad.mad.training", "from madpad.morph.cli import main\n")) == 1
    assert layering_violations("madpad.morph.dcmorph.method", "from .cli import add_arguments\n") == []
    # the command lines may import anything
    assert layering_violations("madpad.demo", bad + good) == []


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
