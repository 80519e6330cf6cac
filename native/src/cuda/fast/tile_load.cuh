// Tile loads for both main loops: rows of a Q or K/V tile copied into shared memory with
// 16-byte cp.async, each row's address from the family's row-address policy (contiguous,
// gathered or a grid box); rows that do not exist are zero filled. Two layouts: padded rows
// for ldmatrix (mma.sync loop) and the 128-byte swizzle of common/wgmma.cuh (wgmma loop).
#pragma once
#include <cstdint>

#include "cuda/common/mma.cuh"
#include "cuda/common/wgmma.cuh"
#include "cuda/fast/row_address.cuh"

namespace sa::cuda::fast {

// Destination byte address of 16-byte chunk c of row r in each layout.
template <int kLd>
struct PaddedLayout {
    __device__ static uint32_t chunk(uint32_t base, int r, int c) { return base + uint32_t(2 * (r * kLd + c * 8)); }
};
template <int kRows>
struct Swizzled128Layout {
    __device__ static uint32_t chunk(uint32_t base, int r, int c) { return base + common::sw128_offset<kRows>(r, c * 8); }
};

// Copies kRows rows of kD 16-bit elements; offset(r) is row r's element offset from base, or
// -1 for a row to zero fill. Where it divides evenly a thread owns one column chunk of every
// kStep-th row (computing each row's address once), else chunks are dealt round robin.
template <int kRows, int kD, int kThreads, typename Layout, typename T, typename Offset>
__device__ __forceinline__ void load_rows(uint32_t smem, const T* base, Offset offset, int tid) {
    constexpr int kChunksPerRow = kD / 8;
    if constexpr (kThreads % kChunksPerRow == 0 && kRows % (kThreads / kChunksPerRow) == 0) {
        constexpr int kStep = kThreads / kChunksPerRow;
        const int r = tid / kChunksPerRow, c = tid % kChunksPerRow;
#pragma unroll
        for (int i = 0; i < kRows / kStep; ++i) {
            const int64_t off = offset(r + i * kStep);
            common::cp_async_16_zfill(Layout::chunk(smem, r + i * kStep, c), off >= 0 ? base + off + c * 8 : base, off >= 0);
        }
    } else {
        constexpr int kChunks = kRows * kChunksPerRow;
#pragma unroll
        for (int i = 0; i < (kChunks + kThreads - 1) / kThreads; ++i) {
            const int idx = tid + i * kThreads;
            if (kChunks % kThreads == 0 || idx < kChunks) {
                const int r = idx / kChunksPerRow, c = idx % kChunksPerRow;
                const int64_t off = offset(r);
                common::cp_async_16_zfill(Layout::chunk(smem, r, c), off >= 0 ? base + off + c * 8 : base, off >= 0);
            }
        }
    }
}

// K and V rows of one key tile (same tokens for both); token(c) is key row c's sequence row
// or -1. With kPositions the thread of chunk 0 also stores each row's token for the mask (with
// the K rows). with_k / with_v (constants at every call) pick the halves to copy: the wgmma loop
// copies K and V of a tile separately where it releases them separately.
template <int kRows, int kD, int kThreads, typename Layout, bool kPositions, typename T, typename Token>
__device__ __forceinline__ void load_kv(uint32_t sk, uint32_t sv, int* positions, const T* k_base, const T* v_base,
                                        int64_t k_stride, int64_t v_stride, Token token, int tid, bool with_k = true,
                                        bool with_v = true) {
    constexpr int kChunksPerRow = kD / 8;
    auto one = [&](int r, int c) {
        const int t = token(r);
        const bool valid = t >= 0;
        if (with_k)
            common::cp_async_16_zfill(Layout::chunk(sk, r, c), valid ? k_base + int64_t(t) * k_stride + c * 8 : k_base,
                                      valid);
        if (with_v)
            common::cp_async_16_zfill(Layout::chunk(sv, r, c), valid ? v_base + int64_t(t) * v_stride + c * 8 : v_base,
                                      valid);
        if constexpr (kPositions)
            if (with_k && c == 0) positions[r] = t;
    };
    if constexpr (kThreads % kChunksPerRow == 0 && kRows % (kThreads / kChunksPerRow) == 0) {
        constexpr int kStep = kThreads / kChunksPerRow;
        const int r = tid / kChunksPerRow, c = tid % kChunksPerRow;
#pragma unroll
        for (int i = 0; i < kRows / kStep; ++i) one(r + i * kStep, c);
    } else {
        constexpr int kChunks = kRows * kChunksPerRow;
#pragma unroll
        for (int i = 0; i < (kChunks + kThreads - 1) / kThreads; ++i) {
            const int idx = tid + i * kThreads;
            if (kChunks % kThreads == 0 || idx < kChunks) one(idx / kChunksPerRow, idx % kChunksPerRow);
        }
    }
}

// The rows of a kRows-row tile that thread tid copies under the even split of load_kv: rows
// r0 + i * kStep, i < kCount, all at column chunk c.
template <int kRows, int kD, int kThreads>
struct KvRowSplit {
    static constexpr int kChunksPerRow = kD / 8;
    static constexpr int kStep = kThreads / kChunksPerRow;
    static constexpr int kCount = kRows / kStep;
    static_assert(kThreads % kChunksPerRow == 0 && kRows % kStep == 0, "even row split");
};

// Tokens of a key tile read ahead of its copy, one row per thread: thread r < kRows stores row
// r's token t in positions[r] (the tile's slot of the key positions in shared memory), where
// load_kv_fetched and the mask read it; each warp also stores the least and greatest of its 32 tokens in
// positions[kRows + 2w], positions[kRows + 2w + 1] (tile_token_bounds folds them).
template <int kRows>
__device__ __forceinline__ void store_tokens(int* positions, int t, int tid) {
    static_assert(kRows % 32 == 0, "whole warps fetch");
    if (tid < kRows) {
        positions[tid] = t;
        const int lo = __reduce_min_sync(0xffffffffu, t), hi = __reduce_max_sync(0xffffffffu, t);
        if (tid % 32 == 0) {
            positions[kRows + 2 * (tid / 32)] = lo;
            positions[kRows + 2 * (tid / 32) + 1] = hi;
        }
    }
}

// Shared-memory ints per tile slot of fetched tokens: the tokens, then the per-warp bounds.
template <int kRows>
constexpr int kTokenSlotInts = kRows + 2 * (kRows / 32);

// The least and greatest token store_tokens stored for a tile.
template <int kRows>
__device__ __forceinline__ void tile_token_bounds(const int* positions, int& lo, int& hi) {
    lo = positions[kRows];
    hi = positions[kRows + 1];
#pragma unroll
    for (int w = 1; w < kRows / 32; ++w) {
        lo = min(lo, positions[kRows + 2 * w]);
        hi = max(hi, positions[kRows + 2 * w + 1]);
    }
}

// The copy of load_kv_fetched / load_kv_shuffled: thread tid copies column chunk c of rows
// r0 + i * kStep (KvRowSplit), row i's token from token_at(i, r). A row's address is one
// multiply-add on its token (an absent row reads row 0 with zero bytes); with row strides below
// 2^30 elements it is a 32 x 32 -> 64-bit multiply-add on byte offsets. with_k / with_v as for
// load_kv.
template <int kRows, int kD, int kThreads, typename Layout, typename T, typename TokenAt>
__device__ __forceinline__ void load_kv_by_token(uint32_t sk, uint32_t sv, TokenAt token_at, const T* k_base,
                                                 const T* v_base, int64_t k_stride, int64_t v_stride, int tid,
                                                 bool with_k, bool with_v) {
    using S = KvRowSplit<kRows, kD, kThreads>;
    const int r0 = tid / S::kChunksPerRow, c = tid % S::kChunksPerRow;
    const char* kc = reinterpret_cast<const char*>(k_base + c * 8);
    const char* vc = reinterpret_cast<const char*>(v_base + c * 8);
    // kb, vb: row strides in bytes, int (one IMAD.WIDE per address) or int64_t.
    auto copy = [&](auto kb, auto vb) {
#pragma unroll
        for (int i = 0; i < S::kCount; ++i) {
            const int r = r0 + i * S::kStep, t = token_at(i, r);
            const int64_t row = max(t, 0);
            if (with_k) common::cp_async_16_zfill(Layout::chunk(sk, r, c), kc + row * kb, t >= 0);
            if (with_v) common::cp_async_16_zfill(Layout::chunk(sv, r, c), vc + row * vb, t >= 0);
        }
    };
    constexpr int64_t kNarrow = int64_t(1) << 30;
    if (k_stride < kNarrow && v_stride < kNarrow)
        copy(int(k_stride) * int(sizeof(T)), int(v_stride) * int(sizeof(T)));
    else
        copy(k_stride * int64_t(sizeof(T)), v_stride * int64_t(sizeof(T)));
}

// load_kv from the tokens store_tokens stored in shared memory.
template <int kRows, int kD, int kThreads, typename Layout, typename T>
__device__ __forceinline__ void load_kv_fetched(uint32_t sk, uint32_t sv, const int* positions, const T* k_base,
                                                const T* v_base, int64_t k_stride, int64_t v_stride, int tid,
                                                bool with_k = true, bool with_v = true) {
    static_assert(kThreads >= kRows, "store_tokens stores one row per thread");
    load_kv_by_token<kRows, kD, kThreads, Layout>(
        sk, sv, [&](int, int r) { return positions[r]; }, k_base, v_base, k_stride, v_stride, tid, with_k, with_v);
}

// Warp-local tokens for load_kv_fetched's row split: each warp copies 32 rows of a 128-row
// tile (rows G w + g + kStep i, G = 32 / chunks per row, g = lane / chunks per row), so lane
// G i + g can hold row i's token for its whole warp and the copy takes it by a shuffle, with no
// shared-memory round trip and no barrier between the producer's warps.
template <int kRows, int kD, int kThreads>
struct WarpTokens {
    using S = KvRowSplit<kRows, kD, kThreads>;
    static constexpr int kGroups = 32 / S::kChunksPerRow;
    static constexpr bool kApplies = kRows == kThreads && S::kChunksPerRow <= 32 && S::kCount * kGroups == 32;
    // The row whose token thread tid fetches.
    __device__ static int row(int tid) {
        const int w = tid / 32, l = tid % 32;
        return kGroups * w + l % kGroups + S::kStep * (l / kGroups);
    }
};

// load_kv_fetched with each row's token taken from the lane of its warp that fetched it
// (WarpTokens); token is this thread's fetched token.
template <int kRows, int kD, int kThreads, typename Layout, typename T>
__device__ __forceinline__ void load_kv_shuffled(uint32_t sk, uint32_t sv, int token, const T* k_base,
                                                 const T* v_base, int64_t k_stride, int64_t v_stride, int tid,
                                                 bool with_k = true, bool with_v = true) {
    using W = WarpTokens<kRows, kD, kThreads>;
    static_assert(W::kApplies, "one warp's rows are its 32 lanes' tokens");
    const int g = (tid % 32) / W::S::kChunksPerRow;
    load_kv_by_token<kRows, kD, kThreads, Layout>(
        sk, sv, [&](int i, int) { return __shfl_sync(0xffffffffu, token, W::kGroups * i + g); }, k_base, v_base,
        k_stride, v_stride, tid, with_k, with_v);
}

// load_rows / load_kv for rows that form a RowRun: one address per thread, then increments.
template <int kRows, int kD, int kThreads, typename Layout, typename T>
__device__ __forceinline__ void load_rows_run(uint32_t smem, const T* base, int64_t stride, RowRun run, int tid) {
    constexpr int kChunksPerRow = kD / 8;
    if constexpr (kThreads % kChunksPerRow == 0 && kRows % (kThreads / kChunksPerRow) == 0) {
        constexpr int kStep = kThreads / kChunksPerRow;
        const int r0 = tid / kChunksPerRow, c = tid % kChunksPerRow;
        const T* src = base + (int64_t(run.first) + int64_t(r0) * run.step) * stride + c * 8;
        const int64_t advance = int64_t(kStep) * run.step * stride;
#pragma unroll
        for (int i = 0; i < kRows / kStep; ++i) {
            const bool valid = r0 + i * kStep < run.count;
            common::cp_async_16_zfill(Layout::chunk(smem, r0 + i * kStep, c), valid ? src : base, valid);
            src += advance;
        }
    } else {
        load_rows<kRows, kD, kThreads, Layout>(
            smem, base, [&](int r) { return r < run.count ? (int64_t(run.first) + int64_t(r) * run.step) * stride : -1; },
            tid);
    }
}

template <int kRows, int kD, int kThreads, typename Layout, bool kPositions, typename T>
__device__ __forceinline__ void load_kv_run(uint32_t sk, uint32_t sv, int* positions, const T* k_base, const T* v_base,
                                            int64_t k_stride, int64_t v_stride, RowRun run, int tid, bool with_k = true,
                                            bool with_v = true) {
    constexpr int kChunksPerRow = kD / 8;
    if constexpr (kThreads % kChunksPerRow == 0 && kRows % (kThreads / kChunksPerRow) == 0) {
        constexpr int kStep = kThreads / kChunksPerRow;
        const int r0 = tid / kChunksPerRow, c = tid % kChunksPerRow;
        const int64_t row0 = int64_t(run.first) + int64_t(r0) * run.step;
        const T* ksrc = k_base + row0 * k_stride + c * 8;
        const T* vsrc = v_base + row0 * v_stride + c * 8;
        const int64_t k_advance = int64_t(kStep) * run.step * k_stride, v_advance = int64_t(kStep) * run.step * v_stride;
#pragma unroll
        for (int i = 0; i < kRows / kStep; ++i) {
            const int r = r0 + i * kStep;
            const bool valid = r < run.count;
            if (with_k) common::cp_async_16_zfill(Layout::chunk(sk, r, c), valid ? ksrc : k_base, valid);
            if (with_v) common::cp_async_16_zfill(Layout::chunk(sv, r, c), valid ? vsrc : v_base, valid);
            if constexpr (kPositions)
                if (with_k && c == 0) positions[r] = valid ? run.first + r * run.step : -1;
            ksrc += k_advance;
            vsrc += v_advance;
        }
    } else {
        load_kv<kRows, kD, kThreads, Layout, kPositions>(
            sk, sv, positions, k_base, v_base, k_stride, v_stride,
            [&](int r) { return r < run.count ? run.first + r * run.step : -1; }, tid, with_k, with_v);
    }
}

}  // namespace sa::cuda::fast
