// Schedule policies: for one work tile, how many key tiles it visits, which one at step j,
// and whether that tile is partial (its per-element mask must run). Partial tiles may sit at
// any step. The transposed walk a backward pass needs (query tiles that see a key tile) is
// the same arithmetic with the roles swapped: DenseSchedule's diagonal, the lists' transpose,
// NeighborhoodSchedule's range rule applied to key boxes.
#pragma once
#include <cstdint>

#include "core/neighborhood_window.h"
#include "cuda/fast/params.h"

namespace sa::cuda::fast {

// Dense (and varlen): key tiles [0, tiles) visited from the last to the first, so a causal
// tile's diagonal (the partial tiles) comes first.
template <int kBN>
struct DenseSchedule {
    int tiles;
    __device__ int steps() const { return tiles; }
    __device__ int key0(int step) const { return (tiles - 1 - step) * kBN; }
};

// Block lists (FlexAttention's kv_num_blocks / kv_indices, plus the optional full lists): the
// partial list first, then the full list; a block of block_k keys is 1 << sub_shift key tiles.
// Counts are clamped to the list capacity; an index outside [0, num_k_blocks) gives key0 -1
// (a tile of absent keys) instead of an out-of-bounds read.
template <int kBN>
struct BlockListSchedule {
    const int32_t* list;
    const int32_t* full_list;
    int count, full_count;
    int block_k, num_k_blocks, sub_shift;

    __device__ int steps() const { return (count + full_count) << sub_shift; }
    __device__ bool from_full_list(int step) const { return (step >> sub_shift) >= count; }
    __device__ int key0(int step) const {
        const int e = step >> sub_shift;
        const int part = step - (e << sub_shift);
        const int block = e < count ? list[e] : full_list[e - count];
        if (block < 0 || block >= num_k_blocks) return -1;
        return block * block_k + part * kBN;
    }
};

// Neighborhood: per dim, the key boxes covering the union of the windows of the query box's
// valid rows. Windows start and end monotonically in the query coordinate, so that union is
// [start(first query), end(last query)) and every query of the box sees
// [start(last query), end(first query)): a key box inside it (every dim) needs no mask.
template <int kRank>
struct NeighborhoodSchedule {
    int begin[3];   // first key box index per dim
    int count[3];   // key boxes per dim
    int full_lo[3], full_hi[3];  // key coordinates every query of the box sees

    // q_first/q_last: the box's first and last valid local query coordinates.
    __device__ void init(const NeighborhoodTiles& na, const int (&q_first)[3], const int (&q_last)[3],
                         const int (&length)[3]) {
#pragma unroll
        for (int d = 0; d < kRank; ++d) {
            const KeyRange first = neighborhood_window(q_first[d], length[d], na.kernel[d], na.stride[d], na.causal[d] != 0);
            const KeyRange last = neighborhood_window(q_last[d], length[d], na.kernel[d], na.stride[d], na.causal[d] != 0);
            begin[d] = first.start >> na.k_shift[d];
            count[d] = ((last.end - 1) >> na.k_shift[d]) + 1 - begin[d];
            full_lo[d] = last.start;
            full_hi[d] = first.end;
        }
    }
    __device__ void clear() {
#pragma unroll
        for (int d = 0; d < kRank; ++d) count[d] = 0;
    }
    __device__ int steps() const {
        int n = 1;
#pragma unroll
        for (int d = 0; d < kRank; ++d) n *= count[d];
        return n;
    }
    // Origin (local key coordinates) of the key box of step j, the last dim fastest.
    __device__ void origin(const NeighborhoodTiles& na, int step, int (&a)[3]) const {
#pragma unroll
        for (int d = kRank - 1; d >= 0; --d) {
            const int i = d == 0 ? step : step % count[d];
            if (d > 0) step /= count[d];
            a[d] = (begin[d] + i) << na.k_shift[d];
        }
    }
    __device__ bool partial(const NeighborhoodTiles& na, const int (&a)[3]) const {
        bool p = false;
#pragma unroll
        for (int d = 0; d < kRank; ++d) p |= a[d] < full_lo[d] || a[d] + (1 << na.k_shift[d]) > full_hi[d];
        return p;
    }
};

}  // namespace sa::cuda::fast
