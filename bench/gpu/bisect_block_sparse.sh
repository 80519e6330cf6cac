#!/usr/bin/env bash
# Block-sparse suite across source trees in one device call, rounds alternating the trees. Each tree
# in $TREES other than "main" (the checkout) is a folder $SRC/<name> made beforehand with
#   git archive <commit> CMakeLists.txt VERSION cmake native bench/native | tar -x -C $SRC/<commit>
# (SRC default .gpu, an ignored folder carried to the device).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
TREES=${TREES:-"895a97b 487c191 609598f a440690 main"}
for t in $TREES; do
  S=${SRC:-.gpu}/$t; [ $t = main ] && S=.
  B=/tmp/bb_$t; t0=$(date +%s)
  cmake -S $S -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPARSEATTN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DSPARSEATTN_BUILD_TESTS=OFF -DSPARSEATTN_BUILD_BENCH=ON > "$OUT/build_$t.log" 2>&1 &&
  cmake --build $B -j16 --target sparseattn_bench_sparse >> "$OUT/build_$t.log" 2>&1 || { echo "build $t failed"; tail -20 "$OUT/build_$t.log"; }
  echo "build $t $(( $(date +%s) - t0 )) s"
done
for round in 1 2 3; do
  for t in $TREES; do
    echo "== round $round $t"
    timeout 100 /tmp/bb_$t/bench/native/sparseattn_bench_sparse --suite bs --check 0 2>&1 | grep -vE "^device" | sed -E 's/  +/ /g; s/block-sparse S32768 H32 //' | tee -a "$OUT/bs_$t.log"
  done
done
