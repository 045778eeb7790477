#!/usr/bin/env bash
# One command from the FRLL photos to a trained D-MAD checkpoint that `detect score` accepts.
#
#   MADPAD_SHARED=../shared bash benchmarks/train_frll_dmad.sh [OUT_DIR]
#
# 1. writes split-aware morph pair lists (all same-gender pairs inside dev and test, 100
#    random same-gender pairs inside train; the split is the one the pair builder makes),
# 2. generates landmark and spliced-landmark morphs with `python -m madpad.generate`
#    (skipped where they exist: generate resumes),
# 3. builds the pairs (10 simulated live captures per subject: 480/160/160 bona fide pairs in
#    train/dev/test) and trains the best detector measured offline here (`embedding_svm`:
#    difference of dlib embeddings -> RBF SVM, C chosen on dev) on the FULL landmark morphs
#    only and tests it on the SPLICED morphs (a method it did not see),
#    with `python -m madpad.detect train --config madpad/configs/detect/frll_dmad.yaml`,
# 4. scores all test pairs (both morph methods) with `detect score` and writes a PAD report
#    with subject-bootstrap intervals (`report pad`) to OUT_DIR/report/.
#
# Outputs: OUT_DIR/morphs/{landmark,landmark_spliced}/, OUT_DIR/model/ (checkpoint,
# scores_dev.csv, scores_test.csv, train_summary.json), OUT_DIR/model/pairs/ (pair CSVs,
# processed suspect images and simulated live captures; derived from FRLL, CC BY 4.0),
# OUT_DIR/scores_test_all.csv and OUT_DIR/report/ (report.md/json/html).
set -euo pipefail
: "${MADPAD_SHARED:?set MADPAD_SHARED to the folder holding data/frll}"
OUT=${1:-runs/frll_dmad}
FRLL="$MADPAD_SHARED/data/frll"
mkdir -p "$OUT/morphs"
python benchmarks/frll_split_morph_pairs.py --frll "$FRLL" --out "$OUT/morphs/pairs.csv" --seed 0 --train-pairs 100
for m in landmark landmark_spliced; do
  python -m madpad.generate --method "$m" --pairs "$OUT/morphs/pairs.csv" --seed 0 --format jpg \
    --out "$OUT/morphs/$m" --no-progress
done
python -m madpad.detect train --config madpad/configs/detect/frll_dmad.yaml \
  --set "data.build.morphs=[$OUT/morphs/landmark/manifest.csv,$OUT/morphs/landmark_spliced/manifest.csv]" \
  --set "data.train_species=[landmark]" --set "data.test_species=[landmark_spliced]" \
  --set "out=$OUT/model" --set "cache=$OUT/cache"
python -m madpad.detect score --model "$OUT/model" --pairs "$OUT/model/pairs/pairs_test.csv" \
  --out "$OUT/scores_test_all.csv" --cache "$OUT/cache"
python -m madpad.report pad --scores "$OUT/scores_test_all.csv" --out "$OUT/report" --bootstrap 1000
