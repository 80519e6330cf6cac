// Online-softmax steps for mma.sync accumulator fragments. A row of an m16n8 fragment is
// spread over the 4 lanes of a quad (lane % 4), so row reductions shuffle within the quad.
// Scores stay raw; scale*log2(e) is folded into one FFMA before exp2.
#pragma once
#include <cmath>

namespace sa::cuda::common {

__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// Running state of one query row: max raw score and this lane's partial sum of exp
// (the quad sum is deferred to the epilogue).
struct RowState {
    float max_raw;
    float sum_partial;
};

// Rescales the running state for a new row max; returns the factor O must be scaled by and
// the max (times scale*log2 e) to subtract, 0 when the row has seen no allowed key yet.
__device__ __forceinline__ float online_softmax_rescale(RowState& row, float tile_max_raw,
                                                        float scale_log2, float& max_scaled) {
    const float new_max = fmaxf(row.max_raw, tile_max_raw);
    max_scaled = new_max == -INFINITY ? 0.f : new_max * scale_log2;
    const float alpha =
        row.max_raw == -INFINITY ? 0.f : fast_exp2(row.max_raw * scale_log2 - max_scaled);
    row.max_raw = new_max;
    row.sum_partial *= alpha;
    return alpha;
}

// p = exp2(s * scale*log2e - max_scaled); masked scores (-inf) give 0.
__device__ __forceinline__ float softmax_prob(float s_raw, float scale_log2, float max_scaled) {
    return fast_exp2(fmaf(s_raw, scale_log2, -max_scaled));
}

}  // namespace sa::cuda::common
