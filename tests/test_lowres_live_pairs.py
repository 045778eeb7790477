"""benchmarks/lowres_live_pairs.py: the low-resolution gate-camera variant of D-MAD pairs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def lowres(load_script):
    return load_script(BENCH / "lowres_live_pairs.py")


def test_downscale_to_iod_shrinks_only_faces_above_the_target(lowres):
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 100:] = 200
    small = lowres.downscale_to_iod(img, 40.0, 20.0)
    assert small.shape == (50, 100, 3)  # eyes 40 px apart -> 20 px: half the size
    assert small[:, :49].max() == 0 and small[:, 51:].min() == 200  # area averaging keeps the halves
    assert lowres.downscale_to_iod(img, 12.0, 20.0) is img  # already small enough
    assert lowres.downscale_to_iod(img, None, 20.0) is img  # no face found: kept as it is


def test_summary_is_the_mean_of_per_species_figures_with_every_bona_fide_pair(lowres, tmp_path):
    rows = [("b1", 0.0, "bona_fide", "", "ok"), ("b2", 1.0, "bona_fide", "", "ok"), ("b3", 2.0, "bona_fide", "", "ok"),
            ("b4", 3.0, "bona_fide", "", "ok"), ("a1", 5.0, "attack", "x", "ok"), ("a2", 6.0, "attack", "x", "ok"),
            ("c1", 7.0, "attack", "y", "ok"), ("c2", 2.5, "attack", "y", "ok"), ("n1", "", "attack", "y", "no_face")]
    path = tmp_path / "scores.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "score", "label", "species", "status"])
        w.writerows(rows)
    cells = [c.strip() for c in lowres.summary_line(path).strip("|").split("|")]
    from madpad.mad.evaluation import summarize

    bf = [0.0, 1.0, 2.0, 3.0]
    x = summarize(np.array(bf + [5.0, 6.0]), np.array([0] * 4 + [1] * 2), [""] * 4 + ["x"] * 2)
    y = summarize(np.array(bf + [7.0, 2.5]), np.array([0] * 4 + [1] * 2), [""] * 4 + ["y"] * 2)
    assert x["d_eer"] == 0.0 and y["d_eer"] > 0.0  # species y overlaps the bona fide scores, x does not
    assert cells[1] == f"{100 * (x['d_eer'] + y['d_eer']) / 2:.2f}"
    assert cells[2] == f"{100 * (x['bpcer_at_apcer_1'] + y['bpcer_at_apcer_1']) / 2:.2f}"
    assert cells[5] == "no_face 1, ok 8"  # the failure to acquire is counted, not scored


def test_per_species_keeps_every_bona_fide_pair_and_only_that_species():
    from madpad.mad.evaluation import per_species, summarize

    scores = [0.0, 1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 2.5]
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    species = ["stale", "", "", "", "x", "x", "y", "y"]  # a bona fide row's species is ignored
    r = per_species(scores, y, species)
    assert list(r) == ["x", "y"]
    assert r["x"] == summarize(np.array(scores[:6]), np.array(y[:6]), [""] * 4 + ["x"] * 2)
    assert (r["x"]["n_bona_fide"], r["x"]["n_attack"], r["y"]["n_attack"]) == (4, 2, 2)
    assert r["x"]["d_eer"] == 0.0 and r["y"]["d_eer"] > 0.0
    other = per_species(scores[:6] + [0.5, 0.4], y, species)  # species y moved: x's figures do not change
    assert other["x"] == r["x"] and other["y"] != r["y"]
    assert list(per_species(scores, y, species, only=["y"])) == ["y"]


def test_grey_is_rec601_luma_in_three_equal_channels():
    from madpad.mad.augment import grey_rgb  # what `make --grey` applies

    img = np.zeros((2, 3, 3), np.uint8)
    img[0, 0] = (255, 0, 0)
    img[0, 1] = (0, 255, 0)
    img[0, 2] = (0, 0, 255)
    img[1, :] = (10, 200, 30)
    g = grey_rgb(img)
    assert g.shape == img.shape and g.dtype == np.uint8
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    # 0.299 R + 0.587 G + 0.114 B, rounded: 76, 150, 29; 0.299*10 + 0.587*200 + 0.114*30 = 123.81 -> 124
    assert g[0, :, 0].tolist() == [76, 150, 29] and g[1, :, 0].tolist() == [124] * 3


def test_make_needs_iod_or_grey_and_greys_without_resizing(lowres, tmp_path, capsys, monkeypatch):
    from madpad.io import read_image, write_image

    monkeypatch.syspath_prepend(str(BENCH))  # the script imports its sibling mad_fr_systems

    live = tmp_path / "live.png"
    write_image(live, np.full((40, 30, 3), (200, 40, 10), np.uint8))
    pairs = tmp_path / "pairs.csv"
    with open(pairs, "w", newline="") as fh:
        csv.writer(fh).writerows([["id", "suspect", "live", "label", "species"],
                                  ["b1", "live.png", "live.png", "bona_fide", ""]])
    assert lowres.main(["make", "--pairs", str(pairs), "--out", str(tmp_path / "o")]) == 2
    assert "give at least one of --iod, --grey, --blur, --exposure" in capsys.readouterr().err
    assert lowres.main(["make", "--pairs", str(pairs), "--exposure", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--exposure must be a positive number; got 0.0" in capsys.readouterr().err
    assert lowres.main(["make", "--pairs", str(pairs), "--grey", "--out", str(tmp_path / "o")]) == 0
    with open(tmp_path / "o" / "pairs.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    out = read_image(tmp_path / "o" / row["live"])
    assert out.shape == (40, 30, 3)  # no face, no --iod: size kept
    # luma of (200, 40, 10) = 84.3; JPEG q90 of a flat image keeps it within one level
    assert np.abs(out.astype(int) - 84).max() <= 1 and np.ptp(out.astype(int), axis=2).max() <= 1


def test_blur_is_relative_to_the_eye_distance_and_exposure_clips(lowres):
    img = np.zeros((41, 41, 3), np.uint8)
    img[20, 20] = 255
    # a unit impulse blurred by a 2-D Gaussian of sigma s peaks at 255 / (2 pi s^2)
    b = lowres.blur_by_iod(img, 40.0, 0.05)  # sigma 2 px: 10.1
    assert 9 <= b[20, 20, 0] <= 11 and b[20, 22, 0] > 0
    wide = lowres.blur_by_iod(img, 80.0, 0.05)  # twice the eye distance, sigma 4 px: 2.5
    assert 2 <= wide[20, 20, 0] <= 3
    assert lowres.blur_by_iod(img, None, 0.05) is img  # no face: not blurred
    e = lowres.exposed(np.array([[[10, 100, 200]]], np.uint8), 1.6)
    assert e.tolist() == [[[16, 160, 255]]] and e.dtype == np.uint8  # 320 clipped to 255
