"""Evaluation protocols in the reports: failures to acquire, dev -> eval thresholds, the
ISO/IEC 20059 / NIST FATE MORPH figures, system comparison, MAP over FR systems.
Expected values are computed by hand in the comments."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from madpad.report.__main__ import main


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# bona fide 0.1..0.4 acquired + one failure; print 0.5..0.8 + one failure; replay 0.9 + one failure
FTA_CSV = """id,score,label,species,status
b1,0.1,bona_fide,,ok
b2,0.2,bona_fide,,ok
b3,0.3,bona_fide,,ok
b4,0.4,bona_fide,,ok
b5,,bona_fide,,no_face
a1,0.5,attack,print,ok
a2,0.6,attack,print,ok
a3,0.7,attack,print,ok
a4,0.8,attack,print,ok
a5,,attack,print,failed
r1,0.9,attack,replay,ok
r2,,attack,replay,failed
"""


def test_failures_to_acquire_both_ways_hand_computed(tmp_path, capsys):
    f = write(tmp_path / "s.csv", FTA_CSV)
    assert main(["pad", "--scores", str(f), "--out", str(tmp_path / "o"), "--bootstrap", "0",
                 "--targets", "0.25"]) == 0
    assert "3 failed to acquire" in capsys.readouterr().out
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    fta = rep["failure_to_acquire"]
    assert fta["n_failed"] == 3
    assert fta["bona_fide"] == {"n_presentations": 5, "n_failed": 1, "rate": 0.2, "statuses": {"no_face": 1}}
    assert fta["attack"]["n_presentations"] == 7 and fta["attack"]["n_failed"] == 2
    assert fta["species"]["print"] == {"n_presentations": 5, "n_failed": 1, "rate": 0.2, "statuses": {"failed": 1}}
    assert fta["species"]["replay"]["rate"] == 0.5
    # failures excluded: the acquired scores separate perfectly
    assert rep["n_bona_fide"] == 4 and rep["species"] == {"print": 4, "replay": 1} and rep["d_eer"] == 0.0
    op = rep["bpcer_at_apcer"]["0.25"]
    # print: floor(0.25*4) = 1 -> t = 0.6; replay: floor(0.25*1) = 0 -> 0.9; t = 0.6
    assert op["threshold"] == 0.6 and op["bpcer"] == 0.0 and op["apcer_per_species"] == {"print": 0.25, "replay": 0.0}
    # failures counted as errors: BPCER (0 + 1)/5, print (1 + 1)/5, replay (0 + 1)/2
    w = op["fta_as_errors"]
    assert w["bpcer"] == pytest.approx(0.2)
    assert w["apcer_per_species"] == {"print": pytest.approx(0.4), "replay": pytest.approx(0.5)}
    assert w["apcer"] == pytest.approx(0.5)
    # D-EER with failures as errors: between t = 0.3 (APCER 0.5, BPCER 3/5) and 0.4 (0.5, 2/5) -> 0.5
    assert fta["d_eer_fta_as_errors"] == pytest.approx(0.5)
    # hardest examples come from acquired rows only, ties broken by row order
    assert [h["id"] for h in rep["hardest"]["bona_fide_highest"]] == ["b4", "b3", "b2", "b1"]
    assert [(h["id"], h["species"]) for h in rep["hardest"]["attack_lowest"]] == [
        ("a1", "print"), ("a2", "print"), ("a3", "print"), ("a4", "print"), ("r1", "replay")]
    md = (tmp_path / "o" / "report.md").read_text()
    assert "## Failures to acquire" in md and "| bona fide | 5 | 1 | 20.00% | no_face (1) |" in md
    assert "FtA as errors" in md


def test_failures_through_the_library_api_and_without_any():
    from madpad.report import pad_report

    r = pad_report([0.1, np.nan, 0.9, 0.8], ["bona_fide", "bona_fide", "attack", "attack"], ["", "", "p", "p"],
                   status=["ok", "failed", "ok", "ok"], n_bootstrap=20)
    assert r["n_bona_fide"] == 1 and r["failure_to_acquire"]["bona_fide"]["n_failed"] == 1
    r2 = pad_report([0.1, 0.2, 0.9], ["bona_fide", "bona_fide", "attack"], n_bootstrap=0)
    assert "failure_to_acquire" not in r2


DEV_CSV = """id,score,label,species
d1,0.1,bona_fide,
d2,0.2,bona_fide,
d3,0.3,bona_fide,
d4,0.4,bona_fide,
d5,0.5,attack,print
d6,0.6,attack,print
d7,0.7,attack,print
d8,0.8,attack,print
"""
EVAL_CSV = """id,score,label,species
e1,0.15,bona_fide,
e2,0.35,bona_fide,
e3,0.65,bona_fide,
e4,0.9,bona_fide,
e5,0.55,attack,print
e6,0.62,attack,print
e7,0.95,attack,print
e8,0.3,attack,replay
e9,0.7,attack,replay
"""


def test_dev_to_eval_thresholds_hand_computed(tmp_path):
    dev = write(tmp_path / "dev.csv", DEV_CSV)
    ev = write(tmp_path / "eval.csv", EVAL_CSV)
    assert main(["pad", "--scores", str(ev), "--dev", str(dev), "--out", str(tmp_path / "o"), "--bootstrap", "0",
                 "--targets", "0.25"]) == 0
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    de = rep["dev_eval"]
    assert de["n_bona_fide_dev"] == 4 and de["n_attack_dev"] == 4
    # BPCER@APCER=25% on dev: print floor(0.25*4) = 1 -> t = 0.6 (dev APCER 1/4, BPCER 0)
    b = de["bpcer_at_apcer"]["0.25"]
    assert b["dev_threshold"] == 0.6 and b["dev_apcer"] == 0.25 and b["dev_bpcer"] == 0.0
    # eval at 0.6: bona fide 0.65, 0.9 >= 0.6 -> 2/4; print 0.55 < 0.6 -> 1/3; replay 0.3 -> 1/2
    assert b["eval_bpcer"] == 0.5
    assert b["eval_apcer_per_species"] == {"print": pytest.approx(1 / 3), "replay": 0.5}
    assert b["eval_apcer"] == 0.5
    # APCER@BPCER=25% on dev: t just above 0.3 (dev BPCER 1/4); eval: 0.35, 0.65, 0.9 -> 3/4; replay 0.3 -> 1/2
    a = de["apcer_at_bpcer"]["0.25"]
    assert a["dev_threshold"] == np.nextafter(0.3, 1) and a["dev_bpcer"] == 0.25 and a["dev_apcer"] == 0.0
    assert a["eval_bpcer"] == 0.75 and a["eval_apcer_per_species"] == {"print": 0.0, "replay": 0.5}
    # the eval's own thresholds are chosen on eval and differ
    assert rep["bpcer_at_apcer"]["0.25"]["threshold"] != b["dev_threshold"]
    # D-EER threshold of the dev set applied to eval
    d = de["d_eer"]
    t = d["dev_threshold"]
    assert 0.4 <= t <= 0.5 and d["dev_d_eer"] == 0.0
    assert d["eval_bpcer"] == 0.5 and d["eval_apcer_per_species"]["replay"] == 0.5
    md = (tmp_path / "o" / "report.md").read_text()
    assert "Development -> evaluation" in md and "| BPCER@APCER=25% | 0.6 |" in md


def test_dev_without_attacks_is_an_error(tmp_path, capsys):
    dev = write(tmp_path / "dev.csv", "id,score,label,species\nd1,0.1,bona_fide,\n")
    ev = write(tmp_path / "eval.csv", EVAL_CSV)
    assert main(["pad", "--scores", str(ev), "--dev", str(dev), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "dev.csv" in err and "no attack rows in the development scores" in err


def test_mad_kind_iso_20059_names_and_nist_fate_morph_points(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["id,score,label,species"]
    for i in range(300):
        rows.append(f"b{i},{rng.normal(0, 1):.5f},bona_fide,")
    for i in range(200):
        rows.append(f"m{i},{rng.normal(2, 1):.5f},attack,{'landmark' if i % 2 else 'diffusion'}")
    f = write(tmp_path / "s.csv", "\n".join(rows) + "\n")
    assert main(["pad", "--scores", str(f), "--out", str(tmp_path / "o"), "--kind", "mad", "--bootstrap", "50",
                 "--targets", "0.05"]) == 0
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["kind"] == "mad"
    # same values and rule as the APCER/BPCER keys, which stay
    assert rep["macer_at_bscer"]["0.05"]["macer"] == rep["apcer_at_bpcer"]["0.05"]["apcer"]
    assert rep["macer_at_bscer"]["0.05"]["macer_per_species"] == rep["apcer_at_bpcer"]["0.05"]["apcer_per_species"]
    assert rep["bscer_at_macer"]["0.05"]["bscer"] == rep["bpcer_at_apcer"]["0.05"]["bpcer"]
    # NIST FATE MORPH: MACER at BSCER 0.1 and 0.01 even though --targets gave only 0.05
    nist = rep["nist_fate_morph"]["macer_at_bscer"]
    assert set(nist) == {"0.1", "0.01"}
    import csv

    from madpad.metrics import PadScores

    recs = list(csv.DictReader(open(f)))
    pad = PadScores.from_arrays([float(r["score"]) for r in recs], [r["label"] for r in recs],
                                species=[r["species"] for r in recs])
    for x in (0.1, 0.01):
        op = pad.apcer_at_bpcer(x)
        assert nist[f"{x:g}"]["macer"] == op.apcer and nist[f"{x:g}"]["bscer"] == op.bpcer <= x
    md = (tmp_path / "o" / "report.md").read_text()
    assert "MACER" in md and "BSCER" in md and "NIST FATE MORPH" in md and "APCER (max)" not in md
    html = (tmp_path / "o" / "report.html").read_text()
    assert "MACER at BSCER = x" in html and "BSCER at MACER = x" in html


# --------------------------------------------------------------------------- compare
def _pad_rows(scores, prefix="x"):
    lines = ["id,score,label,species"]
    for i, s in enumerate(scores):
        lab = "bona_fide" if i < 6 else "attack"
        sp = "" if i < 6 else ("print" if i < 10 else "replay")
        lines.append(f"{prefix}{i},{s},{lab},{sp}")
    return lines


def test_compare_joins_by_id_and_pairs_the_bootstrap(tmp_path):
    rng = np.random.default_rng(1)
    sa = np.round(np.r_[rng.normal(0, 1, 6), rng.normal(2, 1, 6)], 4)
    a_lines = _pad_rows(sa)
    b_lines = [a_lines[0]] + [a_lines[1 + i] for i in rng.permutation(12)]  # same scores, shuffled rows
    a = write(tmp_path / "a.csv", "\n".join(a_lines) + "\n")
    b = write(tmp_path / "b.csv", "\n".join(b_lines) + "\n")
    c_scores = sa.copy()
    c_scores[6] = -5.0  # one print attack now scores below every bona fide
    c = write(tmp_path / "c.csv", "\n".join(_pad_rows(c_scores)) + "\n")
    out = tmp_path / "cmp"
    assert main(["compare", "--scores", str(a), str(b), str(c), "--names", "A", "B", "C", "--out", str(out),
                 "--bootstrap", "200", "--targets", "0.25"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert [s["name"] for s in rep["systems"]] == ["A", "B", "C"]
    dB, dC = rep["differences"]
    # B holds A's scores in another row order: joined by id, every replicate differs by exactly 0
    for k, v in dB["figures"].items():
        assert v["estimate"] == 0 and v["low"] == 0 and v["high"] == 0, k
    from madpad.metrics import PadScores

    pa = PadScores.from_groups(sa[:6], {"print": sa[6:10], "replay": sa[10:]})
    pc = PadScores.from_groups(c_scores[:6], {"print": c_scores[6:10], "replay": c_scores[10:]})
    assert dC["figures"]["d_eer"]["estimate"] == pytest.approx(pc.d_eer().d_eer - pa.d_eer().d_eer)
    assert dC["figures"]["d_eer"]["low"] <= dC["figures"]["d_eer"]["estimate"] <= dC["figures"]["d_eer"]["high"]
    assert rep["systems"][2]["bpcer_at_apcer"]["0.25"]["bpcer"] == pc.bpcer_at_apcer(0.25).bpcer
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "Differences to A" in html
    md = (out / "report.md").read_text()
    assert "| C - A |" in md


def test_compare_mismatched_ids_and_labels_are_errors(tmp_path, capsys):
    a = write(tmp_path / "a.csv", "\n".join(_pad_rows(np.arange(12) / 12)) + "\n")
    b = write(tmp_path / "b.csv", "\n".join(_pad_rows(np.arange(11) / 12)) + "\n")
    assert main(["compare", "--scores", str(a), str(b), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(b) in err
    assert "12 rows in" in err and "11 here" in err and "1 id(s) of" in err and "'x11'" in err
    lines = _pad_rows(np.arange(12) / 12)
    lines[3] = lines[3].replace("bona_fide,", "attack,print")
    c = write(tmp_path / "c.csv", "\n".join(lines) + "\n")
    assert main(["compare", "--scores", str(a), str(c), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"c\.csv row 4: field 'label': id 'x2' has label 'attack' here but 'bona_fide'", err), err
    assert main(["compare", "--scores", str(a), "--out", str(tmp_path / "o")]) == 2
    assert "at least two" in capsys.readouterr().err


# --------------------------------------------------------------------------- vulnerability
def _comparisons(n_imp_pairs=5):
    head = "system,kind,reference,probe,reference_subjects,probe_subject,score\n"
    rows = []
    for sysname, shift in (("A", 0.0), ("B", -0.2)):
        for i in range(10):
            rows.append(f"{sysname},genuine,s{i}_0,s{i}_1,s{i},s{i},{0.8 + shift:.3f}")
            for j in range(i + 1, min(10, i + 1 + n_imp_pairs)):
                rows.append(f"{sysname},impostor,s{i}_0,s{j}_1,s{i},s{j},{0.1 + 0.01 * (i + j):.3f}")
        # morph k: three probes of each contributor, h = 0, 1, 2, 2 of them (per contributor) score high
        for k, h in enumerate((0, 1, 2, 2)):
            a, b = f"s{2 * k}", f"s{2 * k + 1}"
            for subj in (a, b):
                for p in range(3):
                    v = (0.95 if p < h else 0.2) + shift
                    rows.append(f"{sysname},morph,morph{k},{subj}_{p},{a};{b},{subj},{v:.3f}")
    return head + "\n".join(rows) + "\n"


def test_map_rows_are_probe_attempts_and_columns_fr_systems(tmp_path):
    f = write(tmp_path / "c.csv", _comparisons())
    assert main(["vulnerability", "--scores", str(f), "--out", str(tmp_path / "v"), "--fmr", "0.1"]) == 0
    rep = json.loads((tmp_path / "v" / "report.json").read_text())
    m = rep["map"]["0.1"]
    # every morph had 3 probe attempts per contributor: 3 rows (the third all zero: no morph matched
    # 3 times); 2 systems: 2 columns
    assert m["systems"] == ["A", "B"] and len(m["matrix"]) == 3 and all(len(r) == 2 for r in m["matrix"])
    # system A (threshold below 0.95 and above 0.2): morphs verified in 0, 1, 2, 2 attempts -> 3/4 in >= 1,
    # 2/4 in >= 2, none in 3. System B scores 0.75 / 0.0: above its threshold iff A's are
    ta = rep["systems"]["A"]["at_fmr"]["0.1"]["threshold"]
    tb = rep["systems"]["B"]["at_fmr"]["0.1"]["threshold"]
    assert 0.2 < ta <= 0.95 and 0.0 < tb <= 0.75
    assert m["matrix"] == [[0.75, 0.75], [0.5, 0.5], [0.0, 0.0]]
    md = (tmp_path / "v" / "report.md").read_text()
    assert "rows: probe attempts, columns: FR systems A, B" in md


def test_nist_fate_morph_points_and_not_estimable(tmp_path):
    f = write(tmp_path / "c.csv", _comparisons())
    assert main(["vulnerability", "--scores", str(f), "--out", str(tmp_path / "v")]) == 0
    rep = json.loads((tmp_path / "v" / "report.json").read_text())
    for s in rep["systems"].values():
        n_imp = s["n_impostor"]
        assert n_imp == 35  # < 1000: neither 1e-4 nor 1e-3 can be estimated
        for key in ("0.0001", "0.001"):
            d = s["nist_fate_morph"][key]
            assert d["estimable"] is False and d["mmpmr"] is None and d["fnmr"] is None
            assert f"{n_imp} impostor comparisons, fewer than 1/FMR = {1 / float(key):g}" in d["reason"]
    md = (tmp_path / "v" / "report.md").read_text()
    assert "not estimable: 35 impostor comparisons, fewer than 1/FMR = 10000" in md


def test_nist_fate_morph_point_estimable_with_enough_impostors(tmp_path):
    head = "system,kind,reference,probe,reference_subjects,probe_subject,score\n"
    rows = [f"A,impostor,r{i},p{i},i{i},j{i},{i / 2000:.6f}" for i in range(2000)]  # FMR 1e-3: 2 of 2000 match
    rows += ["A,genuine,g0,g1,g,g,0.9999", "A,genuine,h0,h1,h,h,0.5"]
    rows += ["A,morph,m1,p1,a;b,a,0.9995", "A,morph,m1,p2,a;b,b,0.9995",
             "A,morph,m2,p3,c;d,c,0.9995", "A,morph,m2,p4,c;d,d,0.5"]
    f = write(tmp_path / "c.csv", head + "\n".join(rows) + "\n")
    assert main(["vulnerability", "--scores", str(f), "--out", str(tmp_path / "v")]) == 0
    d = json.loads((tmp_path / "v" / "report.json").read_text())["systems"]["A"]["nist_fate_morph"]
    assert d["0.0001"]["estimable"] is False
    e = d["0.001"]
    # 2 of 2000 impostors (0.999, 0.9995) may match: the threshold is just above 0.9985
    assert e["estimable"] is True and e["fmr"] == 0.001 and e["threshold"] == np.nextafter(0.9985, 1)
    assert e["mmpmr"] == 0.5 and e["fnmr"] == 0.5
