#!/usr/bin/env bash
# Replay at `edge`, this tree against another checkout of rrto_ros (BASE), interleaved on one
# machine so that drifts hit both; bench/modes.py does each run (modes local and replay on
# cuda; replay only on emu, which has no native run and so no floor).
#   git archive <commit> | tar -x -C base
#   [BACKEND=cuda|emu] [PY=python3] bash bench/ab_replay.sh base "$OUT" [rounds=3] [inferences=200]
# Writes OUT/ab_{base,new}_<round>.json (bench/modes.py output) and OUT/ab_summary.json.
# E.g. the replay lane encrypted (this tree) against plain (base: git archive ee65d9e).
set -uo pipefail
base=$1; out=$2; rounds=${3:-3}; n=${4:-200}
backend=${BACKEND:-cuda}; py=${PY:-python3}
modes=$([ "$backend" = cuda ] && echo local,replay || echo replay)
mkdir -p "$out"
for d in . "$base"; do
  (cd "$d" && "$py" rrto_ros/interposer/build.py --out rrto_ros/lib > /dev/null &&
   make -s -C examples OUT="$PWD/build/examples") || exit 1
done
for r in $(seq 1 "$rounds"); do
  for tag in base new; do
    d=$([ $tag = new ] && echo . || echo "$base")
    (cd "$d" && PYTHONPATH=$PWD timeout 300 "$py" bench/modes.py --backend "$backend" \
      --modes "$modes" --links edge --inferences "$n" --no-plot \
      --out "$out/ab_${tag}_$r.json" > "$out/ab_${tag}_$r.log" 2>&1)
  done
done
"$py" bench/ab_summary.py "$out" --command "BACKEND=$backend bash bench/ab_replay.sh $*"
