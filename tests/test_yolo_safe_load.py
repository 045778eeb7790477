"""YOLO weights are pickles: madpad refuses a file that needs arbitrary unpickling (a crafted file that
would create a marker file on load) and loads real ultralytics checkpoints through the restricted loader,
for both the face detector and the person detector."""

from __future__ import annotations

import importlib.util
import os
import tempfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("ultralytics") is None:  # not imported here: a bare import writes ~/.config/Ultralytics
    pytest.skip("ultralytics is not installed", allow_module_level=True)

from madpad.errors import UsageError  # noqa: E402
from madpad.face import get_detector  # noqa: E402
from madpad.face import yolo_weights as yw  # noqa: E402
from madpad.pad import get_person_detector  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module", autouse=True)
def _ultralytics_settings_in_a_temp_dir():
    """Every ultralytics import and model build of this module keeps its settings out of the home directory."""
    old = os.environ.get("YOLO_CONFIG_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["YOLO_CONFIG_DIR"] = tmp
        from madpad.face.detectors import import_ultralytics

        import_ultralytics(config_dir=tmp)
        yield
    if old is None:
        os.environ.pop("YOLO_CONFIG_DIR", None)
    else:
        os.environ["YOLO_CONFIG_DIR"] = old


class _CreatesMarker:
    """Unpickling this runs ``open(marker, "w")``: the file appears on load."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def crafted(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "yolov8n-face.pt"
    torch.save({"model": _CreatesMarker(marker), "epoch": 1}, path)
    return path, marker


@pytest.fixture(scope="module")
def real_pt(tmp_path_factory):
    """A genuine ultralytics checkpoint: yolov8n built from its shipped yaml (random init) and saved."""
    import os

    root = tmp_path_factory.mktemp("yolo")
    old = os.environ.get("YOLO_CONFIG_DIR")
    os.environ["YOLO_CONFIG_DIR"] = str(root / "cfg")
    try:
        from madpad.face.detectors import import_ultralytics, preserved_environment

        ul = import_ultralytics(config_dir=root / "cfg")
        with preserved_environment():
            model = yw.load_yolo(ul, "yolov8n.yaml")
            model.save(str(root / "yolov8n-random.pt"))
    finally:
        if old is None:
            os.environ.pop("YOLO_CONFIG_DIR", None)
        else:
            os.environ["YOLO_CONFIG_DIR"] = old
    return root / "yolov8n-random.pt"


def test_the_crafted_file_really_runs_code_when_unpickled(crafted):
    path, marker = crafted
    torch.load(path, weights_only=False)  # what ultralytics' default loader does
    assert marker.exists()


def test_scan_refuses_the_crafted_file_without_running_it(crafted):
    path, marker = crafted
    with pytest.raises(UsageError,
                       match=r"yolov8n-face\.pt: refused: .*arbitrary unpickling.*references (_?io|builtins)\.open"):
        yw.scan_yolo_weights(path)
    assert not marker.exists()


def test_face_and_person_detectors_refuse_the_crafted_file(crafted, tmp_path):
    path, marker = crafted
    img = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(UsageError, match="refused: loading these YOLO weights would need arbitrary unpickling"):
        get_detector("yolo", weights=str(path), config_dir=str(tmp_path / "cfg")).detect(img)
    with pytest.raises(UsageError, match="refused: loading these YOLO weights would need arbitrary unpickling"):
        get_person_detector("yolo", weights=str(path), config_dir=str(tmp_path / "cfg")).load()
    assert not marker.exists()


def test_a_real_checkpoint_loads_through_the_restricted_loader(real_pt, tmp_path):
    names = yw.scan_yolo_weights(real_pt)
    assert "ultralytics.nn.tasks.DetectionModel" in names and yw.model_classes(names) == ["DetectionModel"]
    assert yw.restricted_loader_available()
    img = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    face = get_detector("yolo", weights=str(real_pt), conf=0.0, imgsz=64, config_dir=str(tmp_path / "c1"))
    assert isinstance(face.detect(img), list)
    person = get_person_detector("yolo", weights=str(real_pt), conf=1e-4, imgsz=64, config_dir=str(tmp_path / "c2"))
    assert isinstance(person.detect(img), list)
    import ultralytics.nn.tasks as tasks

    assert tasks.SAFE_LOAD is False or tasks.SAFE_LOAD == bool(os.environ.get("ULTRALYTICS_SAFE_LOAD"))


def test_weights_verify_accepts_the_real_checkpoint_and_refuses_the_crafted_one(real_pt, crafted):
    from madpad.weights import verify_paths

    path, marker = crafted
    ok, bad = verify_paths([real_pt, path], hash_files=False)
    assert ok.ok and ok.kind == "YOLO weights (ultralytics DetectionModel)" and "AGPL-3.0" in ok.licence
    assert not bad.ok and "arbitrary unpickling" in bad.problems[0] and not marker.exists()


def test_the_restricted_loader_is_on_while_ultralytics_reads_the_file(real_pt, monkeypatch):
    """ultralytics reads a .pt with weights_only=True under madpad (its default is weights_only=False)."""
    import ultralytics.nn.tasks as tasks

    seen = []
    original = tasks.torch_load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(tasks, "torch_load", spy)
    from madpad.face.detectors import import_ultralytics

    yw.load_yolo(import_ultralytics(), real_pt)
    assert seen and all(w is True for w in seen)


def test_getattr_needs_the_restricted_loader(tmp_path, monkeypatch):
    class _UsesGetattr:
        def __reduce__(self):
            return (getattr, (torch.nn.Identity, "__name__"))

    path = tmp_path / "getattr.pt"
    torch.save({"model": _UsesGetattr()}, path)
    assert "builtins.getattr" in yw.scan_yolo_weights(path, allow_getattr=True)
    with pytest.raises(UsageError, match="builtins.getattr is only accepted with ultralytics' restricted loader"):
        yw.scan_yolo_weights(path, allow_getattr=False)


def test_a_pickle_the_static_scanner_cannot_read_is_refused(tmp_path):
    """Protocol 4 pickles name globals with STACK_GLOBAL; the scanner does not follow those, so the file is
    refused rather than trusted."""
    marker = tmp_path / "P4"
    path = tmp_path / "p4.pt"
    torch.save({"model": _CreatesMarker(marker)}, path, pickle_protocol=4)
    with pytest.raises(UsageError, match="p4.pt: refused, because it cannot be checked without unpickling it"):
        yw.scan_yolo_weights(path)
    assert not marker.exists()


def test_non_zip_and_missing_files_are_refused(tmp_path):
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(UsageError, match="legacy.pt: not a torch zip checkpoint"):
        yw.scan_yolo_weights(legacy)
    with pytest.raises(UsageError, match="not found"):
        yw.scan_yolo_weights(tmp_path / "missing.pt")


def test_a_model_yaml_with_code_in_its_activation_is_not_evaluated(tmp_path):
    """ultralytics eval()s a model yaml's ``activation`` unless its restricted mode is on."""
    from pathlib import Path

    import yaml

    marker = tmp_path / "YAML_PWNED"
    package = Path(importlib.util.find_spec("ultralytics").origin).parent
    cfg_file = next(iter(package.rglob("yolov8.yaml")), None)
    if cfg_file is None:
        pytest.skip("ultralytics ships no yolov8.yaml")
    cfg = yaml.safe_load(cfg_file.read_text())
    cfg["activation"] = f"__import__('pathlib').Path({str(marker)!r}).touch() or __import__('torch').nn.SiLU()"
    evil = tmp_path / "yolov8n-evil.yaml"
    evil.write_text(yaml.safe_dump(cfg))
    from madpad.face.detectors import import_ultralytics, preserved_environment

    ul = import_ultralytics(config_dir=tmp_path / "cfg")
    with preserved_environment(), pytest.raises(UsageError, match="yolov8n-evil.yaml: ultralytics refused"):
        yw.load_yolo(ul, evil)
    assert not marker.exists()
