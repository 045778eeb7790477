#!/usr/bin/env bash
# GPU smoke test of the dcmorph pipeline (tiny random-init models). Run from the repository root.
set -euo pipefail
python benchmarks/gpu_smoke_dcmorph.py "$@"
