"""Shared test fixtures.

Tests that need files from the shared folder (real FRLL photos, the rembg IS-Net model)
use :func:`shared_path`. The folder is ``$MADPAD_SHARED`` or ``<repo>/../shared``. When
a file is absent the test is skipped with the reason, unless ``MADPAD_REQUIRE_SHARED=1``
(set by ``.ci/run``), which turns the skip into a failure so CI really runs them.

Under CI (``MADPAD_REQUIRE_SHARED=1`` or ``CI=true``) a skip for a missing import is a failure
too: ``pytest.importorskip`` fails instead of skipping (modules that exist only on some
platforms, such as ``fcntl``, still skip), and any other skip whose reason says a module or
package is missing (``No module named``, ``is not installed``, ``pip install 'madpad[...]'``)
is reported as failed. ``.ci/run`` installs every extra, so nothing may be missing there.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

#: modules that exist only on some platforms: their importorskip stays a skip under CI
PLATFORM_MODULES = frozenset({"fcntl", "resource", "termios", "pwd", "grp", "msvcrt", "winreg"})
#: skip reasons that mean "a dependency is missing"
MISSING_IMPORT_RE = re.compile(r"No module named|could not import|cannot import|is not installed|"
                               r"pip install ['\"]?madpad\[", re.IGNORECASE)


def ci_requires_everything() -> bool:
    """True under CI: ``MADPAD_REQUIRE_SHARED`` set (``.ci/run``) or ``CI`` true (CI services)."""
    return (os.environ.get("MADPAD_REQUIRE_SHARED", "") not in ("", "0")
            or os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"))


_original_importorskip = pytest.importorskip


def _importorskip(modname: str, *args, **kwargs):
    """``pytest.importorskip`` that fails instead of skipping under CI (see the module doc)."""
    try:
        return _original_importorskip(modname, *args, **kwargs)
    except pytest.skip.Exception as exc:
        if not ci_requires_everything() or modname.split(".")[0] in PLATFORM_MODULES:
            raise
        pytest.fail(f"{exc.msg}; a missing or broken import fails under CI (MADPAD_REQUIRE_SHARED / CI set): "
                    f"install madpad with its extras ('.[test]')", pytrace=False)


pytest.importorskip = _importorskip


def _skip_reason(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr or "")


def _fail_missing_import_skip(report) -> None:
    if not (report.skipped and ci_requires_everything()) or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report.longrepr)
    named = {m.split(".")[0] for m in re.findall(r"(?:No module named|could not import) '([\w.]+)'", reason)}
    if named and named <= PLATFORM_MODULES:
        return
    if MISSING_IMPORT_RE.search(reason):
        report.outcome = "failed"
        report.longrepr = (f"skipped for a missing dependency, which fails under CI (MADPAD_REQUIRE_SHARED / CI "
                           f"set): {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_missing_import_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_missing_import_skip(outcome.get_result())


def shared_root() -> Path:
    env = os.environ.get("MADPAD_SHARED", "").strip()
    return Path(env) if env else (REPO.parent / "shared")


def shared_path(relative: str) -> Path:
    """Return ``<shared>/<relative>`` or skip (fail under MADPAD_REQUIRE_SHARED=1)."""
    p = shared_root() / relative
    if not p.exists():
        reason = (f"shared file missing: {p} (set MADPAD_SHARED to the shared folder that holds "
                  f"data/ and models/)")
        if os.environ.get("MADPAD_REQUIRE_SHARED", "") not in ("", "0"):
            pytest.fail(reason + "; MADPAD_REQUIRE_SHARED is set, so this is a failure", pytrace=False)
        pytest.skip(reason)
    return p


@pytest.fixture
def frll_dir() -> Path:
    """The shared FRLL folder (neutral/, smiling/, landmarks/, subjects.csv)."""
    return shared_path("data/frll")


@pytest.fixture
def rembg_model_dir() -> Path:
    return shared_path("models/rembg")


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The bundled 24-subject FRLL sample shipped inside the package."""
    from madpad.data.sample import sample_root

    return sample_root()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def torch_one_thread():
    """Run a module's torch code on one thread: on 2 shared cores several torch threads spin
    against other processes (up to 10x slower). Use with
    ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``."""
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _load_script(path: Path, name: str | None = None):
    """Import a script that is not part of a package (a benchmark, a tool in the shared folder) as a
    module: its folder is on ``sys.path`` while it runs (for imports of its siblings) and it is
    registered in ``sys.modules`` under ``name`` (default: the file's stem), which dataclasses need."""
    import importlib.util
    import sys

    path = Path(path)
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(path.parent))
    return mod


@pytest.fixture(scope="session")
def load_script():
    """:func:`_load_script`: ``load_script(path, name=None) -> module``."""
    return _load_script
