"""The stage cache key covers the madpad code a stage relies on, not just its own module, and
does not depend on where the repository is cloned (``.ci/run`` also runs this file from a clone
in a folder named ``madpad``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import madpad
from madpad.pipeline.fingerprint import _code_label, _madpad_closure, code_hash

PKG = Path(madpad.__file__).resolve().parent

STAGE_SOURCE = (
    "import numpy\n"
    "from madpad.io import read_image\n"
    "REGISTRY = {'grabcut': 'madpad.segment.grabcut:GrabCutSegmenter'}\n"
    "def run(ctx):\n"
    "    from madpad.metrics import verification\n"
    "    return None\n"
)


def _in_package(files) -> set[str]:
    """Paths of the closure's files inside the installed madpad package (others dropped)."""
    out = set()
    for f in files:
        try:
            out.add(Path(f).resolve().relative_to(PKG).as_posix())
        except ValueError:
            pass
    return out


def test_closure_follows_imports_relative_imports_and_lazy_module_strings(tmp_path):
    stage = tmp_path / "my_stage.py"
    stage.write_text(STAGE_SOURCE)
    files = _in_package(_madpad_closure("my_stage", str(stage)))
    assert {"io.py", "segment/grabcut.py", "metrics/verification.py", "metrics/__init__.py"} <= files
    assert not any("numpy" in f for f in _madpad_closure("my_stage", str(stage)))


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_code_hash_does_not_depend_on_the_clone_location(tmp_path):
    # the same stage module in a folder named "madpad" and in another folder: same key
    a, b = tmp_path / "madpad" / "my_stage.py", tmp_path / "elsewhere" / "x" / "my_stage.py"
    for p in (a, b):
        p.parent.mkdir(parents=True)
        p.write_text(STAGE_SOURCE)
    fa, fb = _load(a, "stage_in_madpad").run, _load(b, "stage_elsewhere").run
    assert code_hash(fa) == code_hash(fb)
    # package files are named by their place in the package, whatever the clone folder is called
    assert _code_label(str(PKG / "io.py")) == "madpad/io.py"
    assert _code_label(str(PKG / "segment" / "grabcut.py")) == "madpad/segment/grabcut.py"
    assert _code_label(str(a)) == "my_stage.py"
    # ...and the key still follows the code: an edit changes it
    b.write_text(STAGE_SOURCE + "X = 1\n")
    assert code_hash(_load(b, "stage_elsewhere2").run) != code_hash(fa)
