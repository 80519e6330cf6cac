#!/usr/bin/env bash
# A/B in one device call of the sm_90a producer/consumer register split (CFGS, default
# "72:216 88:208 104:200"): a build per split, then the bs, na and dense bar suites alternating.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
CFGS=${CFGS:-"72:216 88:208 104:200"}
for cfg in $CFGS; do
  P=${cfg%:*}; C=${cfg#*:}; B=/tmp/b$P
  t0=$(date +%s)
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPARSEATTN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DSPARSEATTN_BUILD_TESTS=OFF -DSPARSEATTN_BUILD_BENCH=ON "-DCMAKE_CUDA_FLAGS=-DSA_SM90_PRODUCER_REGS=$P -DSA_SM90_CONSUMER_REGS=$C" > "$OUT/build$P.log" 2>&1 &&
  cmake --build $B -j16 >> "$OUT/build$P.log" 2>&1 || { echo "build $cfg failed"; tail -20 "$OUT/build$P.log"; }
  echo "build $cfg $(( $(date +%s) - t0 )) s"
  cuobjdump -res-usage $B/native/libsparseattn.so 2>&1 | grep -A1 -E 'fwd_sm90_kernel' | grep -E 'Function|REG' | paste - - |
    sed -E 's/.*Function ([^ :]+).*REG:([0-9]+) STACK:([0-9]+).*/\1 REG \2 STACK \3/' | c++filt | sed -E 's/\(sa::cuda::fast::FwdParams\)//; s/sa::cuda::fast:://g' | sort -u | grep bfloat > "$OUT/regs$P.txt"
  grep -E "STACK [1-9]" "$OUT/regs$P.txt"
done
for round in 1 2; do
  SS="bs na"; [ $round = 2 ] && SS="bs"
  for s in $SS; do
    for cfg in $CFGS; do P=${cfg%:*}
      echo "== round $round $s $cfg"
      timeout 150 /tmp/b$P/bench/native/sparseattn_bench_sparse --suite $s --check 0 2>&1 | grep -vE "^ +boxes|^device" | sed -E 's/  +/ /g' | tee -a "$OUT/$s-$P.log"
    done
  done
  [ $round = 2 ] && continue
  for cfg in $CFGS; do P=${cfg%:*}
    echo "== round $round bar $cfg"
    timeout 120 /tmp/b$P/bench/native/sparseattn_bench --suite bar 2>&1 | tail -8 | tee -a "$OUT/bar-$P.log"
  done
done
