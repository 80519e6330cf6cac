// Row-address policies: where row r of a query or key tile lives in its [S, H, D] tensor.
//  - PackedRows: consecutive rows of the sequence; with GQA packing, (query, head) pairs.
//  - GatheredRows: rows read through an index array (a permutation), one row per index.
//  - GridBoxRows: a box of one dilation group's 2-D/3-D token grid, unravelled with shifts.
// A row that does not exist (past the end, an index out of range) has token -1: loads zero
// fill it and the epilogue does not store it.
#pragma once
#include <cstdint>

#include "cuda/fast/params.h"

namespace sa::cuda::fast {

// Rows first + c * step of the sequence for tile rows c < count (count may be <= 0): the
// contiguous (or evenly strided) case, copied with one address per thread and increments.
struct RowRun {
    int first;
    int step;
    int count;
};

// Where a query tile row writes: sequence row `token` (-1: none) of query head h0 + head.
struct OutRow {
    int token;
    int head;
};

struct PackedRows {
    int first;  // tile row 0 is packed row `first`
    int limit;  // packed rows in the sequence (queries x pack)
    int pack;
    int64_t seq_stride, head_stride;

    __device__ int query(int row) const { return pack == 1 ? row : row / pack; }
    __device__ OutRow out_row(int r) const {
        const int row = first + r;
        if (row >= limit) return {-1, 0};
        const int qi = query(row);
        return {qi, row - qi * pack};
    }
    // Element offset of tile row r from the tile's base (-1: not a row).
    __device__ int64_t offset(int r) const {
        const OutRow o = out_row(r);
        return o.token < 0 ? -1 : int64_t(o.token) * seq_stride + int64_t(o.head) * head_stride;
    }
};

struct GatheredRows {
    const int32_t* index;  // nullptr: the identity
    int64_t index_stride;
    int first;   // tile row 0 is position `first`
    int count;   // positions in the sequence
    int limit;   // valid token range [0, limit)

    __device__ int token(int r) const {
        const int pos = first + r;
        if (pos >= count) return -1;
        if (index == nullptr) return pos;
        const int t = index[int64_t(pos) * index_stride];
        return t >= 0 && t < limit ? t : -1;
    }
};

// Coordinates of box row r (the last of the kRank dims fastest) for box sides 1 << shift.
template <int kRank>
__device__ __forceinline__ void box_coords(int r, const int (&origin)[3], const int32_t (&shift)[3], int (&u)[3]) {
#pragma unroll
    for (int d = kRank - 1; d >= 0; --d) {
        u[d] = origin[d] + (r & ((1 << shift[d]) - 1));
        r >>= shift[d];
    }
}

// One dilation group of a row-major token grid: local coordinate u of dim d is grid
// coordinate group[d] + dilation[d] * u, valid while u < length[d]. The geometry stays in the
// kernel parameters (constant bank); only the group's own numbers live in registers.
template <int kRank>
struct DilationGroup {
    const NeighborhoodTiles& na;
    int group[3];
    int length[3];  // tokens of the group per dim

    // Row-major over the kRank dims (the grid is 1 past them).
    __device__ int token(const int (&u)[3]) const {
        int t = 0;
#pragma unroll
        for (int d = 0; d < kRank; ++d) {
            if (u[d] >= length[d]) return -1;
            t = t * na.grid[d] + group[d] + na.dilation[d] * u[d];
        }
        return t;
    }
};

// A box of the group's grid with sides 1 << shift[d] (the query tile).
template <int kRank>
struct GridBoxRows {
    int origin[3];
    __device__ void coords(int r, const int32_t (&shift)[3], int (&u)[3]) const { box_coords<kRank>(r, origin, shift, u); }
};

}  // namespace sa::cuda::fast
