"""Subject-disjoint splits: disjointness, determinism, fractions, stratification, morph placement."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest

from madpad.data import (
    ImageRecord,
    MorphRecord,
    PairRecord,
    SubjectLeakageError,
    assign_by_subject,
    check_disjoint,
    split_by_subject,
    split_manifest,
)

SUBJECTS = [f"{i:03d}" for i in range(1, 101)]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_splits_are_disjoint_and_cover_all(seed):
    s = split_by_subject(SUBJECTS, seed=seed)
    assert list(s) == ["train", "dev", "test"]
    for a, b in combinations(s.values(), 2):
        assert not (a & b)
    assert set().union(*s.values()) == set(SUBJECTS)
    check_disjoint(s)


def test_fractions_respected_exactly_by_largest_remainder():
    s = split_by_subject(SUBJECTS, fractions=(0.6, 0.2, 0.2))
    assert [len(v) for v in s.values()] == [60, 20, 20]
    s = split_by_subject(SUBJECTS[:10], fractions=(0.55, 0.25, 0.2), names=("a", "b", "c"))
    # 5.5, 2.5, 2.0 -> floors 5,2,2 (sum 9); the one left goes to the largest remainder (tie -> first)
    assert [len(v) for v in s.values()] == [6, 2, 2]
    s = split_by_subject(SUBJECTS[:3])  # 1.8, 0.6, 0.6 -> every positive split still gets one subject
    assert [len(v) for v in s.values()] == [1, 1, 1]
    s = split_by_subject(SUBJECTS[:7], fractions=(0.5, 0.5, 0.0))
    assert [len(v) for v in s.values()] == [4, 3, 0]


def test_deterministic_with_seed_and_input_order():
    a = split_by_subject(SUBJECTS, seed=3)
    b = split_by_subject(list(reversed(SUBJECTS)) + SUBJECTS[:5], seed=3)  # order/duplicates do not matter
    c = split_by_subject(SUBJECTS, seed=4)
    assert a == b
    assert a != c


def test_bad_fractions():
    with pytest.raises(ValueError, match="sum to 1"):
        split_by_subject(SUBJECTS, fractions=(0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="one fraction per split"):
        split_by_subject(SUBJECTS, fractions=(0.5, 0.5))
    with pytest.raises(ValueError, match=">= 0"):
        split_by_subject(SUBJECTS, fractions=(1.2, -0.2, 0.0))


def test_stratified_split_keeps_group_proportions():
    gender = {s: ("female" if int(s) % 2 else "male") for s in SUBJECTS}
    s = split_by_subject(SUBJECTS, seed=0, stratify=gender)
    for name, n in (("train", 30), ("dev", 10), ("test", 10)):
        assert sum(gender[x] == "female" for x in s[name]) == n
        assert sum(gender[x] == "male" for x in s[name]) == n
    # 3 groups of 7: per group 4.2/1.4/1.4; totals follow the unstratified 21 -> 12.6/4.2/4.2 -> 13/4/4
    groups = {s: "abc"[i % 3] for i, s in enumerate(SUBJECTS[:21])}
    s3 = split_by_subject(SUBJECTS[:21], stratify=groups)
    assert [len(v) for v in s3.values()] == [13, 4, 4]
    for g in "abc":
        assert sorted(sum(groups[x] == g for x in v) for v in s3.values()) in ([1, 2, 4], [1, 1, 5])
    with pytest.raises(ValueError, match="no group"):
        split_by_subject(SUBJECTS, stratify={"001": "f"})


def test_morphs_land_only_where_all_contributors_are():
    splits = {"train": {"1", "2", "3"}, "test": {"4", "5"}}
    morphs = [
        MorphRecord(id="m12", path=None, a="", b="", subject_a="1", subject_b="2"),
        MorphRecord(id="m45", path=None, a="", b="", subject_a="4", subject_b="5"),
        MorphRecord(id="m14", path=None, a="", b="", subject_a="1", subject_b="4"),  # straddles: dropped
        MorphRecord(id="m19", path=None, a="", b="", subject_a="1", subject_b="9"),  # 9 in no split: dropped
    ]
    res = assign_by_subject(morphs, splits)
    assert [m.id for m in res["train"]] == ["m12"] and [m.id for m in res["test"]] == ["m45"]
    assert [m.id for m in res.dropped] == ["m14", "m19"] and res.n_dropped == 2
    assert res.counts() == {"train": 1, "test": 1, "dropped": 2}
    check_disjoint(res)


def test_split_manifest_on_pairs_and_images_never_leaks():
    pairs = [PairRecord(id=f"bf{i}", suspect="x", live="y", label="bona_fide", subjects=(f"{i:02d}",))
             for i in range(30)]
    pairs += [PairRecord(id=f"at{i}", suspect="x", live="y", label="attack", species="m",
                         subjects=(f"{i:02d}", f"{(i + 1) % 30:02d}")) for i in range(30)]
    res = split_manifest(pairs, fractions=(0.5, 0.5), names=("train", "test"), seed=1)
    check_disjoint(res)
    kept = sum(len(v) for v in res.parts.values())
    assert kept + res.n_dropped == 60 and res.n_dropped > 0
    assert all(len(v) == 15 for v in res.subjects.values())
    for name, rows in res.parts.items():
        for r in rows:
            assert set(r.subjects) <= res.subjects[name]
    images = [ImageRecord(id=f"i{i}", path="p", subject=f"{i % 10}", label="bona_fide") for i in range(40)]
    r2 = split_manifest(images, seed=0)
    assert r2.n_dropped == 0 and sum(len(v) for v in r2.parts.values()) == 40
    check_disjoint(r2)


def test_check_disjoint_raises_naming_subjects_and_splits():
    with pytest.raises(SubjectLeakageError) as ei:
        check_disjoint({"train": {"001", "002"}, "test": {"002", "003"}, "dev": {"003"}})
    msg = str(ei.value)
    assert "2 subject(s)" in msg and "'002' in ['test', 'train']" in msg and "'003' in ['dev', 'test']" in msg
    leaky = {"train": [MorphRecord(id="m", path=None, a="", b="", subject_a="1", subject_b="2")],
             "test": [ImageRecord(id="i", path="p", subject="2", label="bona_fide")]}
    with pytest.raises(SubjectLeakageError, match="'2'"):
        check_disjoint(leaky)
    with pytest.raises(SubjectLeakageError):
        assign_by_subject([], {"a": {"1"}, "b": {"1"}})


def test_cli_split_and_check(tmp_path, capsys):
    from madpad.data import load_images
    from madpad.data.__main__ import main
    from madpad.data.sample import sample_manifest_path, sample_root

    assert main(["check", str(sample_manifest_path())]) == 0
    assert "48 images rows, 24 subjects" in capsys.readouterr().out
    out = tmp_path / "splits"
    assert main(["split", str(sample_manifest_path()), "--out", str(out), "--seed", "3", "--stratify", "gender"]) == 0
    parts = {n: load_images(out / f"{n}.csv", root=sample_root()) for n in ("train", "dev", "test")}
    check_disjoint({n: m.subjects() for n, m in parts.items()})
    # 24 subjects: 14.4/4.8/4.8 -> 14/5/5, the same totals as without stratification
    assert [len(m.subjects()) for m in parts.values()] == [14, 5, 5]
    gender = {r.subject: r.extra["gender"] for m in parts.values() for r in m}
    assert [sum(gender[s] == "female" for s in m.subjects()) for m in parts.values()] == [7, 3, 2]
    assert sum(len(m) for m in parts.values()) == 48
    import json

    info = json.loads((out / "split.json").read_text())
    assert info["counts"]["dropped"] == 0 and info["seed"] == 3
    assert main(["split", str(sample_manifest_path()), "--out", str(out), "--stratify", "hair"]) == 2
    assert "not in the manifest's extra columns" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("id,path,subject,label\nx,a.jpg,001,maybe\n")
    assert main(["check", str(bad), "--no-files"]) == 2
    assert f"{bad} row 2: field 'label'" in capsys.readouterr().err


def test_manifest_and_split_modules_do_not_import_each_other():
    """Both need subject ids; they take them from madpad.data.subjects, not from each other."""
    import ast

    import madpad.data.manifest as manifest
    import madpad.data.split as split

    def imports(mod) -> set[str]:
        tree = ast.parse(Path(mod.__file__).read_text(encoding="utf-8"))
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    assert "madpad.data.split" not in imports(manifest)
    assert "madpad.data.manifest" not in imports(split)
