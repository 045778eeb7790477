"""``python -m madpad.generate --method dcmorph`` end to end at 64x64 with the tiny random-init models."""

from __future__ import annotations

import csv
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
generate = pytest.importorskip("madpad.generate")


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def pairs(tmp_path, sample_dir):
    imgs = sorted((sample_dir / "neutral").glob("*.jpg"))[:3]
    p = tmp_path / "pairs.csv"
    with open(p, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b", "alpha"])
        w.writerow([imgs[0], imgs[1], 0.5])
        w.writerow([imgs[1], imgs[2], 0.3])
    return p


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_cli_writes_morphs_and_manifest_and_resumes(pairs, tmp_path, capsys):
    from madpad.io import read_image

    out = tmp_path / "out"
    argv = ["--method", "dcmorph", "--tiny-random", "--steps", "2", "--pairs", str(pairs), "--out", str(out),
            "--no-progress", "--threads", "1"]
    assert generate.main(argv) == 0
    rows = _rows(out / "manifest.csv")
    assert [r["status"] for r in rows] == ["ok", "ok"] and all(r["method"] == "dcmorph" for r in rows)
    for r in rows:
        img = read_image(out / r["path"])
        assert img.shape == (64, 64, 3)
        params = json.loads(r["params"])
        assert params["stream"] == "dual" and params["steps"] == 2 and params["tiny_random"] == "tiny_sd15"
        assert params["guidance"] == 2.0 and "meaningless" in params["note"]
    assert rows[1]["alpha"] in ("0.3", "0.30")
    first = {r["id"]: (out / r["path"]).stat().st_mtime_ns for r in rows}
    # resume: nothing left to do, files untouched
    assert generate.main(argv) == 0
    assert {r["id"]: (out / r["path"]).stat().st_mtime_ns for r in _rows(out / "manifest.csv")} == first


def test_cli_records_per_item_failures_and_carries_on(pairs, tmp_path):
    out = tmp_path / "strict"
    argv = ["--method", "dcmorph", "--tiny-random", "--steps", "1", "--realign", "required", "--pairs", str(pairs),
            "--out", str(out), "--no-progress"]
    assert generate.main(argv) == 0  # the job ran; the items failed (no face in a random model's image)
    rows = _rows(out / "manifest.csv")
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert all("no face found in the generated morph" in r["error"] for r in rows)


def test_cli_bad_options_exit_2_with_a_message(pairs, tmp_path, capsys):
    assert generate.main(["--method", "dcmorph", "--pairs", str(pairs), "--out", str(tmp_path / "x")]) == 2
    assert "--base-model" in capsys.readouterr().err
    assert generate.main(["--method", "dcmorph", "--tiny-random", "--face-encoder", "dummy:dim=128",
                          "--pairs", str(pairs), "--out", str(tmp_path / "y")]) == 2
    assert "128-D embeddings but the FaceID projection expects 512-D" in capsys.readouterr().err
    assert generate.main(["--method", "dcmorph", "--tiny-random", "nope", "--pairs", str(pairs),
                          "--out", str(tmp_path / "z")]) == 2
    assert "tiny_sd15" in capsys.readouterr().err


def test_help_lists_the_dcmorph_options(capsys):
    try:
        rc = generate.main(["--method", "dcmorph", "--help"])
    except SystemExit as exc:  # argparse's help exit, if the CLI lets it through
        rc = exc.code
    assert rc == 0
    text = capsys.readouterr().out
    for opt in ("--base-model", "--ip-adapter", "--face-encoder", "--steps", "--guidance", "--inversion-steps",
                "--prompt", "--negative-prompt", "--inversion-conditioning", "--stream", "--identity-mixing",
                "--dtype", "--device", "--attention-slicing", "--cpu-offload", "--tiny-random", "--preset",
                "--schedule", "--inversion-id-scale", "--slerp", "--realign-to", "--faceid-strict"):
        assert opt in text, opt
    assert "meaningless" in text


def test_cli_reference_preset_records_its_settings(pairs, tmp_path):
    out = tmp_path / "ref"
    argv = ["--method", "dcmorph", "--tiny-random", "--steps", "2", "--preset", "reference", "--slerp", "flat",
            "--faceid-strict", "off", "--pairs", str(pairs), "--out", str(out), "--no-progress", "--threads", "1"]
    assert generate.main(argv) == 0
    params = json.loads(_rows(out / "manifest.csv")[0]["params"])
    assert params["preset"] == "reference" and params["schedule"] == "reference" and params["slerp"] == "flat"
    assert params["inversion_steps"] == 1 and params["sampling_steps"] == 2 and params["source_align"] == "stretch"
    assert params["faceid_strict"] is False
