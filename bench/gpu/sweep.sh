#!/usr/bin/env bash
# Sequence-length and block-sparse density sweep, ours and the anchors in one device call.
# Run from the repository root on the GPU machine after bench/gpu/run_dense.sh has built
# /tmp/sparseattn-build (or set BUILD). Writes one JSON (schema sparseattn-bench-sweep/1, see
# bench/results/README.md) into $OUT; copy it to bench/results/ and run ./build.sh report.
set -uo pipefail
OUT=${OUT:-/tmp/sparseattn-out}
BUILD=${BUILD:-/tmp/sparseattn-build}
BUDGET_S=${BUDGET_S:-170}   # the whole sweep stays under 3 minutes
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
start=$(date +%s)
BENCH="$BUILD/bench/native/sparseattn_bench"
LIB=$(find "$BUILD/native" -maxdepth 1 -name 'libsparseattn.so' | head -1)
[ -x "$BENCH" ] || { echo "no $BENCH: run bash bench/gpu/run_dense.sh first (or set BUILD)"; exit 1; }
work=$(mktemp -d)

# Dense, bf16 D128 H16; batch x length = 16K tokens (batch 1 from 16K on).
echo "== native bench: dense sweep"
for causal in 0 1; do
  for s in 1024 2048 4096 8192 16384 32768; do
    b=$(( s >= 16384 ? 1 : 16384 / s ))
    "$BENCH" --batch "$b" --heads 16 --seqlen-q "$s" --dim 128 --causal "$causal" --dtype bf16 \
      --json "$work/dense_${causal}_${s}.json" | tail -1
  done
done

left=$(( BUDGET_S - ($(date +%s) - start) ))
echo "== anchors and block-sparse sweep (${left} s left)"
python3 bench/gpu/sweep_anchors.py --out "$work/anchors.json" --budget-s "$left" ${LIB:+--lib "$LIB"}

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
name="$(date +%Y-%m-%d)-$(echo "${gpu:-gpu}" | tr 'A-Z ' 'a-z-' | tr -cd 'a-z0-9-' | sed 's/^nvidia-//' | cut -c1-24)-sweep.json"
python3 - "$work" "$OUT/$name" <<'PY'
import glob, json, os, sys
work, out = sys.argv[1], sys.argv[2]
anchors = json.load(open(os.path.join(work, "anchors.json")))
results, device = [], anchors.get("device", "")
for path in sorted(glob.glob(os.path.join(work, "dense_*.json"))):
    raw = json.load(open(path))
    device = device or raw["device"]
    for r in raw["results"]:
        results.append({"impl": "sparseattn", "family": "dense", "batch": r["batch"], "heads": r["heads"],
                        "heads_kv": r["heads_kv"], "seqlen_q": r["seqlen_q"], "seqlen_k": r["seqlen_k"],
                        "dim": r["dim"], "dtype": r["dtype"], "causal": bool(r["causal"]), "density": None,
                        "ms": r["ms"], "tflops": r["tflops"], "ok": r["ok"]})
results += anchors["results"]
sweep = {"schema": "sparseattn-bench-sweep/1", "device": device, "date": anchors.get("date"),
         "software": anchors.get("software", {}), "results": results}
json.dump(sweep, open(out, "w"), indent=1)
print(f"wrote {out}: {len(results)} results")
PY
rm -rf "$work"
echo "sweep took $(( $(date +%s) - start )) s"
