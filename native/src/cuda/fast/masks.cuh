// Mask policies: the element predicate allowed(query, key) on positions in original token
// order, evaluated only on partial tiles.
#pragma once
#include <climits>
#include <cstdint>

#include "core/neighborhood_window.h"
#include "cuda/fast/params.h"

namespace sa::cuda::fast {

// Dense: bottom-right causal (key j allowed for query i iff j <= i + S_k - S_q) and the
// ragged key end.
template <bool kCausal>
struct CausalMask {
    int seqlen_q, seqlen_k;
    // Keys < key_limit(query) are allowed.
    __device__ int key_limit(int query) const {
        return kCausal ? min(seqlen_k, query + 1 + seqlen_k - seqlen_q) : seqlen_k;
    }
    // A tile is clean for every query >= first_query if it is clean for first_query.
    __device__ bool tile_is_partial(int first_query, int key0, int block_n) const {
        return key0 + block_n > seqlen_k || (kCausal && key0 + block_n - 1 > first_query + seqlen_k - seqlen_q);
    }
};

// Block-sparse: causal (when asked) on original positions, under any permutation of either
// side; key position -1 marks an absent key (ragged end, invalid index).
struct PositionMask {
    int causal;
    int offset;  // S_k - S_q: bottom-right alignment
    // The last key position a query at original position q may see.
    __device__ int last_key(int q) const { return causal ? q + offset : INT_MAX; }
    __device__ static bool allowed(int last, int key_pos) { return key_pos >= 0 && key_pos <= last; }
};

// Neighborhood: the AND over dims of the window rule (core/neighborhood_window.h) in local
// coordinates of one dilation group (queries see only keys of their own group).
template <int kRank>
struct WindowMask {
    struct Row {
        int lo[3], hi[3];
    };
    __device__ static Row row(const NeighborhoodTiles& na, const int (&length)[3], const int (&u)[3]) {
        Row w;
#pragma unroll
        for (int d = 0; d < kRank; ++d) {
            const KeyRange r = neighborhood_window(u[d], length[d], na.kernel[d], na.stride[d], na.causal[d] != 0);
            w.lo[d] = r.start;
            w.hi[d] = r.end;  // <= length: keys past the group's end are never inside
        }
        return w;
    }
    __device__ static bool allowed(const Row& w, const int (&k)[3]) {
        bool ok = true;
#pragma unroll
        for (int d = 0; d < kRank; ++d) ok = ok && k[d] >= w.lo[d] && k[d] < w.hi[d];
        return ok;
    }
};

}  // namespace sa::cuda::fast
