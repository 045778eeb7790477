"""The examples of docs/CONTRIBUTING.md, taken from the page itself so it cannot drift.

Each example is a file (``<!-- example-file: madpad/<pkg>/<module>.py -->`` code block) and its
registration line (``<!-- example-register: madpad/<pkg>/<module>.py -->``). The test writes the
file into a temporary folder added to the package's ``__path__`` (so it imports under the name the
page gives it), runs the registration line in the namespace of the module the page names, and
uses the new component through the public API only.
"""

from __future__ import annotations

import csv
import importlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from madpad.errors import MadpadError, UsageError

DOC = Path(__file__).resolve().parents[1] / "docs" / "CONTRIBUTING.md"
BLOCK = re.compile(r"<!-- example-(file|register): (\S+) -->\s*```python\n(.*?)```", re.S)


def page_examples() -> dict[str, dict]:
    """``{module path: {"file": code, "register_in": module path, "register": code}}``."""
    out: dict[str, dict] = {}
    last = None
    for kind, path, code in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        if kind == "file":
            last = out.setdefault(path, {"file": code})
        else:
            assert last is not None and "register" not in last, f"registration block for {path} without a file"
            last.update(register_in=path, register=code)
    return out


def _module_name(path: str) -> str:
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


@pytest.fixture
def install(tmp_path, monkeypatch):
    """``install("madpad/segment/backdrop.py")``: the page's file importable as
    ``madpad.segment.backdrop`` and its registration line run; undone afterwards."""
    undo = []

    def _install(path: str):
        ex = page_examples()[path]
        package, module = _module_name(path).rsplit(".", 1)
        folder = tmp_path / package.replace(".", "_")
        folder.mkdir()
        (folder / f"{module}.py").write_text(ex["file"], encoding="utf-8")
        pkg = importlib.import_module(package)
        monkeypatch.setattr(pkg, "__path__", [*pkg.__path__, str(folder)])
        importlib.invalidate_caches()
        host = importlib.import_module(_module_name(ex["register_in"]))
        namespace = dict(vars(host))
        registries = [v for v in namespace.values() if type(v).__name__ == "Registry"]
        names = re.findall(r'\.register\(\s*"([^"]+)"', ex["register"])
        saved = []
        for reg in registries:  # a real entry of the same name is set aside during the test
            for n in names:
                if n in reg:
                    saved.append((reg, reg.get(n)))
                    reg.unregister(n)
        exec(compile(ex["register"], f"{DOC.name}:{path}", "exec"), namespace)
        undo.append((registries, names, saved, f"{package}.{module}"))
        return sys.modules.get(f"{package}.{module}")

    yield _install
    for registries, names, saved, modname in undo:
        for reg in registries:
            for n in names:
                reg.unregister(n)
        for reg, e in saved:
            reg.register(e.name, e.target, description=e.description, defaults=e.defaults, extra=e.extra,
                         test_params=e.test_params, **e.meta)
        sys.modules.pop(modname, None)


@pytest.fixture(scope="module")
def portrait():
    from madpad.data.sample import sample_root
    from madpad.io import read_image
    from madpad.morph.warp import read_tem

    root = sample_root()
    return read_image(root / "neutral" / "001_03.jpg"), read_tem(root / "landmarks" / "001_03.tem")[:2]


def test_the_page_gives_three_examples_each_with_its_registration_line():
    ex = page_examples()
    assert set(ex) == {"madpad/segment/backdrop.py", "madpad/mad/sharpness.py", "madpad/face/mobileface.py"}
    assert all("register" in e for e in ex.values())
    assert {e["register_in"] for e in ex.values()} == {"madpad/segment/__init__.py", "madpad/mad/__init__.py",
                                                       "madpad/face/embed.py"}


