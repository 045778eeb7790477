"""CI cannot go green by skipping: under ``MADPAD_REQUIRE_SHARED=1`` (``.ci/run``) a skip for a
missing import is a failure (tests/conftest.py), and every module of every declared extra
really imports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]

#: distribution name (as in pyproject.toml) -> the top-level module it installs, where they differ
DIST_TO_MODULE = {
    "dlib-bin": "dlib",
    "face-recognition-models": "face_recognition_models",
    "protobuf": "google.protobuf",
    "opencv-contrib-python": "cv2",
    "opencv-python": "cv2",
    "facenet-pytorch": "facenet_pytorch",
    "open_clip_torch": "open_clip",
    "scikit-image": "skimage",
    "pytest-timeout": "pytest_timeout",
}

#: extras that CI (``pip install -e ".[test]"``) does not install
NOT_IN_CI = {"dev", "test"}


def _extras() -> dict[str, list[str]]:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]["optional-dependencies"]


def _dist_name(requirement: str) -> str:
    return re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)


def _closure(extras: dict, name: str, seen: set | None = None) -> set[str]:
    """Distributions an extra installs, following ``madpad[a,b]`` references."""
    seen = set() if seen is None else seen
    if name in seen:
        return set()
    seen.add(name)
    out = set()
    for req in extras[name]:
        m = re.match(r"\s*madpad\[([^\]]+)\]", req)
        if m:
            for sub in m.group(1).split(","):
                out |= _closure(extras, sub.strip(), seen)
        else:
            out.add(_dist_name(req))
    return out


def test_ci_installs_every_extra():
    extras = _extras()
    in_ci: set = set()
    _closure(extras, "test", in_ci)  # fills in_ci with every extra reached
    missing = sorted(set(extras) - in_ci - NOT_IN_CI)
    assert not missing, f"extras not reachable from madpad[test] (CI would not test them): {missing}"


def test_every_declared_extra_imports(tmp_path):
    """Every top-level module of every extra CI installs imports (in a fresh interpreter: some,
    like ultralytics, change global state when imported)."""
    extras = _extras()
    dists = sorted(_closure(extras, "test") - {"ruff"})
    modules = sorted({DIST_TO_MODULE.get(d, d.replace("-", "_").lower()) for d in dists})
    assert {"torch", "diffusers", "dlib", "cv2", "open_clip", "ray", "skimage"} <= set(modules)
    code = ("import importlib, sys\nbad = []\nfor m in sys.argv[1:]:\n    try:\n        importlib.import_module(m)\n"
            "    except Exception as exc:\n        bad.append(f'{m}: {type(exc).__name__}: {exc}')\n"
            "print('\\n'.join(bad))\nsys.exit(1 if bad else 0)\n")
    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path / "yolo"), "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, env=env, timeout=600, check=False)
    assert r.returncode == 0, f"modules of declared extras that do not import:\n{r.stdout}{r.stderr[-2000:]}"


SAMPLE_TESTS = '''
import pytest

def test_missing_import():
    pytest.importorskip("madpad_surely_absent_module")

def test_missing_import_custom_reason():
    pytest.importorskip("madpad_surely_absent_module", reason="not here")

def test_explicit_missing_package_skip():
    pytest.skip("ultralytics is not installed")

def test_platform_module_stays_a_skip():
    pytest.importorskip("msvcrt")

def test_other_skip_stays_a_skip():
    pytest.skip("needs Windows")
'''


def _run_sample(tmp_path: Path, require: bool) -> tuple[int, str]:
    d = tmp_path / ("ci" if require else "local")
    d.mkdir()
    shutil.copyfile(REPO / "tests" / "conftest.py", d / "conftest.py")
    (d / "test_sample.py").write_text(SAMPLE_TESTS)
    (d / "test_module_level.py").write_text('import pytest\n\npytest.skip("foo is not installed", '
                                            'allow_module_level=True)\n\ndef test_x():\n    pass\n')
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "MADPAD_REQUIRE_SHARED", "PYTEST_ADDOPTS")}
    if require:
        env["MADPAD_REQUIRE_SHARED"] = "1"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                        "--continue-on-collection-errors", str(d)],
                       capture_output=True, text=True, env=env, cwd=d, timeout=300, check=False)
    return r.returncode, r.stdout + r.stderr


def test_missing_import_skips_fail_under_ci(tmp_path):
    rc, out = _run_sample(tmp_path, require=True)
    assert rc == 1, out
    failed = set(re.findall(r"^FAILED \S+::(test_\w+)", out, re.MULTILINE))
    assert failed == {"test_missing_import", "test_missing_import_custom_reason", "test_explicit_missing_package_skip"}, out
    assert "2 skipped" in out and "fails under CI" in out
    assert re.search(r"^ERROR test_module_level.py", out, re.MULTILINE), out  # a module-level skip fails collection
    # without CI the same tests only skip
    rc, out = _run_sample(tmp_path, require=False)
    assert rc == 0 and "6 skipped" in out, out
