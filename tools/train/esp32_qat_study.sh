#!/usr/bin/env bash
# The ESP32-size (260K) ternary-gap study: QAT recipes against the full-precision twin, every run in
# parallel on one GPU, torch.compile'd (the models are tiny and kernel-launch bound). The teacher of
# the distillation runs is the committed full-precision model models/kjv-esp32-260k-fp (trained by
# train.py --mode fp with the same config: 8000 steps, val ppl 8.78).
#   bash tools/train/esp32_qat_study.sh DATA OUT [BUDGET_S]
# DATA: tokenizer.py's 512-piece output (train/val/test.u16, tokenizer.bin). With BUDGET_S (seconds),
# a 150-step probe of every run (PROBE=0: none) measures the throughput first, and the lowest-priority runs (the end of
# ORDER) are left out while the rest would not fit; every run also stops at the budget (marked in its
# result.json). STEPS=N overrides every run's steps and COMPILE= turns torch.compile off (a CPU smoke run:
# STEPS=2 COMPILE= ORDER="kd sched" bash ...). Results: OUT/<run>/result.json, OUT/study.tar.gz (results, logs, model.bin, scales.json).
set -uo pipefail
DATA=${1:?usage: esp32_qat_study.sh DATA OUT [BUDGET_S]}
OUT=${2:?usage: esp32_qat_study.sh DATA OUT [BUDGET_S]}
BUDGET=${3:-0}
here=$(dirname "$0")
cfg=$here/configs/esp32-260k.json
T=models/kjv-esp32-260k-fp/model.bin
NEW="--ternary-wd 0 --min-lr-frac 0"  # the config's train.qat since this study; spelled out for the record
declare -A RUN=(
  [kd]="--mode b158 --distill-from $T $NEW"
  [kd-init]="--mode b158 --distill-from $T --init-from $T $NEW"
  [sched]="--mode b158 $NEW"
  [kd-plain]="--mode b158 --distill-from $T --ternary-wd 0.05 --min-lr-frac 0.1"
  [kd-mix]="--mode b158 --distill-from $T --kd-alpha 0.5 $NEW"
  [fp]="--mode fp"
  [kd-16k]="--mode b158 --distill-from $T $NEW --steps 16000"
  [fp-16k]="--mode fp --steps 16000"
  [sched-12k]="--mode b158 $NEW --steps 12000"
  [sched-16k]="--mode b158 $NEW --steps 16000"
)
ORDER=${ORDER:-"kd kd-init sched kd-plain kd-mix fp kd-16k fp-16k"}
start=$(date +%s)
mkdir -p "$OUT"
launch() {  # launch DIR EXTRA_ARGS RUN...
  local dir=$1 extra=$2; shift 2
  pids=()
  for r in "$@"; do
    python3 "$here/train.py" --config "$cfg" --data "$DATA" --out "$dir/$r" ${COMPILE---compile} ${RUN[$r]} $extra ${STEPS:+--steps $STEPS} > "$dir/$r.log" 2>&1 &
    pids+=($!)
  done
  local fail=0
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  return $fail
}
runs=($ORDER)
if [ "$BUDGET" -gt 0 ] && [ "${PROBE:-1}" = 1 ]; then
  mkdir -p "$OUT/probe"
  launch "$OUT/probe" "--steps 150" "${runs[@]}" || { tail -n 20 "$OUT"/probe/*.log; exit 1; }
  left=$((BUDGET - ($(date +%s) - start)))
  keep=$(python3 - "$OUT/probe" "$left" "${runs[@]}" <<'EOF'
import json, sys
probe, left, runs = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
rate = {r: json.load(open(f"{probe}/{r}/result.json"))["train_steps_per_s"] for r in runs}
steps = {r: int(r.rsplit("-", 1)[1][:-1]) * 1000 if r.endswith("k") else 8000 for r in runs}
agg = sum(rate.values())
print(f"probe: {agg:.1f} steps/s together; per run {rate}; {left:.0f} s left", file=sys.stderr)
for n in range(len(runs), 0, -1):
    sel = runs[:n]
    est = max(1.15 * sum(steps[r] for r in sel) / agg, 0.8 * max(steps[r] / rate[r] for r in sel)) + 45
    print(f"probe: {n} runs: about {est:.0f} s", file=sys.stderr)
    if est <= left or n == 1:
        print(" ".join(sel))
        break
EOF
)
  runs=($keep)
  echo "study: running ${runs[*]}"
fi
limit=""
[ "$BUDGET" -gt 0 ] && limit="--time-limit $((BUDGET - ($(date +%s) - start) - 35))"
launch "$OUT" "$limit" "${runs[@]}"; fail=$?
for r in "${runs[@]}"; do
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], {k: d.get(k) for k in ('mode','steps','best_step','val_ppl','test_ppl','train_seconds','train_steps_per_s','stopped_by_time_limit_at_step')})" "$OUT/$r/result.json" "$r" 2>/dev/null || { echo "$r failed:"; tail -n 15 "$OUT/$r.log"; }
done
(cd "$OUT" && tar czf study.tar.gz --exclude=ckpt.pt --exclude=model-q8.bin --exclude=model.gguf $(for r in "${runs[@]}"; do echo "$r" "$r.log"; done) $( [ -d probe ] && echo probe/*.log ))
exit $fail
