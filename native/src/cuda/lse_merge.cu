// Merge of two partial attention results over disjoint key sets (docs/semantics.md, LSE merge).
#include <cmath>

#include "cuda/element.cuh"
#include "cuda/runtime.h"

namespace sa::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;

// One warp per (batch, position, head) row; out/lse_out may alias o1/lse1, so every lane reads
// its inputs before any lane writes.
__global__ void __launch_bounds__(kWarpsPerBlock * 32) lse_merge_kernel(const MergeProblem m) {
    const int lane = static_cast<int>(threadIdx.x & 31);
    const int64_t warp = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
    if (warp >= m.batch * m.seqlen * m.heads) return;
    const int64_t h = warp % m.heads;
    const int64_t s = (warp / m.heads) % m.seqlen;
    const int64_t b = warp / (m.heads * m.seqlen);

    const float lse1 = m.lse1[b * m.lse1_strides.batch + h * m.lse1_strides.head +
                              s * m.lse1_strides.seq];
    const float lse2 = m.lse2[b * m.lse2_strides.batch + h * m.lse2_strides.head +
                              s * m.lse2_strides.seq];
    const float top = fmaxf(lse1, lse2);
    const bool empty = top == -INFINITY;
    const float lse = empty ? -INFINITY : top + logf(expf(lse1 - top) + expf(lse2 - top));
    const float w1 = empty ? 0.f : expf(lse1 - lse);
    const float w2 = empty ? 0.f : expf(lse2 - lse);

    const int64_t o1_row = b * m.o1_strides.batch + s * m.o1_strides.seq + h * m.o1_strides.head;
    const int64_t o2_row = b * m.o2_strides.batch + s * m.o2_strides.seq + h * m.o2_strides.head;
    const int64_t out_row =
        b * m.out_strides.batch + s * m.out_strides.seq + h * m.out_strides.head;
    for (int64_t d = lane; d < m.head_dim; d += 32) {
        // A zero weight must not turn an unwritten (NaN) partial into NaN.
        const float a = w1 != 0.f ? w1 * load_float(m.o1, m.o1_dtype, o1_row + d) : 0.f;
        const float c = w2 != 0.f ? w2 * load_float(m.o2, m.o2_dtype, o2_row + d) : 0.f;
        store_float(m.out, m.out_dtype, out_row + d, a + c);
    }
    __syncwarp();
    if (m.lse_out != nullptr && lane == 0)
        m.lse_out[b * m.lse_out_strides.batch + h * m.lse_out_strides.head +
                  s * m.lse_out_strides.seq] = lse;
}

}  // namespace

void lse_merge(const MergeProblem& m) {
    const int64_t rows = m.batch * m.seqlen * m.heads;
    if (rows == 0) return;
    const int64_t blocks = ceil_div(rows, kWarpsPerBlock);
    if (blocks > 0x7fffffff)
        throw_invalid("lse_merge: B*S*H = " + std::to_string(rows) + " rows exceed one launch");
    DeviceGuard guard(m.device_id);
    lse_merge_kernel<<<static_cast<unsigned>(blocks), kWarpsPerBlock * 32, 0,
                       static_cast<cudaStream_t>(m.stream)>>>(m);
    check_kernel_launch("LSE merge kernel");
}

}  // namespace sa::cuda
