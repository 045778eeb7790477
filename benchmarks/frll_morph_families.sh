#!/usr/bin/env bash
# The four FRLL morph families of the leave-one-morph-method-out protocol, one folder each.
#
#   MADPAD_SHARED=../shared bash benchmarks/frll_morph_families.sh [OUT_DIR]
#
# Species (folder OUT_DIR/morphs/<species>/, each with a manifest.csv from `python -m madpad.generate`):
#   landmark          full landmark morph (dlib 68 points), alpha 0.5
#   landmark_spliced  spliced landmark morph, Laplacian blend, Lab colour match, alpha 0.5
#   spliced_poisson   spliced landmark morph, Poisson blend, no colour match, alpha drawn from
#                     0.4/0.5/0.6 per pair, train pairs = the 2 most similar same-gender partners
#                     of every train subject (dlib embedding)
#   tem189            full morph from FRLL's 189-point .tem templates (another landmark set and
#                     triangulation, portrait alignment), alpha drawn from 0.4/0.5/0.6 per pair
# Every family uses the subject split of `benchmarks/frll_split_morph_pairs.py --seed 0`
# (fractions 0.6/0.2/0.2, same-gender pairs inside each split), so a morph lands in one split.
# Resumable: `generate` skips morphs already made with the same settings. Name the species of
# each manifest when building pairs, e.g. data.build.morphs=[OUT/morphs/spliced_poisson/manifest.csv=spliced_poisson].
# TRAIN_PAIRS (default 60): random same-gender train pairs of the alpha-0.5 and tem189 lists.
set -euo pipefail
: "${MADPAD_SHARED:?set MADPAD_SHARED to the folder holding data/frll}"
OUT=${1:-runs/lomo}
FRLL="$MADPAD_SHARED/data/frll"
TRAIN_PAIRS=${TRAIN_PAIRS:-60}
M="$OUT/morphs"
mkdir -p "$M"
python benchmarks/frll_split_morph_pairs.py --frll "$FRLL" --out "$M/pairs_alpha05.csv" --seed 0 \
  --train-pairs "$TRAIN_PAIRS"
python benchmarks/frll_split_morph_pairs.py --frll "$FRLL" --out "$M/pairs_similar_alphas.csv" --seed 0 \
  --alphas 0.4,0.5,0.6 --by-similarity 2
python benchmarks/frll_split_morph_pairs.py --frll "$FRLL" --out "$M/pairs_alphas.csv" --seed 0 \
  --train-pairs "$TRAIN_PAIRS" --alphas 0.4,0.5,0.6
gen() {  # species pairs method [method options...]
  local species=$1 pairs=$2 method=$3
  shift 3
  python -m madpad.generate --method "$method" "$@" --pairs "$pairs" --seed 0 --format jpg \
    --out "$M/$species" --no-progress
}
gen landmark "$M/pairs_alpha05.csv" landmark
gen landmark_spliced "$M/pairs_alpha05.csv" landmark_spliced
gen spliced_poisson "$M/pairs_similar_alphas.csv" landmark_spliced --blend poisson --colour none
gen tem189 "$M/pairs_alphas.csv" tem189 --tem-dir "$FRLL/landmarks"
for s in landmark landmark_spliced spliced_poisson tem189; do
  echo "$s: $(grep -c ',ok,' "$M/$s/manifest.csv" || true) ok morphs"
done
touch "$M/READY"
