"""Manifest loading, validation errors (file, row, field), writers and shipped manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from madpad.data import (
    ImageRecord,
    MorphRecord,
    PairRecord,
    load_images,
    load_morphs,
    load_pairs,
    read_table,
    write_images,
    write_morphs,
    write_pairs,
    write_table,
)
from madpad.errors import ManifestError

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "data_manifests"


@pytest.fixture
def root(tmp_path):
    """A dataset root with four tiny (empty-content) files."""
    r = tmp_path / "data"
    for rel in ("a/1.jpg", "a/2.jpg", "b/3.jpg", "b/4.jpg", "morph/m1.png"):
        p = r / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    return r


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


IMAGES_OK = """id,path,subject,label,species,capture,source,gender
i1,a/1.jpg,001,bona_fide,,enrolment,toy,female
i2,a/2.jpg,001,bona_fide,,probe,toy,female
i3,b/3.jpg,002;003,attack,landmark,morph,toy,
"""


def test_load_images_resolves_paths_and_keeps_extras(tmp_path, root):
    m = load_images(_write(tmp_path / "m.csv", IMAGES_OK), root=root)
    assert [r.id for r in m] == ["i1", "i2", "i3"]
    assert m[0].path == (root / "a/1.jpg").resolve() and m[0].path.is_absolute()
    assert m[0].extra == {"gender": "female"}
    assert m.extra_columns == ("gender",)
    assert m[2].subjects == ("002", "003") and m[2].is_attack and m[2].species == "landmark"
    assert m.subjects() == {"001", "002", "003"}
    assert m.root == Path(root)


def test_default_root_is_manifest_folder(root):
    p = _write(root / "m.csv", "id,path,subject,label\nx,a/1.jpg,001,bona_fide\n")
    assert load_images(p)[0].path == (root / "a/1.jpg").resolve()


def _err(fn, *args, **kw) -> ManifestError:
    with pytest.raises(ManifestError) as ei:
        fn(*args, **kw)
    return ei.value


@pytest.mark.parametrize("text,row,field,needle", [
    # missing column -> header row 1, the missing field named
    ("id,path,label\ni1,a/1.jpg,bona_fide\n", 1, "subject", "missing required column(s) ['subject']"),
    # unknown label with a suggestion
    ("id,path,subject,label,species\ni1,a/1.jpg,001,bona_fide,\ni2,a/2.jpg,001,bonafide,\n", 3, "label",
     "did you mean 'bona_fide'"),
    # attack without species
    ("id,path,subject,label,species\ni1,a/1.jpg,001,attack,\n", 2, "species", "needs its attack species"),
    # bona fide with a species
    ("id,path,subject,label,species\ni1,a/1.jpg,001,bona_fide,print\n", 2, "species", "must be empty"),
    # duplicate id names the first occurrence
    ("id,path,subject,label\ni1,a/1.jpg,001,bona_fide\ni2,a/2.jpg,001,bona_fide\ni1,b/3.jpg,002,bona_fide\n",
     4, "id", "first used in row 2"),
    # empty subject
    ("id,path,subject,label\ni1,a/1.jpg,,bona_fide\n", 2, "subject", "is empty"),
    # path escaping the root
    ("id,path,subject,label\ni1,a/1.jpg,001,bona_fide\ni2,../outside.jpg,001,bona_fide\n", 3, "path",
     "escapes the dataset root"),
    ("id,path,subject,label\ni1,a/../../x.jpg,001,bona_fide\n", 2, "path", "escapes the dataset root"),
    # absolute and Windows-style paths
    ("id,path,subject,label\ni1,/etc/passwd,001,bona_fide\n", 2, "path", "is absolute"),
    ("id,path,subject,label\ni1,a\\1.jpg,001,bona_fide\n", 2, "path", "looks like a Windows path"),
    ("id,path,subject,label\ni1,C:/data/1.jpg,001,bona_fide\n", 2, "path", "looks like a Windows path"),
    # wrong number of fields
    ("id,path,subject,label\ni1,a/1.jpg,001,bona_fide,extra\n", 2, None, "has 5 fields but the header has 4"),
    # blank lines still count as spreadsheet rows
    ("id,path,subject,label\n\ni1,a/1.jpg,001,bogus\n", 3, "label", "got 'bogus'"),
])
def test_image_manifest_errors_name_file_row_field(tmp_path, root, text, row, field, needle):
    p = _write(tmp_path / "bad.csv", text)
    e = _err(load_images, p, root=root)
    assert e.path == str(p) and e.row == row and e.field == field
    assert needle in str(e)
    assert str(e).startswith(f"{p} row {row}")


def test_missing_files_listed_up_to_five_then_counted(tmp_path, root):
    lines = ["id,path,subject,label", "ok,a/1.jpg,001,bona_fide"]
    lines += [f"m{i},gone/{i}.jpg,00{i},bona_fide" for i in range(7)]
    p = _write(tmp_path / "m.csv", "\n".join(lines) + "\n")
    e = _err(load_images, p, root=root)
    msg = str(e)
    assert "7 file(s) not found" in msg and "and 2 more" in msg
    assert "gone/4.jpg" in msg and "gone/5.jpg" not in msg
    assert e.row == 3 and e.field == "path"
    # check_files=False loads it anyway
    assert len(load_images(p, root=root, check_files=False)) == 8


def test_manifest_file_missing_or_empty(tmp_path):
    e = _err(load_images, tmp_path / "nope.csv")
    assert "manifest file not found" in str(e) and e.path.endswith("nope.csv")
    e = _err(load_images, _write(tmp_path / "empty.csv", ""))
    assert "empty file" in str(e)


def test_malformed_jsonl_names_line(tmp_path, root):
    p = _write(tmp_path / "m.jsonl", '{"id":"i1","path":"a/1.jpg","subject":"001","label":"bona_fide"}\n{oops\n')
    e = _err(load_images, p, root=root)
    assert e.row == 2 and "invalid JSON" in str(e)
    p = _write(tmp_path / "n.jsonl", '{"id":"i1","path":"a/1.jpg","subject":"001","label":"attack"}\n')
    e = _err(load_images, p, root=root)
    assert e.row == 1 and e.field == "species"


PAIRS_OK = """id,suspect,live,label,species,subjects,note
p1,a/1.jpg,a/2.jpg,bona_fide,,001,x
p2,morph/m1.png,b/3.jpg,attack,landmark,002;003,y
"""


def test_pairs_load_and_validate(tmp_path, root):
    m = load_pairs(_write(tmp_path / "p.csv", PAIRS_OK), root=root)
    assert m[1].subjects == ("002", "003") and m[1].suspect == (root / "morph/m1.png").resolve()
    assert m[1].extra == {"note": "y"}
    bad = PAIRS_OK.replace("p1,a/1.jpg,a/2.jpg,bona_fide,,001", "p1,a/1.jpg,a/2.jpg,bona_fide,,001;002")
    e = _err(load_pairs, _write(tmp_path / "b.csv", bad), root=root)
    assert (e.row, e.field) == (2, "subjects") and "one subject" in str(e)
    bad = PAIRS_OK.replace("b/3.jpg", "../b/3.jpg")
    e = _err(load_pairs, _write(tmp_path / "c.csv", bad), root=root)
    assert (e.row, e.field) == (3, "live")
    bad = PAIRS_OK.replace("a/2.jpg", "a/9.jpg")
    e = _err(load_pairs, _write(tmp_path / "d.csv", bad), root=root)
    assert (e.row, e.field) == (2, "live") and "a/9.jpg" in str(e)


MORPHS_OK = """id,path,a,b,subject_a,subject_b,alpha,method,seed,params,status,error
m1,morph/m1.png,a/1.jpg,b/3.jpg,001,002,0.5,landmark,7,"{""blend"": 0.5}",ok,
m2,,a/2.jpg,b/4.jpg,001,003,0.5,landmark,7,{},no_face,no face in b/4.jpg
"""


def test_morphs_load_params_and_failed_rows(tmp_path, root):
    m = load_morphs(_write(tmp_path / "m.csv", MORPHS_OK), root=root)
    assert m[0].params == {"blend": 0.5} and m[0].seed == 7 and m[0].alpha == 0.5 and m[0].ok
    assert m[1].path is None and m[1].status == "no_face" and not m[1].ok
    assert m[0].subjects == ("001", "002")


@pytest.mark.parametrize("old,new,field,needle", [
    ('"{""blend"": 0.5}"', '"{blend: 0.5}"', "params", "must be a JSON object"),
    ('"{""blend"": 0.5}"', '"[1,2]"', "params", "got a JSON list"),
    (",0.5,landmark,7,\"{", ",1.5,landmark,7,\"{", "alpha", "must be in [0, 1]"),
    (",0.5,landmark,7,\"{", ",half,landmark,7,\"{", "alpha", "must be a number"),
    (",landmark,7,\"{", ",landmark,seven,\"{", "seed", "must be an integer"),
])
def test_morph_field_errors(tmp_path, root, old, new, field, needle):
    assert old in MORPHS_OK
    e = _err(load_morphs, _write(tmp_path / "m.csv", MORPHS_OK.replace(old, new, 1)), root=root)
    assert (e.row, e.field) == (2, field) and needle in str(e)


def test_round_trip_csv_jsonl_csv(tmp_path, root):
    for text, load, write in ((IMAGES_OK, load_images, write_images), (PAIRS_OK, load_pairs, write_pairs),
                              (MORPHS_OK, load_morphs, write_morphs)):
        a = load(_write(tmp_path / "in.csv", text), root=root)
        write(tmp_path / "out.jsonl", a)
        b = load(tmp_path / "out.jsonl", root=root)
        write(tmp_path / "back.csv", b)
        c = load(tmp_path / "back.csv", root=root)
        assert [r.to_row() for r in a] == [r.to_row() for r in b] == [r.to_row() for r in c]
        assert a == b == c  # dataclass equality (paths, subjects, params, extras)
        # JSONL keeps native types
        first = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
        if "params" in first:
            assert first["params"] == {"blend": 0.5} and first["seed"] == 7
        if "subjects" in first:
            assert isinstance(first["subjects"], list)
    # CSV text written back equals the input (same column order, same relative paths)
    m = load_images(_write(tmp_path / "in.csv", IMAGES_OK), root=root)
    write_images(tmp_path / "again.csv", m)
    assert (tmp_path / "again.csv").read_text() == IMAGES_OK


def test_writers_build_rows_from_records(tmp_path, root):
    recs = [ImageRecord(id="x", path="a/1.jpg", subject="001", label="bona_fide")]
    write_images(tmp_path / "w.csv", recs)
    assert load_images(tmp_path / "w.csv", root=root)[0].path == (root / "a/1.jpg").resolve()
    pr = [PairRecord(id="p", suspect="a/1.jpg", live="a/2.jpg", label="bona_fide", subjects=("001",))]
    write_pairs(tmp_path / "p.csv", pr)
    assert load_pairs(tmp_path / "p.csv", root=root)[0].subjects == ("001",)
    mr = [MorphRecord(id="m", path="morph/m1.png", a="a", b="b", subject_a="1", subject_b="2", method="x",
                      params={"k": [1, 2]})]
    write_morphs(tmp_path / "m.csv", mr)
    assert load_morphs(tmp_path / "m.csv", root=root)[0].params == {"k": [1, 2]}


def test_write_table_atomic_and_generic(tmp_path):
    p = write_table(tmp_path / "t.csv", [{"a": 1, "b": "x,y"}, {"a": 2, "c": [1, 2]}], columns=["b", "a"])
    t = read_table(p)
    assert t.columns == ["b", "a", "c"] and t.rows[0] == {"b": "x,y", "a": "1", "c": ""}
    assert t.rows[1]["c"] == "[1,2]" and t.row_numbers == [2, 3]
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]  # no temp files left behind
    with pytest.raises(ManifestError, match="cannot tell the format"):
        write_table(tmp_path / "t.xlsx", [{"a": 1}])


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_read_table_bom_and_non_utf8_bytes_name_the_row(tmp_path, bom):
    p = tmp_path / "t.csv"
    p.write_bytes(bom + b"id,name\n1,ok\n")
    t = read_table(p)
    assert t.columns == ["id", "name"] and t.rows == [{"id": "1", "name": "ok"}]  # an Excel BOM is not a column
    p.write_bytes(bom + b"id,name\n1,ok\n\n2,Ren\xe9e\n")  # Latin-1 on the 4th line (blank lines count)
    with pytest.raises(ManifestError, match=rf"t.csv row 4: not UTF-8 text .* at byte {len(bom) + 19}\)"):
        read_table(p)


def test_read_table_oversized_field_names_the_row(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("id,name\n1,ok\n2," + "x" * 140_000 + "\n")
    with pytest.raises(ManifestError, match="t.csv row 3: malformed CSV .*field limit"):
        read_table(p)


# ---------------------------------------------------------------- shipped manifests
def test_sample_manifest_matches_bundled_files():
    from madpad.data.sample import sample_manifest, sample_root

    m = sample_manifest()
    assert len(m) == 48 and len(m.subjects()) == 24
    assert all(len(s) == 3 and s.isdigit() for s in m.subjects())
    caps = {(r.capture, r.extra["expression"]) for r in m}
    assert caps == {("enrolment", "neutral"), ("probe", "smiling")}
    assert all(r.path.is_file() and sample_root() in r.path.parents for r in m)
    # the copy in data_manifests/ is identical to the one shipped in the package
    assert (MANIFESTS / "sample_frll24_images.csv").read_text() == (sample_root() / "images.csv").read_text()
    # and equals what the generator builds from the files now
    from madpad.data.frll import frll_images

    assert [r.to_row() for r in frll_images(sample_root())] == [r.to_row() for r in m]


def test_frll_manifest_against_shared_data(frll_dir):
    m = load_images(MANIFESTS / "frll_images.csv", root=frll_dir)
    assert len(m) == 160 and len(m.subjects()) == 80
    assert {r.extra["gender"] for r in m} <= {"female", "male"}
    from madpad.data.frll import frll_images

    assert [r.to_row() for r in frll_images(frll_dir)] == [r.to_row() for r in m]


def test_frll_manifest_needs_root():
    e = _err(load_images, MANIFESTS / "frll_images.csv")  # default root = data_manifests/: files absent
    assert "160 file(s) not found" in str(e) and e.row == 2


@pytest.mark.parametrize("name,loader", [
    ("frll_images.csv", load_images), ("frgc_v2_images.csv", load_images), ("feret_images.csv", load_images),
    ("synmad2022_images.csv", load_images), ("synmad2022_pairs.csv", load_pairs), ("morphs.csv", load_morphs),
])
def test_templates_parse(name, loader):
    m = loader(MANIFESTS / "templates" / name, check_files=False)
    assert len(m) >= 2


def test_synmad_template_species_and_contributors():
    m = load_images(MANIFESTS / "templates" / "synmad2022_images.csv", check_files=False)
    assert all(r.is_attack and len(r.subjects) == 2 for r in m)
    assert {r.species for r in m} <= {"FaceMorpher", "OpenCV", "WebMorph", "MIPGAN-I", "MIPGAN-II"}


def test_writers_make_absolute_paths_relative_to_root(tmp_path, root):
    recs = [ImageRecord(id="x", path=(root / "b/3.jpg").resolve(), subject="002", label="bona_fide")]
    write_images(tmp_path / "w.csv", recs, root=root)
    assert (tmp_path / "w.csv").read_text().splitlines()[1].startswith("x,b/3.jpg,002,")
    assert load_images(tmp_path / "w.csv", root=root)[0].path == (root / "b/3.jpg").resolve()
    pr = [PairRecord(id="p", suspect=root / "a/1.jpg", live=root / "a/2.jpg", label="bona_fide", subjects=("001",))]
    write_pairs(tmp_path / "p.jsonl", pr, root=root)
    assert json.loads((tmp_path / "p.jsonl").read_text())["suspect"] == "a/1.jpg"
    with pytest.raises(ManifestError, match="not inside the dataset root"):
        write_images(tmp_path / "bad.csv", [ImageRecord(id="y", path=tmp_path / "elsewhere.jpg", subject="1",
                                                        label="bona_fide")], root=root)


def test_symlinked_folder_inside_root_is_followed(tmp_path, root):
    elsewhere = tmp_path / "disk2"
    (elsewhere / "x").mkdir(parents=True)
    (elsewhere / "x" / "9.jpg").write_bytes(b"x")
    (root / "linked").symlink_to(elsewhere)
    p = _write(tmp_path / "m.csv", "id,path,subject,label\ni,linked/x/9.jpg,001,bona_fide\n")
    m = load_images(p, root=root)
    assert m[0].path.is_file() and m[0].path == Path(root).resolve() / "linked/x/9.jpg"
