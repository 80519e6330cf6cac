// Grid to work tile: blockIdx.x enumerates (query tile, grid head, batch), query tiles
// fastest; blockIdx.y is the split-KV index. With reverse_m the last query tiles go first
// (causal: the longest key ranges start first, so the short ones fill the tail).
#pragma once
#include <cstdint>

#include "cuda/fast/params.h"

namespace sa::cuda::fast {

struct WorkTile {
    int m_block, b, head, split;
};

__device__ __forceinline__ WorkTile work_tile(const FwdParams& p) {
    const int m_linear = int(blockIdx.x % unsigned(p.num_m_blocks));
    const int bh = int(blockIdx.x / unsigned(p.num_m_blocks));
    return {p.reverse_m ? p.num_m_blocks - 1 - m_linear : m_linear, bh / p.grid_heads, bh % p.grid_heads,
            int(blockIdx.y)};
}

// The steps [begin, end) of this split (all of them when there is one split).
struct StepRange {
    int begin, end;
};
__device__ __forceinline__ StepRange split_steps(int steps, int split, int num_splits) {
    const int per = (steps + num_splits - 1) / num_splits;
    return {min(steps, split * per), min(steps, (split + 1) * per)};
}

// Where a work tile's Q rows and its kv head's K/V rows start (batch, head, varlen offset).
template <typename T>
struct TileBases {
    const T* q;
    const T* k;
    const T* v;
    template <typename Family>
    __device__ TileBases(const FwdParams& p, int b, const Family& fam)
        : q(static_cast<const T*>(p.q) + b * p.q_batch + int64_t(fam.q_start) * p.q_seq + fam.h0 * p.q_head),
          k(static_cast<const T*>(p.k) + b * p.k_batch + int64_t(fam.k_start) * p.k_seq + fam.hk * p.k_head),
          v(static_cast<const T*>(p.v) + b * p.v_batch + int64_t(fam.k_start) * p.v_seq + fam.hk * p.v_head) {}
};

}  // namespace sa::cuda::fast
