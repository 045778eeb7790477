"""Columnar score-file reading: the first bad row named exactly, failures to acquire, whitespace."""

from __future__ import annotations

import re

import numpy as np
import pytest

from madpad.data.columnar import read_columns
from madpad.errors import ManifestError
from madpad.report.scores import read_comparison_scores, read_pad_scores


def big_csv(path, n=3000, *, extra_col=False, bad_at=None, bad_line=None):
    """n data rows; row k (1-based data index) replaced by ``bad_line`` when given."""
    lines = ["id,score,label,species" + (",subject" if extra_col else "")]
    for i in range(n):
        att = i % 2 == 1
        line = f"r{i},{0.5 + (0.3 if att else -0.3) + 0.0001 * i:.6f},{'attack' if att else 'bona_fide'}," \
               f"{'sp' + str(i % 3) if att else ''}" + (f",s{i % 50}" if extra_col else "")
        if bad_at is not None and i == bad_at:
            line = bad_line
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("bad_line, pattern", [
    ("rX,abc,bona_fide,", r"row 2502: field 'score': 'abc' is not a number"),
    ("rX,inf,bona_fide,", r"row 2502: field 'score': score is 'inf'; scores must be finite"),
    ("rX,,bona_fide,", r"row 2502: field 'score': empty score"),
    ("rX,0.1,bonafide,", r"row 2502: field 'label': 'label' must be one of .*got 'bonafide'"),
    ("rX,0.9,attack,", r"row 2502: field 'species': attack row without species"),
    ("rX,0.1,bona_fide,print", r"row 2502: field 'species': bona fide row has species 'print'"),
    ("r7,0.1,bona_fide,", r"row 2502: field 'id': duplicate id 'r7' \(first at row 9\)"),
    (",0.1,bona_fide,", r"row 2502: field 'id': empty id"),
    ("rX,0.1,bona_fide,,,extra", r"row 2502: 6 values for 4 columns"),
])
def test_first_bad_row_is_named_in_a_large_file(tmp_path, bad_line, pattern):
    f = big_csv(tmp_path / "s.csv", bad_at=2500, bad_line=bad_line)
    with pytest.raises(ManifestError) as e:
        read_pad_scores(f)
    assert re.search(pattern, str(e.value)), str(e.value)
    assert str(f) in str(e.value) and e.value.row == 2502


