"""Tie-free model selection and leave-one-method-out (LOMO) dev selection (issue 11):
madpad.mad.selection, its use in the C grid of the FR-embedding detectors and in the best
epoch of the foundation detector, and ``data.dev_species``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from madpad.errors import UsageError
from madpad.mad import Pair
from madpad.mad.selection import (
    SelectionKey,
    best_candidate,
    normalized_pauc,
    select_candidates,
    selection_key,
    tail_margin,
)


def _scores(bf, att):
    return np.r_[bf, att].astype(float), np.r_[np.zeros(len(bf)), np.ones(len(att))].astype(int)


# --------------------------------------------------------------------------- the key
def test_a_d_eer_tie_is_broken_by_bpcer_at_apcer_1():
    # 10 + 10 pairs. A: one bona fide (10.5) above the lowest attack (10): D-EER 10 %, and at APCER = 0
    # (<= 1 %) the threshold is 10 -> BPCER 1/10. C: bona fide 9.5 and 10.5 around one low attack (9):
    # APCER = BPCER = 10 % on (9.5, 10.5] -> D-EER 10 %, but at APCER = 0 the threshold is 9 -> BPCER 2/10.
    a = selection_key(*_scores([0, 1, 2, 3, 4, 5, 6, 7, 8, 10.5], range(10, 20)))
    c = selection_key(*_scores([0, 1, 2, 3, 4, 5, 6, 7, 9.5, 10.5], [9] + list(range(11, 20))))
    assert a.d_eer == pytest.approx(0.1) and c.d_eer == pytest.approx(0.1)
    assert a.bpcer_at_apcer_1 == pytest.approx(0.1) and c.bpcer_at_apcer_1 == pytest.approx(0.2)
    assert best_candidate([c, a]) == (1, "bpcer_at_apcer_1")
    assert best_candidate([a, c]) == (0, "bpcer_at_apcer_1")


def test_separated_candidates_are_ranked_by_the_tail_margin_then_by_prefer():
    # both perfectly separated: D-EER, BPCERs and partial AUC tie; margin = (lowest attack - highest
    # bona fide) / pooled sd = (2 - 1) / 0.5 = 2 for `near`, (5 - 1) / 0.5 = 8 for `far`
    near = selection_key(*_scores([0, 1], [2, 3]))
    far = selection_key(*_scores([0, 1], [5, 6]))
    assert (near.d_eer, near.bpcer_at_apcer_1, near.bpcer_at_apcer_5, near.pauc_5) == (0, 0, 0, 1)
    assert (near.d_eer, near.bpcer_at_apcer_1, near.bpcer_at_apcer_5, near.pauc_5) == (
        far.d_eer, far.bpcer_at_apcer_1, far.bpcer_at_apcer_5, far.pauc_5)
    assert near.margin == pytest.approx(2.0) and far.margin == pytest.approx(8.0)
    assert best_candidate([near, far], prefer=[0.001, 100]) == (1, "margin")
    # the margin ignores the scale of the scores (an SVM with another C): an exact tie -> prefer (smaller C)
    s, y = _scores([0, 1], [5, 6])
    scaled = selection_key(s * 1000 + 7, y)
    assert scaled.margin == pytest.approx(far.margin)
    assert best_candidate([far, scaled], prefer=[10.0, 0.1]) == (1, "prefer")
    assert best_candidate([far, scaled], prefer=[0.1, 10.0]) == (0, "prefer")


def test_partial_auc_counts_bona_fide_below_the_lowest_attacks():
    # 4 attacks: only the lowest (1) lies in APCER [0, 5 %]; bona fide below it: 0 and half of the tie at 1
    assert normalized_pauc(np.array([0, 1, 2, 3.0]), np.array([1, 5, 6, 7.0])) == pytest.approx(1.5 / 4)
    # the worst species decides: species b's lowest attack sits among the bona fide scores
    s, y = _scores([0, 1, 2, 3], [10, 11, 1.5, 12])
    k = selection_key(s, y, ["", "", "", "", "a", "a", "b", "b"])
    assert k.pauc_5 == pytest.approx(2 / 4)
    assert k.margin == pytest.approx(tail_margin(np.array([0, 1, 2, 3.0]), np.array([1.5, 12])))


def test_undefined_keys_lose_and_nan_scores_are_dropped():
    s, y = _scores([0, 1], [2, 3])
    assert math.isnan(selection_key(s[:2], y[:2]).d_eer)  # one class only
    good = selection_key(np.r_[s, np.nan], np.r_[y, 1])
    assert good.d_eer == 0 and good.margin == pytest.approx(2.0)
    assert best_candidate([SelectionKey(math.nan), good]) == (1, "d_eer")


# --------------------------------------------------------------------------- LOMO selection
def _toy(seed: int, n_bf: int, n_att: int):
    """Column 0: a cue every morph shows (bona fide N(0,1), attacks N(2.5,1)); column 1: where the
    morph method puts its own artefact (species a at +10, species b at -10, bona fide at 0)."""
    rng = np.random.default_rng(seed)
    X = np.r_[np.c_[rng.normal(0, 1, n_bf), rng.normal(0, 1, n_bf)],
              np.c_[rng.normal(2.5, 1, n_att), rng.normal(10, 1, n_att)],
              np.c_[rng.normal(2.5, 1, n_att), rng.normal(-10, 1, n_att)]]
    y = np.r_[np.zeros(n_bf), np.ones(2 * n_att)].astype(int)
    sp = np.array([""] * n_bf + ["a"] * n_att + ["b"] * n_att, dtype=object)
    return X, y, sp


def _toy_pairs(monkeypatch):
    """Training and dev pairs of :func:`_toy` (seeds 3 and 4) whose features the FR-embedding
    detectors read from a table instead of images: ``(X, y, species, pairs)`` of each."""
    from madpad.mad.baselines import EmbeddingClassifierDetector

    X, y, sp = _toy(3, 40, 20)
    Xd, yd, spd = _toy(4, 30, 15)
    table = {f"t{i}": x for i, x in enumerate(X)} | {f"d{i}": x for i, x in enumerate(Xd)}

    def fake_features(self, pairs, cache):
        M = np.array([table[p.id] for p in pairs])
        return M, np.ones(len(pairs), bool), ["ok"] * len(pairs), [""] * len(pairs)

    monkeypatch.setattr(EmbeddingClassifierDetector, "_features", fake_features)

    def pairs(prefix, yy, ss):
        return [Pair(id=f"{prefix}{i}", suspect="s.png", live="l.png", label="attack" if v else "bona_fide",
                     species=str(s)) for i, (v, s) in enumerate(zip(yy, ss))]

    return (X, y, sp, pairs("t", y, sp)), (Xd, yd, spd, pairs("d", yd, spd))


def test_lomo_selection_picks_the_candidate_that_generalises_to_an_unseen_method():
    Xt, yt, st = _toy(0, 60, 30)
    Xd, yd, sd = _toy(1, 40, 20)

    def fit_score(candidate, ti, di):
        if candidate == "shared cue":  # a weak cue that every morph method leaves
            return Xd[di, 0]
        # "memorise": closeness to the artefacts of the training attacks: perfect on methods it saw
        seen = Xt[ti][yt[ti] == 1, 1]
        return -np.min(np.abs(Xd[di, 1][:, None] - seen[None, :]), axis=1)

    kw = {"train_y": yt, "train_species": st, "dev_y": yd, "dev_species": sd}
    pooled = select_candidates(["memorise", "shared cue"], fit_score, mode="pooled", **kw)
    assert pooled.index == 0 and pooled.keys[0].d_eer == 0 and pooled.mode == "pooled"
    lomo = select_candidates(["memorise", "shared cue"], fit_score, mode="lomo", **kw)
    assert lomo.mode == "lomo" and lomo.folds == ["a", "b"]
    assert lomo.index == 1 and lomo.decided_by == "d_eer"
    assert lomo.keys[0].d_eer > 0.4 and lomo.keys[1].d_eer < 0.2
    assert set(lomo.table[0]["folds"]) == {"a", "b"} and [r["selected"] for r in lomo.table] == [False, True]


def test_lomo_with_a_single_trained_species_falls_back_to_pooled_and_uses_unseen_dev_species():
    Xt, yt, st = _toy(0, 20, 10)
    Xd, yd, sd = _toy(1, 20, 10)
    calls = []

    def fit_score(c, ti, di):
        calls.append((set(st[ti][yt[ti] == 1]), set(sd[di][yd[di] == 1])))
        return Xd[di, 0]

    only_a = (yt == 0) | (st == "a")
    sel = select_candidates([1], fit_score, train_y=yt[only_a], train_species=st[only_a],
                            dev_y=yd[(yd == 0) | (sd == "a")], dev_species=sd[(yd == 0) | (sd == "a")])
    assert sel.mode == "pooled" and "no leave-one-method-out fold" in sel.note
    Xt, yt, st = Xt[only_a], yt[only_a], st[only_a]
    calls.clear()
    # dev holds species b, absent from training: one fold, fitted on ALL training pairs
    sel = select_candidates([1], fit_score, train_y=yt, train_species=st, dev_y=yd, dev_species=sd)
    assert sel.mode == "lomo" and sel.folds == ["b"]  # holding out a would leave no training attack
    assert calls == [({"a"}, {"b"})]


def test_embedding_classifier_selects_c_with_lomo_and_records_the_table(monkeypatch):
    from madpad.mad.baselines import C_GRID, EmbeddingClassifierDetector

    (_, _, _, train), (_, _, _, dev) = _toy_pairs(monkeypatch)

    det = EmbeddingClassifierDetector(classifier="logreg", C="auto")
    det.fit(train, dev=dev)
    assert det.selection_mode_ == "lomo" and len(det.selection_) == len(C_GRID)
    assert [r["C"] for r in det.selection_] == list(C_GRID)
    assert all(set(r["folds"]) == {"a", "b"} for r in det.selection_)
    chosen = [r for r in det.selection_ if r["selected"]]
    assert len(chosen) == 1 and chosen[0]["C"] == det.C_
    keys = [SelectionKey.from_dict(r) for r in det.selection_]
    assert best_candidate(keys, prefer=list(C_GRID))[0] == list(C_GRID).index(det.C_)
    pooled = EmbeddingClassifierDetector(classifier="logreg", C="auto", selection="pooled")
    pooled.fit(train, dev=dev)
    assert pooled.selection_mode_ == "pooled" and "folds" not in pooled.selection_[0]
    with pytest.raises(UsageError, match="selection must be one of"):
        EmbeddingClassifierDetector(C="auto", selection="best")


# --------------------------------------------------------------------------- foundation: best epoch
def test_foundation_best_epoch_breaks_a_d_eer_tie_by_bpcer_at_apcer_1(monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("open_clip")
    pytest.importorskip("peft")
    from madpad.mad.foundation import FoundationDetector
    from madpad.mad.synthetic import synthetic_pairs

    tiny = {"backbone": "madpad-tiny-vit", "model_config": "madpad-tiny-vit", "pretrained": None, "head_hidden": 8,
            "head_dropout": 0.0, "lora_rank": 2, "lora_alpha": 4.0, "lora_dropout": 0.0, "batch_size": 8,
            "lr_lora": 1e-2, "lr_head": 3e-2, "warmup": 0.0, "device": "cpu", "progress": False, "augment": 0.0,
            "resume": False}
    # every epoch ties at D-EER 5 %; epoch 1 has the best low-APCER point, epoch 3 the lowest training loss
    script = [SelectionKey(0.05, 0.40, 0.10), SelectionKey(0.05, 0.15, 0.10), SelectionKey(0.05, 0.30, 0.05),
              SelectionKey(0.05, 0.30, 0.10)]
    monkeypatch.setattr(FoundationDetector, "_dev_d_eer", lambda self, net, d, y, device: script[len(self.history_)])
    states = []
    monkeypatch.setattr(FoundationDetector, "_after_epoch", lambda self, epoch: states.append(
        {k: v.clone() for k, v in self.net_.head_state().items()}))
    det = FoundationDetector(**{**tiny, "epochs": 4, "patience": 0}).fit(synthetic_pairs(16, seed=1),
                                                                        dev=synthetic_pairs(8, seed=2))
    assert [h["dev_d_eer"] for h in det.history_] == [0.05] * 4
    assert [h["dev_key"]["bpcer_at_apcer_1"] for h in det.history_] == [0.40, 0.15, 0.30, 0.30]
    assert det.best_epoch_ == 1
    import torch

    assert all(torch.equal(v, states[1][k]) for k, v in det.net_.head_state().items())


# --------------------------------------------------------------------------- data.dev_species
def _pair_csv(directory, name, species):
    from madpad.data import write_table
    from madpad.io import write_image

    rows = []
    for i, sp in enumerate(species):
        for role in ("s", "l"):
            write_image(directory / f"{name}{i}{role}.png", np.full((8, 8, 3), 100 + i, np.uint8))
        rows.append({"id": f"{name}{i}", "suspect": f"{name}{i}s.png", "live": f"{name}{i}l.png",
                     "label": "attack" if sp else "bona_fide", "species": sp})
    return str(write_table(directory / f"{name}.csv", rows, columns=["id", "suspect", "live", "label", "species"]))


def test_dev_species_selects_dev_attacks_and_names_the_field_when_unknown(tmp_path, monkeypatch):
    from madpad.mad.training import load_train_config, train_from_config

    train = _pair_csv(tmp_path, "train", ["", "", "a", "a"])
    dev = _pair_csv(tmp_path, "dev", ["", "", "a", "b", "b"])
    base = [f"data.train={train}", f"data.dev={dev}", "data.train_species=[a]", f"out={tmp_path / 'm'}",
            "detector=embedding_distance"]
    with pytest.raises(UsageError) as e:
        train_from_config(load_train_config(None, base + ["data.dev_species=[b, c]"]))
    msg = str(e.value)
    assert "data.dev_species" in msg and "['c']" in msg and "['a', 'b']" in msg and "\n" not in msg
    with pytest.raises(UsageError, match="data.dev_species must be a species name"):
        train_from_config(load_train_config(None, base + ["data.dev_species=3"]))

    from madpad.mad.baselines import EmbeddingDistanceDetector

    seen = {}

    def fake_fit(self, pairs, *, dev=None):
        seen["train"] = sorted({p.species for p in pairs if p.label == "attack"})
        seen["dev"] = sorted({p.species for p in dev if p.label == "attack"})
        raise KeyboardInterrupt  # stop before scoring (no faces in these images)

    monkeypatch.setattr(EmbeddingDistanceDetector, "fit", fake_fit)
    with pytest.raises(KeyboardInterrupt):
        train_from_config(load_train_config(None, base + ["data.dev_species=[b]"]))
    assert seen == {"train": ["a"], "dev": ["b"]}
    with pytest.raises(KeyboardInterrupt):  # default: dev filtered like train
        train_from_config(load_train_config(None, base))
    assert seen == {"train": ["a"], "dev": ["a"]}


# --------------------------------------------------------------------------- more dev subjects
def _subject_pair(pid, subj, label="bona_fide", species=""):
    return Pair(id=pid, suspect=f"s_{pid}", live=f"l_{pid}", label=label, species=species, subjects=(subj,),
                extra={"live_subject": subj})


def test_add_dev_pairs_appends_new_subjects_and_names_the_source_of_a_clash():
    from madpad.mad.pairs import add_dev_pairs

    others = {"train": [_subject_pair("t1", "a")], "test": [_subject_pair("x1", "c")]}
    dev = [_subject_pair("d1", "b")]
    more = [_subject_pair("e1", "ca1"), _subject_pair("e2", "ca1", "attack", "f1")]
    out = add_dev_pairs(dev, [("more.csv", more)], others=others)
    assert [p.id for p in out] == ["d1", "e1", "e2"] and [p.id for p in dev] == ["d1"]  # dev itself unchanged
    assert [p.id for p in add_dev_pairs(dev, [("m", [_subject_pair("e3", "b")])], others=others)] == ["d1", "e3"]
    assert [p.id for p in add_dev_pairs(None, [("m", more)], others=others)] == ["e1", "e2"]
    with pytest.raises(UsageError, match=r"^more.csv: pair 'e4': subject 'c' is a test subject$"):
        add_dev_pairs(dev, [("more.csv", [_subject_pair("e4", "c")])], others=others)
    with pytest.raises(UsageError, match=r"subject 'a' is a train subject"):
        add_dev_pairs(dev, [("m", [_subject_pair("e5", "a")])], others=others)
    with pytest.raises(UsageError, match=r"^m: pair id 'x1' is already used$"):
        add_dev_pairs(dev, [("m", [_subject_pair("x1", "ca2")])], others=others)
    with pytest.raises(UsageError, match=r"^second: pair id 'e1' is already used$"):  # twice in the extra lists
        add_dev_pairs(dev, [("first", more), ("second", [_subject_pair("e1", "ca3")])], others=others)


def test_extra_dev_pairs_reach_model_selection_with_the_dev_species_filter(tmp_path, monkeypatch):
    from madpad.mad.baselines import EmbeddingDistanceDetector
    from madpad.mad.training import load_train_config, train_from_config

    train = _pair_csv(tmp_path, "train", ["", "", "a", "a"])
    dev = _pair_csv(tmp_path, "dev", ["", "", "a", "b"])
    extra = _pair_csv(tmp_path, "more", ["", "a", "b", "b"])
    base = [f"data.train={train}", f"data.dev={dev}", f"out={tmp_path / 'm'}", "detector=embedding_distance"]
    seen = {}

    def fake_fit(self, pairs, *, dev=None):
        seen["dev"] = sorted(p.id for p in dev)
        raise KeyboardInterrupt

    monkeypatch.setattr(EmbeddingDistanceDetector, "fit", fake_fit)
    with pytest.raises(KeyboardInterrupt):
        train_from_config(load_train_config(None, base + [f"data.extra_dev=[{extra}]"]))
    assert seen["dev"] == ["dev0", "dev1", "dev2", "dev3", "more0", "more1", "more2", "more3"]
    with pytest.raises(KeyboardInterrupt):  # a single path is a list of one; species filtered as dev
        train_from_config(load_train_config(None, base + [f"data.extra_dev={extra}", "data.dev_species=[b]"]))
    assert seen["dev"] == ["dev0", "dev1", "dev3", "more0", "more2", "more3"]
    with pytest.raises(UsageError, match=r"data.extra_dev .*train.csv: pair id 'train0' is already used"):
        train_from_config(load_train_config(None, base + [f"data.extra_dev=[{train}]"]))


def test_c_ensemble_averages_z_scored_members_records_its_dev_key_and_round_trips(monkeypatch, tmp_path):
    from sklearn.svm import SVC

    from madpad.mad.baselines import ENSEMBLE_C, EmbeddingClassifierDetector
    from madpad.mad.selection import lomo_folds

    (X, y, sp, train), (Xd, yd, spd, dev) = _toy_pairs(monkeypatch)

    def by_hand(Xtr, ytr, Xte):  # the documented ensemble, rebuilt with scikit-learn directly
        mu, sd = Xtr.mean(0), Xtr.std(0)
        out = []
        for c in (0.1, 1.0, 10.0):
            svc = SVC(C=c, kernel="rbf", gamma="scale", class_weight="balanced").fit((Xtr - mu) / sd, ytr)
            dtr = svc.decision_function((Xtr - mu) / sd)
            out.append((svc.decision_function((Xte - mu) / sd) - dtr.mean()) / dtr.std())
        return np.mean(out, axis=0)

    assert ENSEMBLE_C == (0.1, 1.0, 10.0)
    det = EmbeddingClassifierDetector(classifier="rbf_svm", C="ensemble")
    det.fit(train, dev=dev)
    assert det.C_ == "ensemble" and len(det.model_["members"]) == 3
    got = det.score_pairs(dev).scores
    np.testing.assert_allclose(got, by_hand(X, y, Xd), atol=1e-6)
    # one dev row, the ensemble's own leave-one-method-out key (nothing to choose)
    assert [r["C"] for r in det.selection_] == ["ensemble"] and det.selection_[0]["selected"]
    assert set(det.selection_[0]["folds"]) == set(lomo_folds(sp, y, spd, yd)) == {"a", "b"}
    for h, fold in det.selection_[0]["folds"].items():
        ti, di = (y == 0) | (sp != h), (yd == 0) | (spd == h)
        key = selection_key(by_hand(X[ti], y[ti], Xd[di]), yd[di], spd[di])
        assert fold["d_eer"] == pytest.approx(key.d_eer) and fold["bpcer_at_apcer_1"] == pytest.approx(
            key.bpcer_at_apcer_1)
    # checkpoint round trip: same scores, the header says what C is
    from madpad.mad import load_detector

    loaded = load_detector(det.save(tmp_path / "m"))
    assert loaded.C_ == "ensemble" and loaded.C == "ensemble"
    np.testing.assert_array_equal(loaded.score_pairs(dev).scores, got)
    with pytest.raises(UsageError, match="'auto' or 'ensemble'; got 'best'"):
        EmbeddingClassifierDetector(C="best")


def test_c_grid_tie_goes_to_the_smallest_c(monkeypatch):
    """Every C giving the same dev scores (an exact tie on every criterion): the smallest C wins."""
    from madpad.mad.baselines import C_GRID, EmbeddingClassifierDetector

    (_, _, _, train), (_, _, _, dev) = _toy_pairs(monkeypatch)
    real_fit = EmbeddingClassifierDetector._fit_model
    monkeypatch.setattr(EmbeddingClassifierDetector, "_fit_model", lambda self, X, y, C: real_fit(self, X, y, 1.0))
    det = EmbeddingClassifierDetector(classifier="logreg", C="auto").fit(train, dev=dev)
    keys = {tuple(sorted((k, v) for k, v in r.items() if k not in ("C", "selected", "folds"))) for r in det.selection_}
    assert len(keys) == 1  # all six candidates tie exactly
    assert det.C_ == min(C_GRID) == 0.001
    assert [r["C"] for r in det.selection_ if r["selected"]] == [0.001]
