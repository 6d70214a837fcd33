#!/usr/bin/env bash
# GPU check, ours vs fastai, in under 8 minutes on a fresh machine (run from the repository root):
#
#   bash experiments/bench/device_check.sh              # installs CUDA jax + this package, torch + fastai, runs
#   bash experiments/bench/device_check.sh --dry-run    # CPU, tiny sizes, the existing venvs: checks the script
#
# Environment: WORK (default /tmp/device_check) holds the two virtual environments (reused when present);
# WHEELS=dir installs from a local wheel folder instead of the index (a machine without internet access);
# REF_PYTHON / OURS_PYTHON skip the installs and use those interpreters; OUT names the JSON result file.
# Prints: LM training tokens/s (AWD-LSTM 400/1152/3, bs 64, bptt 72) ours fp32/bf16 vs fastai cuDNN fp32 and
# to_fp16, classifier docs/s, collab and tabular epoch times (experiments/bench/device_check.py).
set -euo pipefail
cd "$(dirname "$0")/../.."

DRY=0
[[ "${1:-}" == "--dry-run" || "${1:-}" == "--cpu" ]] && DRY=1
WORK=${WORK:-/tmp/device_check}
OUT=${OUT:-$WORK/device_check.json}
mkdir -p "$WORK"
pip_from() { if [[ -n "${WHEELS:-}" ]]; then echo "--no-index --find-links $WHEELS"; fi; }
start=$(date +%s)

if [[ $DRY == 1 ]]; then
  export JAX_PLATFORMS=cpu
  OURS_PYTHON=${OURS_PYTHON:-$(ls .venv/bin/python 2>/dev/null || command -v python3)}
  REF_PYTHON=${REF_PYTHON:-$(ls /work/refenv/bin/python 2>/dev/null || true)}
  TINY=--tiny
else
  TINY=
  if [[ -z "${OURS_PYTHON:-}" ]]; then
    [[ -x $WORK/ours/bin/python ]] || python3 -m venv "$WORK/ours"
    # shellcheck disable=SC2046
    "$WORK/ours/bin/pip" install -q $(pip_from) "jax[cuda12]" -e .
    OURS_PYTHON=$WORK/ours/bin/python
  fi
  if [[ -z "${REF_PYTHON:-}" ]]; then
    [[ -x $WORK/ref/bin/python ]] || python3 -m venv "$WORK/ref"
    # shellcheck disable=SC2046
    "$WORK/ref/bin/pip" install -q $(pip_from) torch "fastai==2.8.*" pandas
    REF_PYTHON=$WORK/ref/bin/python
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
echo "setup $(( $(date +%s) - start )) s; ours: $OURS_PYTHON; fastai: ${REF_PYTHON:-none}"
"$OURS_PYTHON" -c "import jax; print('jax', jax.__version__, jax.devices())"
"$OURS_PYTHON" -m experiments.bench.device_check --ref-python "${REF_PYTHON:-}" $TINY --out "$OUT"
echo "total $(( $(date +%s) - start )) s; result: $OUT"
