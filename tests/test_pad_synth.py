"""Synthetic T-shirt attack generator: labels, species, geometry, determinism, attribution."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from madpad.errors import UsageError
from madpad.io import read_image
from madpad.pad.synth import (
    DEFAULT_SPECIES,
    SPECIES,
    SynthConfig,
    generate_set,
    list_sources,
    main,
)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _box(s):
    return np.array([float(v) for v in s.split(";")])


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory, sample_dir):
    out = tmp_path_factory.mktemp("synth")
    wearers = list_sources(sample_dir / "neutral", tag="w")
    faces = list_sources(sample_dir / "neutral", tag="p")
    assert all(s.eyes is not None for s in wearers)  # eyes from landmarks/NNN_03.tem
    manifest = generate_set(wearers=wearers, faces=faces, out_dir=out, cfg=SynthConfig(width=240, seed=3),
                            limit=2, progress=False)
    return out, _rows(manifest)


def test_manifest_rows_labels_and_species(synth_set):
    out, rows = synth_set
    assert len(rows) == 2 * (len(DEFAULT_SPECIES) + 2)
    for subj in {r["subject"] for r in rows}:
        mine = [r for r in rows if r["subject"] == subj]
        assert sorted(r["species"] for r in mine if r["label"] == "attack") == sorted(DEFAULT_SPECIES)
        assert sorted(r["capture"] for r in mine if r["label"] == "bona_fide") == ["extended", "portrait"]
    for r in rows:
        assert (out / r["path"]).is_file()
        if r["label"] == "attack":
            assert r["printed_subject"].startswith("p_") and r["printed_subject"][2:] != r["subject"][2:]
            assert r["print_quad"] and r["species"] in SPECIES
        else:
            assert r["species"] == "" and r["printed_subject"] == "" and r["print_quad"] == ""
    text = (out / "ATTRIBUTION.md").read_text()
    assert "CC BY 4.0" in text and "What was changed" in text and "synthesised" in text


def test_printed_face_lies_on_the_torso_below_the_wearers_face(synth_set):
    out, rows = synth_set
    for r in rows:
        img = read_image(out / r["path"])
        assert img.shape[:2] == (int(r["height"]), int(r["width"]))
        if r["label"] != "attack":
            continue
        pb = _box(r["print_box"])
        torso_top = float(r["torso_top"])
        h, w = img.shape[:2]
        assert pb[1] >= torso_top - 0.1 * (pb[3] - pb[1]), r["id"]   # print starts at/below the photo's bottom edge
        assert -0.05 * w <= pb[0] and pb[2] <= 1.05 * w and pb[3] <= h + 1, r["id"]
        if r["wearer_face_box"]:
            fb = _box(r["wearer_face_box"])
            assert fb[3] < pb[1] + 0.2 * (pb[3] - pb[1]), r["id"]   # the real face is above the print
        else:
            assert r["species"] == "tshirt_head_cropped"


def test_print_changes_the_chest_and_occluder_hides_the_face(synth_set):
    out, rows = synth_set
    by = {r["id"]: r for r in rows}
    subj = rows[0]["subject"]
    bona = read_image(out / by[f"{subj}__bona_fide_extended"]["path"]).astype(float)
    vis = read_image(out / by[f"{subj}__tshirt_face_visible"]["path"]).astype(float)
    occ = read_image(out / by[f"{subj}__tshirt_face_occluded"]["path"]).astype(float)
    pb = _box(by[f"{subj}__tshirt_face_visible"]["print_box"]).astype(int)
    fb = _box(by[f"{subj}__tshirt_face_occluded"]["wearer_face_box"]).astype(int)
    chest = (slice(pb[1] + 5, pb[3] - 5), slice(max(pb[0], 0) + 5, pb[2] - 5))
    assert np.abs(vis[chest] - bona[chest]).mean() > 10  # a print is there
    face = (slice(fb[1] + 10, fb[3] - 10), slice(fb[0] + 10, fb[2] - 10))
    assert np.abs(vis[face] - bona[face]).mean() < 3      # face_visible leaves the face alone
    assert np.abs(occ[face] - bona[face]).mean() > 20     # the occluder covers it


def test_deterministic_with_seed(tmp_path, sample_dir):
    w = list_sources(sample_dir / "neutral", tag="w")[:1]
    f = list_sources(sample_dir / "neutral", tag="p")
    cfg = {"width": 160, "species": ("tshirt_face_visible",), "bona_fide": ()}
    a = _rows(generate_set(wearers=w, faces=f, out_dir=tmp_path / "a", cfg=SynthConfig(seed=1, **cfg), progress=False))
    b = _rows(generate_set(wearers=w, faces=f, out_dir=tmp_path / "b", cfg=SynthConfig(seed=1, **cfg), progress=False))
    c = _rows(generate_set(wearers=w, faces=f, out_dir=tmp_path / "c", cfg=SynthConfig(seed=2, **cfg), progress=False))
    assert a == b  # same rows (ids, relative paths, geometry) for the same seed
    ia, ib = read_image(tmp_path / "a" / a[0]["path"]), read_image(tmp_path / "b" / b[0]["path"])
    ic = read_image(tmp_path / "c" / c[0]["path"])
    assert np.array_equal(ia, ib)
    assert a[0]["print_quad"] != c[0]["print_quad"] or not np.array_equal(ia, ic)


def test_cli_bad_input_exit_2(tmp_path, sample_dir, capsys):
    assert main(["--source", str(tmp_path / "nope"), "--faces", str(sample_dir / "neutral"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "source folder not found" in capsys.readouterr().err
    assert main(["--source", str(sample_dir / "neutral"), "--faces", str(sample_dir / "neutral"),
                 "--out", str(tmp_path / "o"), "--species", "tshirt_hat"]) == 2
    assert "unknown species" in capsys.readouterr().err
    with pytest.raises(UsageError):
        SynthConfig(width=10)


def test_upper_body_photo_without_landmarks_prints_on_its_own_chest(tmp_path, sample_dir):
    """skimage's astronaut (NASA, public domain) already shows the chest: eyes are detected
    (no .tem), nothing is synthesised below (ext_y=0) and the print lies below the real face."""
    skd = pytest.importorskip("skimage.data")
    pytest.importorskip("dlib")
    from madpad.io import write_image

    (tmp_path / "src").mkdir()
    write_image(tmp_path / "src" / "astronaut.png", skd.astronaut())
    wearers = list_sources(tmp_path / "src", tag="nasa")
    assert wearers[0].eyes is None  # no landmark file: detection path
    cfg = SynthConfig(width=512, pad_x=0.0, ext_y=0.0, species=("tshirt_face_visible",), bona_fide=("extended",))
    rows = _rows(generate_set(wearers=wearers, faces=list_sources(sample_dir / "neutral", tag="p"),
                              out_dir=tmp_path / "out", cfg=cfg, progress=False))
    bona, attack = rows
    assert (int(bona["width"]), int(bona["height"])) == (512, 512)  # no canvas extension
    fb, pb = _box(attack["wearer_face_box"]), _box(attack["print_box"])
    assert 150 < (fb[0] + fb[2]) / 2 < 300 and fb[1] < 120  # the astronaut's face, top middle
    assert pb[1] > fb[1] + 0.6 * (fb[3] - fb[1]) and pb[3] <= 512  # print on the chest below the face
    img = read_image(tmp_path / "out" / attack["path"]).astype(float)
    orig = skd.astronaut().astype(float)
    y0, y1, x0, x1 = int(pb[1]) + 5, int(pb[3]) - 5, int(pb[0]) + 5, int(pb[2]) - 5
    assert np.abs(img[y0:y1, x0:x1] - orig[y0:y1, x0:x1]).mean() > 10
    assert np.abs(img[:int(pb[1]) - 5] - orig[:int(pb[1]) - 5]).mean() < 2  # above the print: untouched


def test_defaults_keep_the_four_original_species_and_two_captures():
    cfg = SynthConfig()
    assert cfg.species == DEFAULT_SPECIES == SPECIES[:4] and cfg.bona_fide == ("extended", "portrait")


@pytest.fixture(scope="module")
def new_species_set(tmp_path_factory, sample_dir):
    out = tmp_path_factory.mktemp("synth_new")
    cfg = SynthConfig(width=200, seed=5, species=("tshirt_face_visible", "tshirt_large_rotated", "tshirt_small_high",
                                                  "tshirt_multi_person"),
                      bona_fide=("extended", "multi_person"))
    wearers = list_sources(sample_dir / "neutral", tag="w")[:3]
    man = generate_set(wearers=wearers, faces=list_sources(sample_dir / "neutral", tag="p"), out_dir=out, cfg=cfg,
                       progress=False)
    return out, {r["id"]: r for r in _rows(man)}, cfg


def test_two_person_images_hold_the_wearer_and_another_wearer(new_species_set):
    out, rows, cfg = new_species_set
    for rid, r in rows.items():
        if r["capture"] != "multi_person":
            assert r["other_subjects"] == "" and r["other_face_boxes"] == ""
            continue
        img = read_image(out / r["path"])
        # two 200 px canvases joined with an overlap of 10-20 % of a canvas
        assert 200 * (2 - cfg.pair_overlap[1]) - 1 <= img.shape[1] <= 200 * (2 - cfg.pair_overlap[0]) + 1, rid
        assert r["other_subjects"].startswith("w_") and r["other_subjects"] != r["subject"]
        wearer, other = _box(r["wearer_face_box"]), _box(r["other_face_boxes"])
        assert min(wearer[2], other[2]) <= max(wearer[0], other[0])  # side by side, not overlapping
        for b in (wearer, other):
            assert 0 <= b[0] and b[2] <= img.shape[1] and b[1] >= -0.1 * img.shape[0]
        if r["label"] == "attack":
            pb = _box(r["print_box"])
            assert wearer[0] - 5 <= (pb[0] + pb[2]) / 2 <= wearer[2] + 5 and pb[1] > wearer[1]  # under the wearer
            bona = read_image(out / rows[f"{r['subject']}__bona_fide_extended"]["path"]).astype(float)
            fb = _box(rows[f"{r['subject']}__bona_fide_extended"]["wearer_face_box"]).astype(int)
            inner = (slice(fb[1] + 8, fb[3] - 8), slice(fb[0] + 8, fb[2] - 8))
            off = np.round(wearer - _box(rows[f"{r['subject']}__bona_fide_extended"]["wearer_face_box"])).astype(int)
            moved = (slice(inner[0].start + off[1], inner[0].stop + off[1]),
                     slice(inner[1].start + off[0], inner[1].stop + off[0]))
            assert np.abs(img.astype(float)[moved] - bona[inner]).mean() > 20  # the wearer's face is covered


def test_large_rotated_and_small_high_prints(new_species_set):
    _, rows, cfg = new_species_set
    for r in rows.values():
        if r["species"] == "tshirt_large_rotated":
            angle = float(r["print_angle"])
            assert cfg.rotation[0] <= abs(angle) <= cfg.rotation[1] and r["capture"] == "cropped"
            q = _box(r["print_quad"]).reshape(4, 2)  # TL, TR, BR, BL
            top = q[1] - q[0]
            # the top edge turns by -angle in y-down pixels (positive angle = counter-clockwise on screen);
            # the perspective jitter moves corners by a few percent of the print width
            assert np.degrees(np.arctan2(-top[1], top[0])) == pytest.approx(angle, abs=8)
            assert r["wearer_face_box"] == ""  # the head is out of the frame
        elif r["species"] == "tshirt_small_high":
            pb, fb = _box(r["print_box"]), _box(r["wearer_face_box"])
            visible = _box(rows[f"{r['subject']}__tshirt_face_visible"]["print_box"])
            assert (pb[2] - pb[0]) < 0.7 * (visible[2] - visible[0])  # small
            assert pb[1] < visible[1] and pb[1] > fb[1]               # high on the chest, below the face top
        elif r["species"] == "tshirt_face_visible":
            assert float(r["print_angle"]) == 0.0


def test_wearer_and_printed_subsets_for_subject_disjoint_splits(tmp_path, sample_dir, capsys):
    from madpad.pad.synth import select_sources

    src = list_sources(sample_dir / "neutral", tag="w")
    stems = [s.path.stem for s in src]
    (tmp_path / "split.txt").write_text(f"# tuning half\n{stems[2]}\n{stems[0]}\n")
    assert [s.path.stem for s in select_sources(src, f"@{tmp_path / 'split.txt'}", what="--wearers")] == \
        [stems[0], stems[2]]
    assert select_sources(src, None, what="--wearers") == src
    with pytest.raises(UsageError, match="no photo named"):
        select_sources(src, "nobody", what="--wearers")
    assert main(["--source", str(sample_dir / "neutral"), "--faces", str(sample_dir / "neutral"),
                 "--out", str(tmp_path / "o"), "--wearers", "@" + str(tmp_path / "missing.txt")]) == 2
    assert "list file not found" in capsys.readouterr().err
    rc = main(["--source", str(sample_dir / "neutral"), "--faces", str(sample_dir / "neutral"), "--out",
               str(tmp_path / "o2"), "--wearers", stems[0], "--species", "all", "--bona-fide", "all",
               "--width", "160", "--no-progress"])
    assert rc == 0
    fails = _rows(tmp_path / "o2" / "failures.csv")  # one wearer: no second person for two-person images
    assert len(fails) == 1 and "second wearer" in fails[0]["error"]
