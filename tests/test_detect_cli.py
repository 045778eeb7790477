"""``python -m madpad.detect train|score`` end to end (in-process), tiny open_clip model."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytest.importorskip("peft")

from madpad.detect import main
from madpad.mad.synthetic import write_synthetic_pairs


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    return {"train": write_synthetic_pairs(d, 48, seed=1, name="train.csv"),
            "dev": write_synthetic_pairs(d, 24, seed=2, name="dev.csv"),
            "test": write_synthetic_pairs(d, 24, seed=3, name="test.csv")}


@pytest.fixture(scope="module")
def trained(pair_files, tmp_path_factory):
    from pathlib import Path

    out = tmp_path_factory.mktemp("ck") / "model"
    cfg = Path(__file__).resolve().parents[1] / "madpad" / "configs" / "detect" / "tiny_foundation.yaml"
    rc = main(["train", "--config", str(cfg), "--set", f"data.train={pair_files['train']}",
               "--set", f"data.dev={pair_files['dev']}", "--set", f"data.test={pair_files['test']}",
               "--set", f"out={out}", "--set", "params.epochs=4"])
    assert rc == 0
    return out


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_train_writes_checkpoint_scores_and_summary(trained):
    assert (trained / "detector.json").is_file() and (trained / "weights.safetensors").is_file()
    summary = json.loads((trained / "train_summary.json").read_text())
    assert summary["counts"]["train"] == {"bona_fide": 32, "attack": 16}
    assert len(summary["history"]) == 4
    assert summary["test"]["d_eer"] <= 0.15
    rows = _read(trained / "scores_test.csv")
    assert list(rows[0])[:4] == ["id", "score", "label", "species"]
    assert {r["label"] for r in rows} == {"bona_fide", "attack"}
    assert all(r["species"] == ("blend" if r["label"] == "attack" else "") for r in rows)


def test_score_matches_training_scores_and_resumes(trained, pair_files, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert main(["score", "--model", str(trained), "--pairs", str(pair_files["test"]), "--out", str(out),
                 "--no-progress"]) == 0
    rows = _read(out)
    ref = {r["id"]: float(r["score"]) for r in _read(trained / "scores_test.csv")}
    got = {r["id"]: float(r["score"]) for r in rows}
    assert got.keys() == ref.keys()
    np.testing.assert_allclose([got[k] for k in ref], [ref[k] for k in ref], atol=1e-6)
    assert all(r["status"] == "ok" for r in rows)
    # second run: every row is reused (same model fingerprint)
    capsys.readouterr()
    assert main(["score", "--model", str(trained), "--pairs", str(pair_files["test"]), "--out", str(out),
                 "--no-progress"]) == 0
    assert f"({len(rows)} reused from a previous run)" in capsys.readouterr().out
    # the score file is what the PAD report reads
    report = pytest.importorskip("madpad.report.scores")
    table = report.read_pad_scores(out)
    assert len(table.scores) == len(rows)


def test_score_rejects_a_bad_pairs_file_with_exit_code_2(trained, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,suspect\n1,a.png\n")
    assert main(["score", "--model", str(trained), "--pairs", str(bad), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "missing required column" in err and "live" in err
    missing = tmp_path / "missing.csv"
    missing.write_text("id,suspect,live\n1,nope_s.png,nope_l.png\n")
    assert main(["score", "--model", str(trained), "--pairs", str(missing), "--out", str(tmp_path / "o.csv")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["score", "--model", str(tmp_path), "--pairs", str(missing), "--out", str(tmp_path / "o.csv")]) == 2


def test_train_config_errors_exit_2(tmp_path, capsys):
    assert main(["train", "--set", "detectr=foundation"]) == 2
    assert "Similar keys: ['detector']" in capsys.readouterr().err
    assert main(["train", "--set", "detector=foundation"]) == 2  # no out / no data
    assert "out" in capsys.readouterr().err
    assert main(["train", "--print-config", "--set", "params.epochs=3"]) == 0
    printed = capsys.readouterr().out
    assert "epochs: 3" in printed and "detector: embedding_logreg" in printed


@pytest.mark.parametrize("detector, setting, message", [
    ("embedding_logreg", "params.Cc=3",
     "morph detector 'embedding_logreg': unknown parameter 'Cc'; did you mean 'C'? valid: ["),
    # the embedder is built lazily, inside feature extraction: its own check must still reach the CLI
    ("embedding_svm", "params.embedder_params={padding: -0.1}",
     ("face embedder 'dlib': the dlib embedder needs num_jitters >= 0 and a finite padding >= 0; "
      "got num_jitters=0, padding=-0.1")),
    # options of the wrong shape: one line naming the option, not a TypeError from deep inside
    ("embedding_svm", "params.features=5", "features must be a non-empty list of ["),
    ("embedding_svm", "params.features=null", "features must be a non-empty list of ["),
    ("embedding_svm", "params.embedder_params=5", "embedder_params must be a mapping of options"),
    ("embedding_distance", "params.embedder_params=[1]", "embedder_params must be a mapping of options"),
    ("embedding_svm", "data.extra_dev=5", "data.extra_dev must be a pair CSV path or a list of them; got 5"),
    ("embedding_svm", "data.extra_dev={a: 1}", "data.extra_dev must be a pair CSV path or a list of them"),
    ("embedding_svm", "seed=null", "config: 'seed=null' is of invalid type NoneType; 'seed' must be an int"),
    ("embedding_svm", "data.build=7", "'build=7' is of invalid type int; 'build' is a section"),
    ("embedding_svm", "threads=abc", "threads must be a positive integer or null; got 'abc'"),
    ("embedding_svm", "threads=0", "threads must be a positive integer or null; got 0"),
])
def test_train_bad_detector_parameter_is_a_one_line_usage_error(detector, setting, message, pair_files, tmp_path,
                                                                  capsys):
    out = tmp_path / "model"
    rc = main(["train", "--set", f"detector={detector}", "--set", setting,
               "--set", f"data.train={pair_files['train']}", "--set", f"out={out}"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert message in err, err
    assert not out.exists()  # refused before any work


def _sample_pairs_csv(tmp_path, rows):
    """A pair CSV over the bundled FRLL sample (downscaled copies) and a crude blend 'morph'."""
    import cv2

    from madpad.data.sample import sample_root
    from madpad.io import read_image, write_image

    root = sample_root()
    ims = {}
    for name, rel in (("n1", "neutral/001_03.jpg"), ("s1", "smiling/001_08.jpg"), ("n4", "neutral/004_03.jpg")):
        im = read_image(root / rel)
        ims[name] = cv2.resize(im, (im.shape[1] * 300 // im.shape[0], 300), interpolation=cv2.INTER_AREA)
        write_image(tmp_path / f"{name}.jpg", ims[name])
    blend = ((ims["n1"].astype(float) + cv2.resize(ims["n4"], ims["n1"].shape[1::-1])) / 2).astype(np.uint8)
    write_image(tmp_path / "m14.jpg", blend)
    path = tmp_path / "pairs.csv"
    path.write_text("id,suspect,live,label,species\n" + "".join(f"{r}\n" for r in rows))
    return path


def test_score_runs_an_untrained_detector_without_a_checkpoint(tmp_path, capsys):
    pytest.importorskip("dlib")
    pairs = _sample_pairs_csv(tmp_path, ["bf,n1.jpg,s1.jpg,bona_fide,", "m,m14.jpg,s1.jpg,attack,blend"])
    out = tmp_path / "scores.csv"
    assert main(["score", "--detector", "embedding_distance", "--pairs", str(pairs), "--out", str(out),
                 "--no-progress"]) == 0
    rows = {r["id"]: r for r in _read(out)}
    assert {r["status"] for r in rows.values()} == {"ok"} and rows["m"]["species"] == "blend"
    assert float(rows["m"]["score"]) > float(rows["bf"]["score"])  # the morph is further from the live capture
    assert rows["bf"]["model"] == "untrained:embedding_distance"
    capsys.readouterr()
    assert main(["score", "--detector", "embedding_distance", "--pairs", str(pairs), "--out", str(out),
                 "--no-progress"]) == 0
    assert "(2 reused from a previous run)" in capsys.readouterr().out
    # a detector that needs training is refused with a pointer to --model
    assert main(["score", "--detector", "embedding_svm", "--pairs", str(pairs), "--out", str(out)]) == 2
    assert "must be trained first" in capsys.readouterr().err


def test_score_passes_options_to_an_untrained_detector(tmp_path, capsys):
    """--detector NAME:key=value,...: the options reach the detector and are part of the model id,
    so a rerun with other options scores again instead of reusing."""
    pytest.importorskip("dlib")
    from madpad.mad import get_detector
    from madpad.mad.pairs import read_pairs_csv

    pairs = _sample_pairs_csv(tmp_path, ["bf,n1.jpg,s1.jpg,bona_fide,", "m,m14.jpg,s1.jpg,attack,blend"])
    out = tmp_path / "scores.csv"
    assert main(["score", "--detector", "demorph_distance:alpha=0.3", "--pairs", str(pairs), "--out", str(out),
                 "--no-progress"]) == 0
    rows = _read(out)
    assert {r["model"] for r in rows} == {'untrained:demorph_distance:{"alpha": 0.3}'}
    want = get_detector("demorph_distance", alpha=0.3).score(read_pairs_csv(pairs))
    np.testing.assert_allclose([float(r["score"]) for r in rows], want, rtol=1e-6)
    capsys.readouterr()
    assert main(["score", "--detector", "demorph_distance", "--pairs", str(pairs), "--out", str(out),
                 "--no-progress"]) == 0
    assert "reused" not in capsys.readouterr().out  # other options: scored again
    default = [float(r["score"]) for r in _read(out)]
    assert not np.allclose(default, want) and {r["model"] for r in _read(out)} == {"untrained:demorph_distance"}
    for spec, words in (("demorph_distance:alpah=0.3", ["unknown parameter 'alpah'", "did you mean 'alpha'"]),
                        ("demorph_distance:alpha", ["'alpha'", "missing an '=' sign"]),
                        ("demorph_distance:alpha=2", ["strictly between 0 and 1"])):
        assert main(["score", "--detector", spec, "--pairs", str(pairs), "--out", str(tmp_path / "x.csv")]) == 2
        err = capsys.readouterr().err.strip()
        assert all(w in err for w in words) and "\n" not in err and "Traceback" not in err, err


def test_score_refuses_an_attack_row_without_species(tmp_path, capsys):
    pairs = _sample_pairs_csv(tmp_path, ["bf,n1.jpg,s1.jpg,bona_fide,", "m,m14.jpg,s1.jpg,attack,"])
    assert main(["score", "--detector", "embedding_distance", "--pairs", str(pairs), "--out",
                 str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "pairs.csv" in err and "row 3" in err and "species" in err and "\n" not in err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).resolve().parents[1] / "madpad" / "configs"
                                                          / "detect").glob("*.yaml")))
def test_shipped_detect_configs_build_their_detector(name, monkeypatch, tmp_path):
    """Every shipped training config resolves and builds its detector with exactly its params (a
    renamed or removed option would make `detect train --config` fail only at run time)."""
    from madpad.mad import get_detector
    from madpad.mad.training import load_train_config

    monkeypatch.setenv("MADPAD_SHARED", str(tmp_path))
    cfg = load_train_config(Path(__file__).resolve().parents[1] / "madpad" / "configs" / "detect" / name)
    params = {k: v for k, v in (cfg.get("params") or {}).items() if k != "pretrained"}
    det = get_detector(cfg["detector"], **params)
    built = det.get_config() if hasattr(det, "get_config") else dataclasses.asdict(det.config)
    assert set(params) <= set(built), (name, sorted(set(params) - set(built)))
    for k, v in params.items():
        got = built[k]
        assert got == v or (isinstance(v, list) and list(got) == v), (name, k, got, v)
