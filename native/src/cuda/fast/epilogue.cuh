// Epilogue of both main loops: finish a row's softmax (deferred quad sum, normalization, LSE)
// and write it where the family's row address says (a query permutation scatters rows back
// to original order), either to the output or, under split-KV, to the fp32 partials that the
// combine kernel merges by LSE.
#pragma once
#include <cstdint>

#include "cuda/common/mma.cuh"
#include "cuda/common/softmax.cuh"
#include "cuda/fast/params.h"
#include "cuda/fast/row_address.cuh"

namespace sa::cuda::fast {

// 1/l and the LSE of a row from its running state (lane-partial sum, quad-reduced here).
struct RowResult {
    float inv;
    float lse;
};
__device__ __forceinline__ RowResult finish_row(const common::RowState& row, float scale) {
    const float l = common::quad_sum(row.sum_partial);
    const bool any = l > 0.f;  // a row with no allowed key: output 0, LSE -inf
    return {any ? 1.f / l : 0.f, any ? row.max_raw * scale + logf(l) : -INFINITY};
}

// Writes pairs of columns of one output row: to `out` directly or to the split's partials.
template <typename T, int D>
struct RowWriter {
    T* o = nullptr;
    float* partial = nullptr;
    float* lse = nullptr;

    __device__ RowWriter(const FwdParams& p, int b, int h, int q_start, int token, int split) {
        if (token < 0) return;
        if (p.num_splits > 1) {
            const int64_t row = (int64_t(split) * p.batch * p.heads_q + int64_t(b) * p.heads_q + h) * p.seqlen_q + token;
            partial = p.o_partial + row * D;
            lse = p.lse_partial + row;
        } else {
            o = static_cast<T*>(p.out) + b * p.o_batch + int64_t(q_start + token) * p.o_seq + h * p.o_head;
            if (p.lse != nullptr) lse = p.lse + b * p.lse_batch + h * p.lse_head + int64_t(q_start + token) * p.lse_seq;
        }
    }
    __device__ bool active() const { return o != nullptr || partial != nullptr; }
    __device__ void pair(int col, float x, float y) const {
        if (partial != nullptr) *reinterpret_cast<float2*>(partial + col) = make_float2(x, y);
        else *reinterpret_cast<uint32_t*>(o + col) = common::pack2<T>(x, y);
    }
    __device__ void write_lse(float v) const {
        if (lse != nullptr) *lse = v;
    }
};

// Merges the split partials of one (batch, head, query row) per warp by their LSEs.
template <typename T, int D>
__global__ void __launch_bounds__(128) combine_splits_kernel(const __grid_constant__ FwdParams p) {
    const int64_t item = int64_t(blockIdx.x) * 4 + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    const int64_t rows_per_split = int64_t(p.batch) * p.heads_q * p.seqlen_q;
    if (item >= rows_per_split) return;
    const int row = int(item % p.seqlen_q);
    const int bh = int(item / p.seqlen_q);
    const int b = bh / p.heads_q, h = bh % p.heads_q;
    int q_start = 0;
    if (p.cu_seqlens_q != nullptr) {
        q_start = p.cu_seqlens_q[b];
        if (row >= p.cu_seqlens_q[b + 1] - q_start) return;
    }
    float lse_max = -INFINITY;
    for (int s = 0; s < p.num_splits; ++s) lse_max = fmaxf(lse_max, p.lse_partial[s * rows_per_split + item]);
    float total = 0.f;
    if (lse_max != -INFINITY)
        for (int s = 0; s < p.num_splits; ++s) total += __expf(p.lse_partial[s * rows_per_split + item] - lse_max);
    const float lse = lse_max == -INFINITY ? -INFINITY : lse_max + logf(total);
    constexpr int kVec = D % 128 == 0 ? 4 : D % 64 == 0 ? 2 : 1;
    static_assert(D % (32 * kVec) == 0, "combine vector width");
    float acc[D / 32] = {};
    if (lse != -INFINITY) {
        for (int s = 0; s < p.num_splits; ++s) {
            const float w = __expf(p.lse_partial[s * rows_per_split + item] - lse);
            const float* src = p.o_partial + (s * rows_per_split + item) * D;
#pragma unroll
            for (int c = 0; c < D / (32 * kVec); ++c)
#pragma unroll
                for (int e = 0; e < kVec; ++e) acc[c * kVec + e] += w * src[(c * 32 + lane) * kVec + e];
        }
    }
    T* o_row = static_cast<T*>(p.out) + b * p.o_batch + int64_t(q_start + row) * p.o_seq + h * p.o_head;
#pragma unroll
    for (int c = 0; c < D / (32 * kVec); ++c)
#pragma unroll
        for (int e = 0; e < kVec; ++e) o_row[(c * 32 + lane) * kVec + e] = common::from_float<T>(acc[c * kVec + e]);
    if (lane == 0 && p.lse != nullptr) p.lse[b * p.lse_batch + h * p.lse_head + int64_t(q_start + row) * p.lse_seq] = lse;
}

}  // namespace sa::cuda::fast