def test_segmenter_example_is_a_segmenter_by_name(install, portrait):
    install("madpad/segment/backdrop.py")
    import madpad.segment as S

    assert "backdrop_fill" in S.list_segmenters()
    assert "madpad.segment.backdrop" not in sys.modules  # registered lazily: imported on first use
    from test_registry_contracts import _segmenter

    seg = S.get_segmenter("backdrop_fill")
    assert isinstance(seg, S.Segmenter) and type(seg).__module__ == "madpad.segment.backdrop"
    image, eyes = portrait
    matte = seg.segment(image)
    assert matte.shape == image.shape[:2] and matte.dtype == np.float32
    x, y = np.round(eyes.mean(axis=0)).astype(int)
    iod = float(np.linalg.norm(eyes[1] - eyes[0]))
    face = matte[int(y - 0.5 * iod):int(y + 1.5 * iod), int(x - 0.8 * iod):int(x + 0.8 * iod)]
    assert face.min() > 0.99  # the whole face is the person
    assert matte[:40, :40].max() < 0.01 and matte[:40, -40:].max() < 0.01  # the backdrop
    out = S.replace_background(image, matte, background="icao_grey")
    assert out.shape == image.shape and not np.array_equal(out[:40, :40], image[:40, :40])
    # the kind's contract check, the study's spec parser and the registry's parameter check
    _segmenter(S.get_segmenter("backdrop_fill", tolerance=2), {"001": {"neutral": image, "eyes": eyes}})
    assert S.segmenter_spec({"name": "backdrop_fill", "tolerance": 3}) == ("backdrop_fill", "backdrop_fill",
                                                                            {"tolerance": 3})
    with pytest.raises(UsageError, match="unknown parameter 'tolerence'; did you mean 'tolerance'"):
        S.get_segmenter("backdrop_fill", tolerence=3)


def test_dmad_detector_example_trains_and_scores_through_the_detect_cli(install, tmp_path, capsys):
    install("madpad/mad/sharpness.py")
    from madpad.detect import main
    from madpad.mad import MORPH_DETECTORS, load_detector
    from madpad.mad.synthetic import write_synthetic_pairs

    train = write_synthetic_pairs(tmp_path / "data", 24, seed=1, name="train.csv")
    test = write_synthetic_pairs(tmp_path / "data", 24, seed=2, name="test.csv")
    out = tmp_path / "model"
    assert main(["train", "--set", "detector=sharpness_ratio", "--set", f"data.train={train}",
                 "--set", f"data.test={test}", "--set", f"out={out}"]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["test"]["d_eer"] == 0.0  # the blended "morphs" of the synthetic task are smoother
    assert json.loads((out / "detector.json").read_text())["detector"] == "sharpness_ratio"
    assert main(["score", "--model", str(out), "--pairs", str(test), "--out", str(tmp_path / "s.csv"),
                 "--no-progress"]) == 0
    with open(out / "scores_test.csv", newline="") as a, open(tmp_path / "s.csv", newline="") as b:
        assert [float(r["score"]) for r in csv.DictReader(a)] == [float(r["score"]) for r in csv.DictReader(b)]
    assert type(load_detector(out)).__name__ == "SharpnessRatioDetector"
    assert MORPH_DETECTORS.load("sharpness_ratio").runtime_overrides(progress=False, device="cuda") == {}
    assert main(["train", "--set", "detector=sharpness_ratio", "--set", "params.esp=1",
                 "--set", f"out={tmp_path / 'm2'}"]) == 2
    assert "unknown parameter 'esp'; did you mean 'eps'?" in capsys.readouterr().err


def test_fr_model_example_embeds_through_the_face_api(install, portrait):
    from conftest import shared_path

    model = shared_path("models/fr/mobileface.onnx")
    install("madpad/face/mobileface.py")
    from madpad.data.sample import sample_root
    from madpad.face import FaceEmbedder, embed_batch, get_embedder

    with pytest.raises(MadpadError, match="model_path") as exc:
        get_embedder("mobileface")
    assert "\n" not in str(exc.value)
    emb = get_embedder("mobileface", model_path=model)
    assert isinstance(emb, FaceEmbedder) and emb.id.startswith("mobileface:")
    root = sample_root()
    images = [root / "neutral" / "001_03.jpg", root / "smiling" / "001_08.jpg", root / "neutral" / "007_03.jpg",
              np.full((200, 200, 3), 128, np.uint8)]
    batch = embed_batch(images, emb)
    assert batch.status == ["ok", "ok", "ok", "no_face"]
    v = batch.embeddings
    assert v.shape == (4, 256) and np.isnan(v[3]).all()
    np.testing.assert_allclose(np.linalg.norm(v[:3], axis=1), 1.0, atol=1e-5)
    # the same person (smiling) scores well above another person: measured 0.76 vs 0.33
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2
