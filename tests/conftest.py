"""Shared test fixtures.

Tests that need files from the shared folder (real FRLL photos, the rembg IS-Net model)
use :func:`shared_path`. The folder is ``$MADPAD_SHARED`` or ``<repo>/../shared``. When
a file is absent the test is skipped with the reason, unless ``MADPAD_REQUIRE_SHARED=1``
(set by ``.ci/run``), which turns the skip into a failure so CI really runs them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


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
