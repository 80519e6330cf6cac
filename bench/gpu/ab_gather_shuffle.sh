#!/usr/bin/env bash
# A/B in one device call: gathered and boxed key tokens handed to the copying threads by warp
# shuffle (SA_SM90_GATHER_SHUFFLE=1) or through shared memory behind a producer barrier (0).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/x"
for v in 1 0; do
  B=/tmp/bg$v; t0=$(date +%s); tests=OFF; [ $v = 1 ] && tests=ON
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPARSEATTN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DSPARSEATTN_BUILD_TESTS=$tests -DSPARSEATTN_BUILD_BENCH=ON "-DCMAKE_CUDA_FLAGS=-DSA_SM90_GATHER_SHUFFLE=$v" > "$OUT/x/build$v.log" 2>&1 &&
  cmake --build $B -j16 >> "$OUT/x/build$v.log" 2>&1 || { echo "build $v failed"; grep -E "error" "$OUT/x/build$v.log" | head; tail -5 "$OUT/x/build$v.log"; }
  echo "build $v $(( $(date +%s) - t0 )) s"
  cuobjdump -res-usage $B/native/libsparseattn.so 2>&1 | grep -A1 -E 'fwd_sm90_kernel' | grep -E 'Function|REG' | paste - - |
    sed -E 's/.*Function ([^ :]+).*REG:([0-9]+) STACK:([0-9]+).*/\1 REG \2 STACK \3/' | c++filt | sed -E 's/\(sa::cuda::fast::FwdParams\)//; s/sa::cuda::fast:://g' | sort -u | grep bfloat > "$OUT/x/regs$v.txt"
  grep -E "STACK [1-9]" "$OUT/x/regs$v.txt"
  cuobjdump -sass $B/native/libsparseattn.so | awk '/Function : /{p=0} /Function : .*fwd_sm90_kernel.*nv_bfloat16.*Li128E.*BlockSparseSelect/{p=1} p' > "$OUT/x/sass_bs_$v.txt" 2>&1
done
(cd /tmp/bg1 && ctest -j4 -R 'sparse|neighborhood|pbs|fast' 2>&1 | tail -4) | tee "$OUT/x/ctest.txt"
grep -E "Failed" /tmp/bg1/Testing/Temporary/LastTest.log | head -5
for s in bs na; do /tmp/bg1/bench/native/sparseattn_bench_sparse --suite $s --check 1 2>&1 | grep -vE "^ +boxes|^device" | sed -E 's/  +/ /g; s/dense.*\|/|/' | tee "$OUT/x/check-$s.log"; done
for round in 1 2; do
  for s in bs na; do
    for v in 1 0; do
      echo "== round $round $s shuffle=$v"
      timeout 150 /tmp/bg$v/bench/native/sparseattn_bench_sparse --suite $s --check 0 2>&1 | grep -vE "^ +boxes|^device" | sed -E 's/  +/ /g; s/block-sparse S32768 H32 //; s/bound pairs.*//' | tee -a "$OUT/x/$s-$v.log"
    done
  done
done
tar -C "$OUT" -czf "$OUT/gather.tar.gz" x && rm -rf "$OUT/x"
