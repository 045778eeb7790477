"""benchmarks/mad_lomo.py: the leave-one-morph-family-out table on a tiny pair set whose
per-image features are scripted (no faces, no FR model): rows, protocol (the held-out family is
never seen in training or dev), the sign of the paired bootstrap difference to the untrained
distance, the expression decile and a re-encoded variant (stub chain)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from madpad.mad import Pair
from madpad.mad.baselines import EmbeddingClassifierDetector
from madpad.mad.features import FaceFeatureExtractor, FeatureResult

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def lomo(load_script):
    return load_script(BENCH / "mad_lomo.py")


FAMILIES = ("f1", "f2", "f3")


def _unit(v):
    return v / np.linalg.norm(v)


def _world(seed=0):
    """Scripted 4-d 'embeddings': dims 0-2 identity, dim 3 an artefact every morph family leaves.
    Live captures of half of the subjects carry a strong expression change (noise on the identity
    dims), so the untrained 1 - cos overlaps the morphs; the trained diff sees dim 3."""
    rng = np.random.default_rng(seed)
    feats: dict[str, np.ndarray] = {}
    splits: dict[str, list[Pair]] = {}
    expression = {}
    for split, n in (("train", 24), ("dev", 12), ("test", 20)):
        subs = [f"{split}{i:02d}" for i in range(n)]
        base = {s: _unit(np.r_[rng.normal(size=3), 0.0]) for s in subs}
        pairs = []
        for i, s in enumerate(subs):
            sigma = 0.55 if i % 2 else 0.08
            expression[s] = sigma + 0.01 * i
            feats[f"bf_{s}"] = _unit(base[s] + np.r_[rng.normal(0, 0.03, 3), rng.normal(0, 0.02)])
            for k in range(2):
                feats[f"live_{s}_{k}"] = _unit(base[s] + np.r_[rng.normal(0, sigma, 3), rng.normal(0, 0.02)])
                pairs.append(Pair(id=f"bf_{s}_{k}", suspect=f"bf_{s}", live=f"live_{s}_{k}", label="bona_fide",
                                  subjects=(s,), extra={"live_subject": s}))
        for fi, fam in enumerate(FAMILIES):
            for i, s in enumerate(subs):
                t = subs[(i + 1 + fi) % n]
                m = f"m_{fam}_{s}_{t}"
                art = np.r_[rng.normal(0, 0.05, 3), 0.45 + 0.05 * fi]
                feats[m] = _unit(_unit(base[s] + base[t]) + art)
                pairs.append(Pair(id=m, suspect=m, live=f"live_{s}_0", label="attack", species=fam,
                                  subjects=(s, t), extra={"live_subject": s}))
        splits[split] = pairs
    return feats, splits, expression


@pytest.fixture
def world(monkeypatch):
    feats, splits, expression = _world()

    def many(self, images, *, cache=None, progress=False, desc=""):
        out = np.stack([feats[str(i)] for i in images]).astype(np.float32)
        return FeatureResult(out, ["ok"] * len(images), [""] * len(images))

    monkeypatch.setattr(FaceFeatureExtractor, "embed_dim", 4)
    monkeypatch.setattr(FaceFeatureExtractor, "many", many)
    return feats, splits, expression


def test_lomo_table_rows_protocol_and_difference_sign(lomo, world, tmp_path, monkeypatch):
    feats, splits, expression = world
    # a stub chain: every test suspect "re-encoded" (a slightly perturbed copy), ids unchanged
    rng = np.random.default_rng(5)
    reenc = []
    for p in splits["test"]:
        feats["re_" + p.suspect] = _unit(feats[p.suspect] + rng.normal(0, 0.01, 4))
        reenc.append(Pair(id=p.id, suspect="re_" + p.suspect, live=p.live, label=p.label, species=p.species,
                          subjects=p.subjects, extra=p.extra))
    seen = []
    fit = EmbeddingClassifierDetector.fit

    def spy(self, pairs, *, dev=None, **kw):
        seen.append(({p.species for p in pairs if p.label == "attack"}, {p.species for p in dev if p.label == "attack"}))
        return fit(self, pairs, dev=dev, **kw)

    monkeypatch.setattr(EmbeddingClassifierDetector, "fit", spy)
    entries = [lomo.DetectorEntry("trained diff", "embedding_logreg", {"C": "auto"}),
               lomo.DetectorEntry(lomo.REFERENCE, "embedding_distance", {}, trained=False)]
    res = lomo.run(entries, splits, cache=None, out=tmp_path, variants={"re-encoded stub": reenc},
                   expression=expression, n_boot=200, seed=0, log=lambda *a: None)

    assert all("error" not in m for m in res)
    assert sorted((m["detector"], m["test"], m["variant"]) for m in res) == sorted(
        (d, f, v) for d in ("trained diff", lomo.REFERENCE) for f in FAMILIES for v in ("as built", "re-encoded stub"))
    # the held-out family is never in training or dev, and the others are
    assert seen == [({"f2", "f3"}, {"f2", "f3"}), ({"f1", "f3"}, {"f1", "f3"}), ({"f1", "f2"}, {"f1", "f2"})]
    for m in res:
        assert m["n_attack"] == 20 and m["n_bona_fide"] == 40  # test pairs of the held-out family only
        if m["detector"] == lomo.REFERENCE:
            assert "vs_reference" not in m and m["train"] == "-"
            continue
        assert m["train"] == [f for f in FAMILIES if f != m["test"]] and m["selection_mode"] == "lomo"
        ref = next(r for r in res if r["detector"] == lomo.REFERENCE and r["test"] == m["test"]
                   and r["variant"] == m["variant"])
        vs = m["vs_reference"]
        # reference minus detector: positive = the trained detector is better, interval above zero
        assert vs["d_eer"]["diff"] == pytest.approx(ref["d_eer"] - m["d_eer"])
        assert ref["d_eer"] > 0.05 and m["d_eer"] == 0 and vs["d_eer"]["ci"][0] > 0
        assert vs["bpcer_at_apcer_1"]["diff"] == pytest.approx(ref["bpcer_at_apcer_1"] - m["bpcer_at_apcer_1"])
        # expression decile: the 2 test subjects with the largest neutral-vs-smiling distance
        assert m["expression_decile"]["subjects"] == ["test19", "test17"]
        assert m["expression_decile"]["n_bona_fide"] == 4
    assert len(list((tmp_path / "scores").glob("*.csv"))) == 12
    # dev figures for choosing the shipped detector: the selected C's nested-LOMO key (trained) and
    # the mean over the training families of the figures on their dev pairs (untrained, by hand)
    from madpad.mad.evaluation import summarize

    for m in res:
        if m["detector"] == lomo.REFERENCE:
            dev = [p for p in splits["dev"]]
            s_ = np.array([1 - feats[p.suspect] @ feats[p.live] for p in dev])
            want = []
            for g in m_train_of(m["test"]):
                keep = np.array([p.label != "attack" or p.species == g for p in dev])
                want.append(summarize(s_[keep], [p.y for p, k in zip(dev, keep) if k],
                                      [p.species for p, k in zip(dev, keep) if k]))
            assert m["dev"]["how"] == "scored"
            assert m["dev"]["d_eer"] == pytest.approx(np.mean([w["d_eer"] for w in want]))
            assert m["dev"]["bpcer_at_apcer_1"] == pytest.approx(np.mean([w["bpcer_at_apcer_1"] for w in want]))
        else:
            chosen = [r for r in m["selection"] if r["selected"]]
            assert m["dev"] == {"d_eer": chosen[0]["d_eer"], "bpcer_at_apcer_1": chosen[0]["bpcer_at_apcer_1"],
                                "how": "selection"}

    data = {"families": list(FAMILIES), "results": res, "expression_decile": ["test19", "test17"],
            "summary": lomo.summarize_targets(res)}
    s = {(x["detector"], x["variant"]): x for x in data["summary"]}
    assert s[("trained diff", "as built")]["d_eer_ci_above_zero"] == 3
    assert s[("trained diff", "as built")]["d_eer_target_met"] == 3
    text = lomo.markdown_report(data)
    assert text.count("| trained diff |") == 6 + 2 and "**>0**" in text and "## Suspects re-encoded stub" in text
    assert "## Dev figures" in text and "| **trained diff** |" in text  # one row each in the dev table


def m_train_of(held):
    return [f for f in FAMILIES if f != held]


def _dev_rows(dev: dict[str, tuple[float, float]]):
    """Result rows with the given mean dev (D-EER, BPCER@APCER=1 %) per detector (one family)."""
    return [{"detector": d, "variant": "as built", "d_eer": 0.5, "bpcer_at_apcer_1": 0.5,
             "dev": {"d_eer": e, "bpcer_at_apcer_1": b}} for d, (e, b) in dev.items()]


def test_dev_choice_ranks_by_dev_d_eer_then_dev_bpcer_and_never_looks_at_test(lomo):
    rows = _dev_rows({"untrained": (0.0117, 0.0375), "combo": (0.0160, 0.0271), "a_tie_worse_bpcer": (0.0160, 0.0300),
                      "far": (0.0300, 0.0010)})
    for r in rows:  # test figures that would rank the other way
        r["d_eer"] = {"untrained": 0.9, "combo": 0.0, "a_tie_worse_bpcer": 0.1, "far": 0.0}[r["detector"]]
    out = lomo.dev_choice(rows)
    assert [r["detector"] for r in out] == ["untrained", "combo", "a_tie_worse_bpcer", "far"]
    assert out[0]["chosen"] and not any(r["chosen"] for r in out[1:])
    assert out[0]["test_d_eer"] == 0.9
    # a detector without dev figures (trained without dev selection) is left out
    rows.append({"detector": "no dev", "variant": "as built", "d_eer": 0.1, "bpcer_at_apcer_1": 0.1, "dev": None})
    assert "no dev" not in [r["detector"] for r in lomo.dev_choice(rows)]
    table = lomo.dev_choice_table(rows)
    assert "| **untrained** | 1.17 | 3.75 | 90.00 |" in table and "| combo | 1.60 | 2.71 | 0.00 |" in table


def test_expression_decile_and_its_bpcer_by_hand(lomo):
    dist = {"a": 0.1, "b": 0.5, "c": 0.3, "d": 0.2}
    assert lomo.expression_decile(dist, ["a", "b", "c", "d", "x"]) == ["b", "c"]  # 10 % of 4 -> at least 2
    many = {f"s{i:02d}": float(i) for i in range(30)}
    assert lomo.expression_decile(many, list(many)) == ["s29", "s28", "s27"]  # ceil(10 % of 30)
    out = lomo.decile_bpcer([0.1, 0.5, 0.9, 0.95, 0.2], [0, 0, 0, 1, 0], ["a", "b", "c", "c", "d"], ["b", "c"],
                            {"t1": 0.6, "t5": 0.4})
    assert out == {"subjects": ["b", "c"], "n_bona_fide": 2, "t1": 0.5, "t5": 1.0}


def test_lomo_protocols_hold_out_each_family(lomo):
    assert lomo.lomo_protocols(["b", "a", "c", "a"]) == [(["b", "c"], "a"), (["a", "c"], "b"), (["a", "b"], "c")]


def test_canada_dev_pair_lists_are_same_gender_seeded_and_share_pairs(load_script):
    from types import SimpleNamespace

    cd = load_script(BENCH / "canada_dev_pairs.py")
    subs = [f"{i:03d}{g}" for i in range(6) for g in "fm"]
    images = [SimpleNamespace(subject=s, id=s, path=Path(f"/d/{s}.jpg"), extra={"gender": "female" if s[-1] == "f"
                                                                                    else "male"}) for s in subs]
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(subs), 8))
    emb[subs.index("001f")] = emb[subs.index("004f")] + 0.01  # a look-alike pair
    lists = cd.pair_lists(images, per_family=7, seed=3, embeddings=emb)
    a05, alphas, sim = lists["alpha05"], lists["alphas"], lists["similar_alphas"]
    assert len(a05) == 7 and all(r["alpha"] == 0.5 and r["split"] == "dev" for r in a05)
    assert all(r["subject_a"][-1] == r["subject_b"][-1] for r in a05 + sim)  # same gender only
    assert [r["id"] for r in alphas] == [r["id"] for r in a05]  # tem189 morphs the same pairs
    assert {r["alpha"] for r in alphas} <= {0.4, 0.5, 0.6} and len({r["alpha"] for r in alphas}) > 1
    assert ("001f", "004f") in {(r["subject_a"], r["subject_b"]) for r in sim}
    assert len(sim) >= len(subs)  # 2 partners per subject, union of unordered pairs
    again = cd.pair_lists(images, per_family=7, seed=3, embeddings=emb)
    assert again == lists
    assert [r["id"] for r in cd.pair_lists(images, per_family=7, seed=4)["alpha05"]] != [r["id"] for r in a05]
