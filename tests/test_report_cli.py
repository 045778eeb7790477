"""madpad.report: library API, CLI end to end, bad input files, HTML helpers and plots."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from madpad.report.__main__ import main

EXAMPLES = Path(__file__).resolve().parents[1] / "madpad" / "report" / "examples"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


PAD_CSV = """id,score,label,species
b1,0.1,bona_fide,
b2,0.2,bona_fide,
b3,0.3,bona_fide,
b4,0.4,bona_fide,
b5,0.5,bona_fide,
a1,0.5,attack,print
a2,0.6,attack,print
a3,0.7,attack,print
a4,0.8,attack,print
a5,0.35,attack,replay
a6,0.9,attack,replay
"""


def test_pad_cli_end_to_end(tmp_path, capsys):
    scores = write(tmp_path / "s.csv", PAD_CSV)
    out = tmp_path / "rep"
    assert main(["pad", "--scores", str(scores), "--out", str(out), "--bootstrap", "50"]) == 0
    assert "D-EER" in capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    assert rep["n_bona_fide"] == 5 and rep["n_attack"] == 6
    assert rep["species"] == {"print": 4, "replay": 2}
    assert set(rep["bpcer_at_apcer"]) == {"0.01", "0.05", "0.1", "0.2"} == set(rep["apcer_at_bpcer"])
    op = rep["bpcer_at_apcer"]["0.2"]
    # hand-computed (see test_metrics_pad): APCER <= 0.2 for both species -> t = 0.35, BPCER 2/5
    assert op["threshold"] == 0.35 and op["bpcer"] == pytest.approx(0.4) and op["apcer"] == 0.0
    assert op["apcer_per_species"] == {"print": 0.0, "replay": 0.0}
    assert {"threshold", "bpcer", "apcer", "apcer_per_species", "apcer_pooled", "acer_non_iso", "ci"} <= set(op)
    assert rep["conventions"]["tie_rule"].endswith("score >= threshold")
    assert "NOT the ISO APCER" in rep["conventions"]["apcer_pooled"]
    assert rep["confidence_intervals"]["n_resamples"] == 50
    assert 0 <= rep["d_eer"] <= 1
    md = (out / "report.md").read_text()
    assert "BPCER at APCER" in md and "| print | 4 |" in md
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64," in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # self-contained: no external resources
    # the embedded DET figure is a real PNG
    uri = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(uri)[:8] == b"\x89PNG\r\n\x1a\n"


def test_pad_cli_lower_is_attack_flips_scores(tmp_path):
    flipped = "\n".join(
        line if i == 0 else ",".join([line.split(",")[0], str(-float(line.split(",")[1]))] + line.split(",")[2:])
        for i, line in enumerate(PAD_CSV.strip().splitlines())) + "\n"
    f = write(tmp_path / "neg.csv", flipped)
    assert main(["pad", "--scores", str(f), "--out", str(tmp_path / "o"), "--bootstrap", "0",
                 "--lower-is-attack"]) == 0
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    op = rep["bpcer_at_apcer"]["0.2"]
    assert op["threshold"] == -0.35 and op["bpcer"] == pytest.approx(0.4)
    assert "score <= threshold" in rep["conventions"]["tie_rule"]


def test_pad_cli_bundled_example_with_subjects(tmp_path):
    out = tmp_path / "ex"
    assert main(["pad", "--scores", str(EXAMPLES / "pad_scores_example.csv"), "--out", str(out),
                 "--bootstrap", "40", "--seed", "3"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["species"] == {"diffusion_morph": 200, "landmark_morph": 200}
    assert rep["confidence_intervals"]["method"] == "bootstrap-subject"
    for x, op in rep["bpcer_at_apcer"].items():
        assert max(op["apcer_per_species"].values()) <= float(x) + 1e-12
    for x, op in rep["apcer_at_bpcer"].items():
        assert op["bpcer"] <= float(x) + 1e-12
    lo, hi = rep["d_eer_ci"]
    assert lo <= hi


def test_pad_report_library_api_json_is_strict(tmp_path):
    from madpad.report import pad_report, write_pad_report

    rng = np.random.default_rng(0)
    s = np.r_[rng.normal(0, 1, 50), rng.normal(2, 1, 50)]
    lab = ["bona_fide"] * 50 + ["attack"] * 50
    r = write_pad_report({"scores": s, "labels": lab, "species": None}, tmp_path, n_bootstrap=0, title="T <b>")
    text = (tmp_path / "report.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert r["species"] == {"attack": 50} and r["confidence_intervals"] is None
    assert "T &lt;b&gt;" in (tmp_path / "report.html").read_text()
    with pytest.raises(ValueError, match="no attack scores"):
        pad_report([0.1, 0.2], ["bona_fide", "bona_fide"], n_bootstrap=0)


BAD_PAD = {
    "missing_column": ("id,score,label\nb1,0.1,bona_fide\n", r"row 1: missing column\(s\) \['species'\]"),
    "unknown_label": ("id,score,label,species\nb1,0.1,bona_fide,\na1,0.9,morph,x\n",
                      r"row 3: field 'label': 'label' must be one of"),
    "nan_score": ("id,score,label,species\nb1,nan,bona_fide,\n", r"row 2: field 'score': score is 'nan'"),
    "text_score": ("id,score,label,species\nb1,abc,bona_fide,\n", r"row 2: field 'score': 'abc' is not a number"),
    "attack_without_species": ("id,score,label,species\nb1,0.1,bona_fide,\na1,0.9,attack,\n",
                               r"row 3: field 'species': attack row without species"),
    "empty_file": ("", r"file is empty"),
    "header_only": ("id,score,label,species\n", r"no score rows"),
    "duplicate_id": ("id,score,label,species\nb1,0.1,bona_fide,\nb1,0.9,attack,x\n",
                     r"row 3: field 'id': duplicate id 'b1' \(first at row 2\)"),
    "single_class": ("id,score,label,species\nb1,0.1,bona_fide,\nb2,0.2,bona_fide,\n", r"no attack rows"),
    "bona_fide_with_species": ("id,score,label,species\nb1,0.1,bona_fide,print\n",
                               r"row 2: field 'species': bona fide row has species"),
}


@pytest.mark.parametrize("case", sorted(BAD_PAD))
def test_pad_cli_bad_input_exit_2_one_line(case, tmp_path, capsys):
    text, pattern = BAD_PAD[case]
    f = write(tmp_path / f"{case}.csv", text)
    assert main(["pad", "--scores", str(f), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(f) in err, err
    assert re.search(pattern, err), err
    assert not (tmp_path / "o" / "report.json").exists()


def test_pad_cli_missing_file_and_bad_option(tmp_path, capsys):
    assert main(["pad", "--scores", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.csv: file not found" in capsys.readouterr().err
    f = write(tmp_path / "s.csv", PAD_CSV)
    assert main(["pad", "--scores", str(f), "--out", str(tmp_path / "o"), "--targets", "1.5"]) == 2
    assert "--targets values must be in [0, 1]" in capsys.readouterr().err


def comparisons_csv(rows_extra: str = "") -> str:
    head = "system,kind,reference,probe,reference_subjects,probe_subject,score\n"
    rows = []
    for sysname, shift in (("A", 0.0), ("B", -0.15)):
        for i in range(20):
            rows.append(f"{sysname},genuine,s{i}_0,s{i}_1,s{i},s{i},{0.8 + shift + 0.005 * i:.3f}")
            for j in range(i + 1, min(20, i + 6)):
                rows.append(f"{sysname},impostor,s{i}_0,s{j}_1,s{i},s{j},{0.1 + 0.004 * (i + j):.3f}")
        for k in range(4):
            a, b = f"s{2 * k}", f"s{2 * k + 1}"
            for subj in (a, b):
                for p in range(2):
                    rows.append(f"{sysname},morph,morph{k},{subj}_{p},{a};{b},{subj},{0.3 + 0.1 * k + shift:.3f}")
    return head + "\n".join(rows) + "\n" + rows_extra


def test_vulnerability_cli_end_to_end(tmp_path, capsys):
    f = write(tmp_path / "c.csv", comparisons_csv())
    out = tmp_path / "v"
    assert main(["vulnerability", "--scores", str(f), "--out", str(out), "--fmr", "0.01", "0.1"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["systems"]) == {"A", "B"}
    a = rep["systems"]["A"]["at_fmr"]["0.1"]
    # 85 impostor scores per system; FMR <= 10 % -> at most 8 impostors match
    assert a["fmr"] <= 0.1 and rep["systems"]["A"]["n_impostor"] == 85
    imp = sorted(0.1 + 0.004 * (i + j) for i in range(20) for j in range(i + 1, min(20, i + 6)))
    assert a["threshold"] == np.nextafter(round(imp[-9], 3), np.inf)
    # morph k scores 0.3 + 0.1 k: matched iff >= threshold
    expected = np.mean([round(0.3 + 0.1 * k, 3) >= a["threshold"] for k in range(4)])
    assert a["mmpmr"] == pytest.approx(expected)
    assert a["rmmr"] == pytest.approx(1 + a["mmpmr"] - a["tmr"])
    m = rep["map"]["0.1"]
    assert m["systems"] == ["A", "B"] and len(m["matrix"]) == 2 and len(m["matrix"][0]) == 2
    assert m["matrix"][0][0] == pytest.approx(max(a["mmpmr"], rep["systems"]["B"]["at_fmr"]["0.1"]["mmpmr"]))
    html = (out / "report.html").read_text()
    assert "MAP matrix" in html and "data:image/png;base64," in html


def test_vulnerability_cli_thumbnails_from_manifest(tmp_path):
    from madpad.io import write_image

    f = write(tmp_path / "c.csv", comparisons_csv())
    (tmp_path / "imgs").mkdir()
    write_image(tmp_path / "imgs" / "m0.png", np.full((40, 30, 3), 200, np.uint8))
    man = write(tmp_path / "morphs.csv", "id,path\nmorph0,imgs/m0.png\nmorph1,imgs/missing.png\n")
    out = tmp_path / "v"
    assert main(["vulnerability", "--scores", str(f), "--out", str(out), "--thumbnails", str(man)]) == 0
    html = (out / "report.html").read_text()
    assert "Example morphs" in html and "data:image/jpeg;base64," in html


def test_vulnerability_bundled_example(tmp_path):
    assert main(["vulnerability", "--scores", str(EXAMPLES / "comparisons_example.csv"),
                 "--out", str(tmp_path / "v")]) == 0
    rep = json.loads((tmp_path / "v" / "report.json").read_text())
    for s in rep["systems"].values():
        for key, a in s["at_fmr"].items():
            assert a["fmr"] <= float(key)
            assert 0 <= a["prodavg_mmpmr"] <= a["mmpmr"] <= 1


BAD_CMP = {
    "unknown_kind": ("A,mated,r,p,s1,s1,0.5\n", r"row \d+: field 'kind'"),
    "probe_not_contributor": ("A,morph,mx,p,s1;s2,s9,0.5\n", r"row \d+: field 'probe_subject': probe subject 's9'"),
    "nan_score": ("A,genuine,r,p,s1,s1,nan\n", r"row \d+: field 'score'"),
    "one_contributor": ("A,morph,mx,p,s1,s1,0.5\n", r"field 'reference_subjects': a morph needs at least two"),
    "inconsistent_contributors": ("A,morph,morph0,s0_5,s0;s9,s0,0.5\n",
                                  r"field 'reference_subjects': morph 'morph0' has contributors 's0;s9' here"),
    "missing_contributor_probes": ("A,morph,mz,s1_0,s1;s2,s1,0.5\n",
                                   r"system 'A': morph 'mz': contributor 's2' has no probe comparison"),
}


@pytest.mark.parametrize("case", sorted(BAD_CMP))
def test_vulnerability_cli_bad_rows(case, tmp_path, capsys):
    extra, pattern = BAD_CMP[case]
    f = write(tmp_path / "c.csv", comparisons_csv(extra))
    assert main(["vulnerability", "--scores", str(f), "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(f) in err and re.search(pattern, err), err


def test_vulnerability_cli_system_without_impostors(tmp_path, capsys):
    f = write(tmp_path / "c.csv", comparisons_csv("C,morph,mq,p,s1;s2,s1,0.5\nC,morph,mq,p2,s1;s2,s2,0.5\n"))
    assert main(["vulnerability", "--scores", str(f), "--out", str(tmp_path / "v")]) == 2
    assert "system 'C' has no impostor rows" in capsys.readouterr().err
    g = write(tmp_path / "m.csv", "system,kind,reference\n")
    assert main(["vulnerability", "--scores", str(g), "--out", str(tmp_path / "v")]) == 2
    assert "missing column(s)" in capsys.readouterr().err


def test_html_helpers_escape_and_self_contained():
    from madpad.report import html

    uri = html.image_to_data_uri(np.zeros((600, 300, 3), np.uint8), max_side=100)
    from PIL import Image
    import io

    im = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert im.size == (50, 100)
    t = html.table([{"name": "<script>", "v": 0.123456, "n": 3, "x": float("nan")}], floatfmt={"v": ".2f"})
    assert "&lt;script&gt;" in t and ">0.12<" in t and ">3<" in t and "—" in t
    doc = html.page("A & B", [html.section("S", html.paragraph("x < y")), ("T", "<b>raw</b>")], subtitle="s")
    assert "<title>A &amp; B</title>" in doc and "x &lt; y" in doc and "<b>raw</b>" in doc
    with pytest.raises(ValueError, match="data: URI"):
        html.image("http://example.com/a.png")


def test_det_plot_uses_no_pyplot_and_probit_axes():
    import sys

    from madpad.report.plots import det_plot

    x = np.linspace(0, 1, 50)
    fig = det_plot({"a": (x, 1 - x)}, points={"p": (0.1, 0.1)}, limits=(0.001, 0.5))
    ax = fig.axes[0]
    from scipy.special import ndtri

    assert ax.get_xlim() == pytest.approx((ndtri(0.001), ndtri(0.5)))
    # a bare Figure on an Agg canvas: never registered with pyplot's global figure manager
    assert fig.canvas.manager is None and type(fig.canvas).__name__ == "FigureCanvasAgg"
    if "matplotlib.pyplot" in sys.modules:
        assert fig not in [sys.modules["matplotlib.pyplot"].figure(n) for n in sys.modules["matplotlib.pyplot"].get_fignums()]
    with pytest.raises(ValueError, match="limits"):
        det_plot({}, limits=(0.0, 0.5))


def test_bundled_examples_are_regenerated_exactly(tmp_path):
    from madpad.report.examples.make_example import main as make

    assert make(["--out", str(tmp_path)]) == 0
    for name in ("pad_scores_example.csv", "comparisons_example.csv"):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name
