#!/usr/bin/env bash
# Train every demo model on one GPU machine: full precision and BitNet b1.58 QAT for each config, all
# in parallel (they are small), then the post-training ternary evaluation of each full-precision model.
#   bash tools/train/run_all.sh DATA OUT     DATA holds tok512/ and tok4096/ (tokenizer.py outputs)
# STEPS=N overrides every config's steps (a smoke run).
set -euo pipefail
DATA=${1:?usage: run_all.sh DATA OUT}
OUT=${2:?usage: run_all.sh DATA OUT}
CONFIGS=${CONFIGS:-"esp32-260k s3-3m rpi-15m"}
here=$(dirname "$0")
mkdir -p "$OUT"
vocab_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['tokenizer'])" "$here/configs/$1.json"; }
pids=()
for cfg in $CONFIGS; do
  for mode in fp b158; do
    python3 "$here/train.py" --config "$here/configs/$cfg.json" --mode $mode --data "$DATA/tok$(vocab_of $cfg)" \
      --out "$OUT/$cfg-$mode" ${STEPS:+--steps $STEPS} > "$OUT/$cfg-$mode.log" 2>&1 &
    pids+=($!)
  done
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
[ $fail = 0 ] || { tail -n 30 "$OUT"/*.log; exit 1; }
for cfg in $CONFIGS; do
  python3 "$here/train.py" --config "$here/configs/$cfg.json" --data "$DATA/tok$(vocab_of $cfg)" \
    --ptq-from "$OUT/$cfg-fp" --out "$OUT/$cfg-ptq" > "$OUT/$cfg-ptq.log" 2>&1
done
grep -h '"val_ppl"' "$OUT"/*.log | cut -c1-300
