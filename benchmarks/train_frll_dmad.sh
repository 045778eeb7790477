#!/usr/bin/env bash
# One command from the FRLL photos to the shipped D-MAD checkpoint (that `detect score` accepts)
# and the leave-one-morph-family-out evidence for it (issue 11).
#
#   MADPAD_SHARED=../shared bash benchmarks/train_frll_dmad.sh [OUT_DIR]
#
# 1. generates the four morph families of benchmarks/frll_morph_families.sh (landmark,
#    landmark_spliced, spliced_poisson, tem189; one subject split, same-gender pairs inside each
#    split; resumable),
#    Then the same four families on the 40 FRLL-Canada subjects, as DEV pairs only
#    (benchmarks/canada_dev_pairs.py: more dev subjects, another framing; 160 bona fide + 416 attack),
# 2. builds the pairs and trains the shipped detector on ALL families with
#    `python -m madpad.detect train --config madpad/configs/detect/frll_dmad.yaml`: 10 simulated
#    live captures per subject with the `gate` live profile, every suspect (bona fide and morph
#    alike) through a seeded `attacker` post-processing chain; the shipped detector is
#    dmad_cues [demorph_diff] trained with 2 augmented views per training pair (half of them with a
#    low-resolution live capture), demorphed wholly at the live capture's sharpness and resolution
#    (demorph_sharpness: whole), three SVMs (C = 0.1, 1, 10) averaged (chosen on dev data:
#    benchmarks/results/mad_lomo.md), its dev table on the FRLL
#    dev pairs plus the FRLL-Canada ones (data.extra_dev); it scores dev and test
#    (madpad/configs/detect/frll_dmad_svm.yaml trains demorph_svm on the same pairs),
# 3. runs the leave-one-morph-family-out table for every detector of benchmarks/mad_lomo.py on
#    the same pairs (train on three families, select on their dev pairs, test on the fourth;
#    intervals and the paired difference to the untrained embedding_distance; expression decile;
#    every figure again with all test suspects re-encoded as JPEG q75; the dev figures that
#    choose the shipped detector, on the FRLL and FRLL-Canada dev pairs),
# 4. scores all test pairs with the shipped checkpoint (`detect score`) and writes a PAD report
#    with subject-bootstrap intervals (`report pad`),
# 5. scores the dev and test pairs again with their live captures changed as a worse gate camera
#    would: shrunk until the eyes are at most 36 / 24 px apart, grey, blurred by a Gaussian of
#    0.05 x the eye distance, over-exposed x1.6 (benchmarks/lowres_live_pairs.py; the dev variants
#    are those of the rule that chose the shipped configuration) and writes the shipped
#    checkpoint's figures on them to OUT_DIR/variants/summary.md. VARIANTS=0 skips this step (on a
#    fresh cache it computes the features of 9,480 more pairs, about an hour on 2 cores: 35 min
#    were measured for the first three variants).
#
# Outputs: OUT_DIR/morphs/<family>/ (manifest.csv), OUT_DIR/canada/ (morphs/, pairs/pairs_dev.csv;
# derived from FRLL-Canada, CC BY 4.0), OUT_DIR/model/ (checkpoint, scores_dev.csv,
# scores_test.csv, train_summary.json), OUT_DIR/model/pairs/ (pair CSVs, processed suspects and
# simulated live captures; derived from FRLL, CC BY 4.0), OUT_DIR/lomo/ (results.md, results.json,
# score CSVs), OUT_DIR/scores_test_all.csv, OUT_DIR/report/ (report.md/json/html),
# OUT_DIR/variants/ (the changed live captures, their pairs and scores, summary.md).
# Per-image features are cached in OUT_DIR/cache (shared by steps 2-4); every step resumes.
# LOMO_ARGS: extra arguments of mad_lomo.py (e.g. LOMO_ARGS="--only embedding_svm --bootstrap 200").
set -euo pipefail
: "${MADPAD_SHARED:?set MADPAD_SHARED to the folder holding data/frll and data/frll_canada}"
OUT=${1:-runs/frll_dmad}
FRLL="$MADPAD_SHARED/data/frll"
CANADA="$MADPAD_SHARED/data/frll_canada"
for d in "$FRLL" "$CANADA"; do
  [ -d "$d" ] || { echo "train_frll_dmad.sh: folder not found: $d (MADPAD_SHARED must hold data/frll and data/frll_canada)" >&2; exit 2; }
done
FAMILIES="landmark landmark_spliced spliced_poisson tem189"
bash benchmarks/frll_morph_families.sh "$OUT"
python benchmarks/canada_dev_pairs.py --canada "$CANADA" --out "$OUT/canada"
EXTRA_DEV="$OUT/canada/pairs/pairs_dev.csv"
MORPHS=""
for f in $FAMILIES; do
  MORPHS="$MORPHS${MORPHS:+,}$OUT/morphs/$f/manifest.csv=$f"
done
python -m madpad.detect train --config madpad/configs/detect/frll_dmad.yaml \
  --set "data.build.morphs=[$MORPHS]" --set "data.build.out=$OUT/model/pairs" \
  --set "data.extra_dev=[$EXTRA_DEV]" --set "out=$OUT/model" --set "cache=$OUT/cache"
# shellcheck disable=SC2086
python benchmarks/mad_lomo.py --frll "$FRLL" --pairs "$OUT/model/pairs" --out "$OUT/lomo" --cache "$OUT/cache" \
  --extra-dev "$EXTRA_DEV" \
  ${LOMO_ARGS:-}
python -m madpad.detect score --model "$OUT/model" --pairs "$OUT/model/pairs/pairs_test.csv" \
  --out "$OUT/scores_test_all.csv" --cache "$OUT/cache"
python -m madpad.report pad --scores "$OUT/scores_test_all.csv" --out "$OUT/report" --bootstrap 1000
if [ "${VARIANTS:-1}" != 0 ]; then
  for split in dev test; do
    PAIRS=(--pairs "$OUT/model/pairs/pairs_$split.csv")
    [ "$split" = dev ] && PAIRS+=(--pairs "$EXTRA_DEV")
    for v in iod36 iod24 grey blur05 exposure16; do
      case "$v" in
        grey) CHANGE=(--grey) ;;
        blur05) CHANGE=(--blur 0.05) ;;
        exposure16) CHANGE=(--exposure 1.6) ;;
        *) CHANGE=(--iod "${v#iod}") ;;
      esac
      python benchmarks/lowres_live_pairs.py make "${PAIRS[@]}" "${CHANGE[@]}" --out "$OUT/variants/${split}_$v" \
        --cache "$OUT/cache"
      python -m madpad.detect score --model "$OUT/model" --pairs "$OUT/variants/${split}_$v/pairs.csv" \
        --out "$OUT/variants/${split}_$v/scores.csv" --cache "$OUT/cache"
    done
  done
  python benchmarks/lowres_live_pairs.py summary "$OUT/model/scores_dev.csv" \
    "$OUT"/variants/dev_{iod36,iod24,grey,blur05,exposure16}/scores.csv "$OUT/model/scores_test.csv" \
    "$OUT"/variants/test_{iod36,iod24,grey,blur05,exposure16}/scores.csv > "$OUT/variants/summary.md.tmp"
  mv "$OUT/variants/summary.md.tmp" "$OUT/variants/summary.md"
  echo "wrote $OUT/variants/summary.md"
fi