def test_the_earliest_of_several_faults_wins_and_blank_lines_count_as_rows(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("id,score,label,species\n\nb1,0.1,bona_fide,\n\na1,abc,attack,x\nb2,0.2,unknown,\n",
                 encoding="utf-8")
    with pytest.raises(ManifestError, match=r"row 5: field 'score': 'abc' is not a number"):
        read_pad_scores(f)
    g = tmp_path / "q.csv"  # a quoted newline makes a record span two lines: rows are records
    g.write_text('id,score,label,species\n"b\n1",0.1,bona_fide,\nb2,zz,bona_fide,\n', encoding="utf-8")
    with pytest.raises(ManifestError, match=r"row 3: field 'score'"):
        read_pad_scores(g)


def test_failure_to_acquire_rows_are_kept_and_whitespace_is_stripped(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("id,score,label,species,status,error\n"
                 "b1, 0.1 ,bona_fide,,ok,\n"
                 "b2,,bona_fide,,no_face,no face found\n"
                 " a1 ,0.9, attack , print ,ok,\n"
                 "a2,,attack,print,failed,boom\n"
                 "a3,0.7,attack,replay,,\n"
                 "a4,nan,attack,replay,timeout,\n", encoding="utf-8")  # a failure's score is ignored
    t = read_pad_scores(f)
    assert len(t) == 6 and t.n_failed == 3
    assert t.acquired.tolist() == [True, False, True, False, True, False]
    assert np.isnan(t.scores[[1, 3]]).all() and t.scores[[0, 2, 4]].tolist() == [0.1, 0.9, 0.7]
    assert t.species_names == ["print", "replay"]
    assert t.species.tolist() == ["", "", "print", "print", "replay", "replay"]
    assert t.ids.tolist() == ["b1", "b2", "a1", "a2", "a3", "a4"]
    assert t.failure_statuses().tolist() == ["no_face", "failed", "timeout"]
    assert t.status.tolist() == ["ok", "no_face", "ok", "failed", "ok", "timeout"]
    # status ok with an empty score is still an error
    g = tmp_path / "g.csv"
    g.write_text("id,score,label,species,status\nb1,,bona_fide,,ok\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"row 2: field 'score': empty score"):
        read_pad_scores(g)


def test_columnar_reader_matches_a_row_by_row_reading(tmp_path):
    f = big_csv(tmp_path / "s.csv", n=500, extra_col=True)
    t = read_pad_scores(f)
    import csv

    rows = list(csv.DictReader(open(f, encoding="utf-8")))
    assert t.ids.tolist() == [r["id"] for r in rows]
    assert t.scores.tolist() == [float(r["score"]) for r in rows]
    assert t.labels.tolist() == [r["label"] for r in rows]
    assert t.species.tolist() == [r["species"] for r in rows]
    assert t.subjects.tolist() == [r["subject"] for r in rows]
    # subject codes group exactly like the subject strings
    codes = t.subject_codes
    for s in ("s0", "s7", "s49"):
        idx = np.flatnonzero(t.subjects == s)
        assert len(set(codes[idx].tolist())) == 1
    assert len(set(codes.tolist())) == 50


def test_read_columns_header_and_encoding_faults(tmp_path):
    f = tmp_path / "a.csv"
    f.write_bytes(b"\xef\xbb\xbfid, score\na,1\n")  # BOM and spaces in the header
    t = read_columns(f, ["id", "score"])
    assert t.columns == ["id", "score"] and t.strings("score").to_list() == ["1"]
    f.write_bytes(b"id,score\na,1\nb\xff,2\n")
    with pytest.raises(ManifestError, match=r"row 3: cannot parse CSV"):
        read_columns(f, ["id", "score"])
    f.write_text("id,id,score\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"row 1: duplicate column\(s\) \['id'\]"):
        read_columns(f, ["id", "score"])


def test_comparison_reader_first_bad_row(tmp_path):
    head = "system,kind,reference,probe,reference_subjects,probe_subject,score\n"
    rows = [f"A,impostor,r{i},p{i},s{i},t{i},0.{i % 10}" for i in range(1000)]
    rows[700] = "A,genuine,r,p,s1,s2,0.5"
    rows[800] = "A,kind?,r,p,s1,s2,0.5"
    f = tmp_path / "c.csv"
    f.write_text(head + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"row 702: field 'probe_subject': genuine comparison of different"):
        read_comparison_scores(f)
    rows[700] = "A,morph,m1,p,s1; s2,s1,0.5"
    rows[750] = "A,morph,m1,p,s2;s3,s2,0.5"
    f.write_text(head + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"row 752: field 'reference_subjects': morph 'm1' has contributors "
                                            r"'s2;s3' here but 's1;s2' at row 702"):
        read_comparison_scores(f)
    rows[750] = "A,morph,m1,p2,s2;s1,s2,0.5"
    f.write_text(head + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"row 802: field 'kind'"):
        read_comparison_scores(f)
    rows[800] = "A,impostor,r,p,s1,s2,0.5"
    f.write_text(head + "\n".join(rows) + "\n", encoding="utf-8")
    t = read_comparison_scores(f)
    assert len(t) == 1000 and t.reference_subjects[700] == "s1;s2" and t.score[1] == 0.1


def test_in_memory_tables_are_validated_like_files():
    from madpad.report import pad_report

    with pytest.raises(ValueError, match=r"labels\[1\] = 'morph'"):
        pad_report([0.1, 0.9], ["bona_fide", "morph"], n_bootstrap=0)
    with pytest.raises(ValueError, match=r"species\[1\] is empty for an attack"):
        pad_report([0.1, 0.9], ["bona_fide", "attack"], ["", ""], n_bootstrap=0)
    with pytest.raises(ValueError, match="NaN"):
        pad_report([0.1, float("nan"), 0.8], ["bona_fide", "attack", "attack"], ["", "p", "p"], n_bootstrap=0)
