"""The stage cache key covers the madpad code a stage relies on, not just its own module."""

from __future__ import annotations

from pathlib import Path

from madpad.pipeline.runner import _madpad_closure


def test_closure_follows_imports_relative_imports_and_lazy_module_strings(tmp_path):
    stage = tmp_path / "my_stage.py"
    stage.write_text(
        "import numpy\n"
        "from madpad.io import read_image\n"
        "REGISTRY = {'grabcut': 'madpad.segment.grabcut:GrabCutSegmenter'}\n"
        "def run(ctx):\n"
        "    from madpad.metrics import verification\n"
        "    return None\n"
    )
    files = {Path(f).as_posix().split("/madpad/", 1)[-1] for f in _madpad_closure("my_stage", str(stage))}
    assert {"io.py", "segment/grabcut.py", "metrics/verification.py", "metrics/__init__.py"} <= files
    assert not any("numpy" in f for f in files)
