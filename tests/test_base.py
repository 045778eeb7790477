"""Base utilities: registry, atomic IO, safe paths, CLI config merging."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from madpad.cli import EXIT_USAGE, check_keys, parse_set_items, resolve_config, run_main
from madpad.errors import ImageReadError, ManifestError, MissingDependencyError, UnknownComponentError, UsageError
from madpad.io import (
    array_sha256,
    as_rgb_uint8,
    atomic_path,
    atomic_write_text,
    optional_import,
    read_image,
    resolve_relative_to,
    resolve_under_root,
    write_image,
)
from madpad.registry import Registry


# ----------------------------------------------------------------- registry
def test_registry_create_merges_defaults_and_params():
    reg = Registry("segmenter")
    reg.register("ellipse", lambda size=8, value=1.0: (size, value), defaults={"size": 4})
    assert reg.create("ellipse") == (4, 1.0)
    assert reg.create("ellipse", size=2, value=0.5) == (2, 0.5)
    assert "ellipse" in reg and len(reg) == 1


def test_registry_unknown_name_lists_available_and_suggests():
    reg = Registry("detector")
    reg.register("mixfacenet_v2", lambda: None)
    reg.register("dummy", lambda: None)
    with pytest.raises(UnknownComponentError) as exc:
        reg.get("mixfacenet")
    msg = str(exc.value)
    assert msg == ("detector 'mixfacenet' is not registered; available: ['dummy', 'mixfacenet_v2']. "
                   "Did you mean 'mixfacenet_v2'?")


def test_registry_refuses_silent_overwrite():
    reg = Registry("embedder")
    reg.register("a", lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", lambda: 2)
    reg.register("a", lambda: 3, overwrite=True)
    assert reg.create("a") == 3


def test_morph_method_registry_lists_without_importing_torch():
    import subprocess
    import sys

    code = ("import sys, madpad.morph as m; print(m.list_morph_methods()); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'dcmorph'" in out and "'landmark'" in out
    assert out.strip().endswith("False")


# ----------------------------------------------------------------- images and atomic writes
def test_image_round_trip_png_is_lossless(tmp_path, rng):
    img = rng.integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
    p = write_image(tmp_path / "x.png", img)
    assert np.array_equal(read_image(p), img)
    assert [f.name for f in tmp_path.iterdir()] == ["x.png"]  # no temporary leftovers


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(ImageReadError, match="missing.jpg: image file not found"):
        read_image(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="bad.jpg: cannot decode image"):
        read_image(bad)


def test_as_rgb_uint8_converts_gray_float_and_rgba():
    assert as_rgb_uint8(np.zeros((4, 5))).shape == (4, 5, 3)
    f = as_rgb_uint8(np.full((2, 2, 3), 0.5, dtype=np.float32))
    assert f.dtype == np.uint8 and int(f[0, 0, 0]) == 128
    assert as_rgb_uint8(np.zeros((3, 3, 4), dtype=np.uint8)).shape == (3, 3, 3)
    with pytest.raises(ValueError, match=r"must have shape \(H, W, 3\)"):
        as_rgb_uint8(np.zeros((3, 3, 5)))


def test_downscale_factor_maps_coordinates_back():
    from madpad.io import downscale

    img = np.zeros((600, 800, 3), np.uint8)
    img[300:, 400:] = 200  # bottom-right quadrant
    small, f = downscale(img, 640)
    assert small.shape == (480, 640, 3) and f == 0.8 and small.flags.c_contiguous
    ys, xs = np.nonzero(small[..., 0] > 100)
    assert (xs.min() / f, ys.min() / f) == (400.0, 300.0)  # the quadrant's corner, in original pixels
    assert downscale(img, 800)[0] is img and downscale(img, None) == (img, 1.0)
    tall, g = downscale(np.zeros((1001, 3, 3), np.uint8), 100)
    assert tall.shape == (100, 1, 3) and g == pytest.approx(100 / 1001)  # sides never round to 0


def test_atomic_path_leaves_target_untouched_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_array_hash_depends_on_content_shape_and_dtype():
    a = np.arange(6, dtype=np.uint8)
    assert array_sha256(a) == array_sha256(a.copy())
    assert array_sha256(a) != array_sha256(a.reshape(2, 3))
    assert array_sha256(a) != array_sha256(a.astype(np.int16))


# ----------------------------------------------------------------- safe paths
def test_resolve_under_root_rejects_escapes(tmp_path):
    (tmp_path / "a").mkdir()
    assert resolve_under_root(tmp_path, "a/x.jpg") == (tmp_path / "a" / "x.jpg").resolve()
    with pytest.raises(ManifestError) as exc:
        resolve_under_root(tmp_path, "../etc/passwd", manifest="m.csv", row=3, field="path")
    assert str(exc.value).startswith("m.csv row 3: field 'path': path '../etc/passwd' escapes the dataset root")
    with pytest.raises(ManifestError, match="is absolute"):
        resolve_under_root(tmp_path, "/etc/passwd", manifest="m.csv", row=4, field="path")
    with pytest.raises(ManifestError, match="empty path"):
        resolve_under_root(tmp_path, "  ", manifest="m.csv", row=5, field="path")


def test_resolve_relative_to_keeps_absolute_paths(tmp_path):
    assert resolve_relative_to(tmp_path, "x.jpg") == tmp_path / "x.jpg"
    assert resolve_relative_to(tmp_path, "/abs/x.jpg") == Path("/abs/x.jpg")


def test_optional_import_names_the_extra():
    with pytest.raises(MissingDependencyError, match=r"pip install 'madpad\[segment\]'"):
        optional_import("madpad_no_such_module", extra="segment", purpose="testing")


# ----------------------------------------------------------------- CLI config
def test_parse_set_items_types_and_nesting():
    out = parse_set_items(["lr=1e-4", "train.epochs=3", "name=vit", "flag=true", "ids=[1, 2]"])
    assert out == {"lr": 1e-4, "train": {"epochs": 3}, "name": "vit", "flag": True, "ids": [1, 2]}
    with pytest.raises(UsageError, match="missing an '=' sign"):
        parse_set_items(["epochs"])


def test_resolve_config_precedence_and_type_checks(tmp_path):
    defaults = {"epochs": 10, "lr": 0.001, "model": "ViT-B-16", "train": {"balanced": True}}
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("epochs: 5\nlr: 1\ntrain:\n  balanced: false\n")
    cfg = resolve_config(defaults, config_path=cfg_file, set_items=["epochs=7"])
    assert cfg == {"epochs": 7, "lr": 1.0, "model": "ViT-B-16", "train": {"balanced": False}}
    assert isinstance(cfg["lr"], float)
    with pytest.raises(UsageError, match=r"'epochs=ten' is of invalid type str; 'epochs' must be an int"):
        resolve_config(defaults, set_items=["epochs=ten"])
    with pytest.raises(UsageError, match=r"'epoch' is not a valid key. Similar keys: \['epochs'\]"):
        resolve_config(defaults, set_items=["epoch=3"])
    with pytest.raises(UsageError, match=r"train.*'balance' is not a valid key"):
        check_keys({"train": {"balance": 1}}, defaults)


def test_resolve_config_section_set_to_null_or_a_scalar(tmp_path):
    defaults = {"epochs": 10, "train": {"balanced": True, "lr": 0.1}, "params": {}}
    # null (an empty YAML section, or --set train=null) takes the section's defaults
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("train:\nparams:\n")
    assert resolve_config(defaults, config_path=cfg_file) == defaults
    assert resolve_config(defaults, set_items=["train=null"]) == defaults
    # anything else but a mapping is one error naming the key, not a crash later
    with pytest.raises(UsageError, match=r"config: 'train=3' is of invalid type int; 'train' is a section"):
        resolve_config(defaults, set_items=["train=3"])
    with pytest.raises(UsageError, match=r"'params=\[1, 2\]' is of invalid type list; 'params' is a section"):
        resolve_config(defaults, set_items=["params=[1, 2]"])


def test_run_main_maps_input_errors_to_exit_2(capsys):
    def body():
        raise ManifestError("unknown label 'Morph'", path="m.csv", row=14, field="label")

    assert run_main(body, prog="madpad.x") == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err == "madpad.x: error: m.csv row 14: field 'label': unknown label 'Morph'"
    assert run_main(lambda: None, prog="p") == 0
    assert run_main(lambda: 3, prog="p") == 3


def test_detect_cli_unknown_subcommand_suggests(capsys):
    from madpad.detect import main

    assert main(["trian"]) == 2
    assert "Did you mean 'train'?" in capsys.readouterr().err
    assert main([]) == 2


def test_yaml_scientific_notation_is_a_number(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("lr: 1e-4\n")
    assert resolve_config({"lr": 0.1}, config_path=cfg_file) == {"lr": 1e-4}


def test_atomic_writes_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert (p.stat().st_mode & 0o777) == 0o644


def test_int_and_size_argument_types():
    import argparse

    from madpad.cli import int_arg, size_arg

    assert int_arg(1)("3") == 3 and int_arg(0)("0") == 0
    with pytest.raises(argparse.ArgumentTypeError, match="expected a positive integer; got '0'"):
        int_arg(1)("0")
    with pytest.raises(argparse.ArgumentTypeError, match="expected an integer >= 0; got 'x'"):
        int_arg(0)("x")
    assert size_arg(16)("600X800") == (600, 800)
    with pytest.raises(argparse.ArgumentTypeError, match="at least 16x16"):
        size_arg(16)("8x800")
    with pytest.raises(argparse.ArgumentTypeError, match="WIDTHxHEIGHT"):
        size_arg()("600")


def test_parse_component_spec_values_and_errors():
    from madpad.cli import parse_component_spec

    name, params = parse_component_spec(
        "arcface_onnx:model_path=/m/w.onnx,det_size=640,lr=1e-4,fp16=true,providers=[CPUExecutionProvider]",
        what="--face-encoder")
    assert name == "arcface_onnx"
    assert params == {"model_path": "/m/w.onnx", "det_size": 640, "lr": 1e-4, "fp16": True,
                      "providers": ["CPUExecutionProvider"]}
    assert parse_component_spec(" dlib ", what="x") == ("dlib", {})
    with pytest.raises(UsageError, match=r"--face-encoder: parameter 'dim' in 'dummy:dim' is missing an '=' sign"):
        parse_component_spec("dummy:dim", what="--face-encoder")
    with pytest.raises(UsageError, match="empty component name"):
        parse_component_spec(":a=1", what="--person-detector")
