// PBS planner on the GPU, step by step as docs/semantics.md states it: key importance from the
// last `block` query rows, a stable descending sort of keys within each full segment, block
// means, a block-score softmax over earlier segments, the shortest prefix reaching tau, plus the
// sink block and the own-segment blocks (all of a full segment; up to the diagonal in the tail).
// Importance scores use tensor cores (bf16/fp16 products, fp32 accumulation); the selection's
// prefix sums are exact (fp64 over probabilities rounded to multiples of 2^-52); every other
// sum is fp32. All work is queued on the call's stream: no host round-trip, no sync.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <climits>
#include <string>

#include "cuda/common/mma.cuh"
#include "cuda/common/softmax.cuh"
#include "cuda/element.cuh"
#include "cuda/runtime.h"

namespace sa::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxHeadDim = 256;
constexpr int kMaxSegment = 4096;

// Everything the planner kernels share, passed by value.
struct PlanParams {
    const void* q;
    const void* k;
    RowStrides q_strides, k_strides;
    int64_t batch, seqlen, heads_q, heads_kv, head_dim;
    int32_t block, segment;
    int64_t num_blocks;    // nQ == nK
    int64_t full_keys;     // keys inside full segments
    int64_t last_first;    // first importance row: the last `block` query rows
    int64_t last_rows;     // importance rows: min(block, seqlen)
    float tau, scale;
    bool permute_keys;
    int32_t* key_perm;
    int32_t* kv_num_blocks;
    int32_t* kv_indices;
    // scratch
    float* row_max;        // [B, H, last_rows]
    float* row_sum;
    float* importance;     // [B, H, full_keys]
    float* mean_q;         // [B, H, nB, D]
    float* mean_k;
    float* block_score;    // [B, H, nB, nB]: scale * mean_q[i] . mean_k[j] for earlier-segment j
    float2* tile_stats;    // [B, H, last_rows, key_chunks]: (max, sum) of each row over one block's keys
    int32_t* sink_block;   // [B, H]
    int32_t key_chunks;    // blocks of the importance kernels per (head, batch)
    bool vector_loads;     // Q and K rows 16-byte aligned with head_dim % 8 == 0: cp.async rows
};

template <typename T>
__device__ __forceinline__ const T* q_row(const PlanParams& p, int64_t b, int64_t h, int64_t s) {
    return static_cast<const T*>(p.q) + b * p.q_strides.batch + s * p.q_strides.seq +
           h * p.q_strides.head;
}

template <typename T>
__device__ __forceinline__ const T* k_row(const PlanParams& p, int64_t b, int64_t h, int64_t s) {
    const int64_t kv_head = h / (p.heads_q / p.heads_kv);
    return static_cast<const T*>(p.k) + b * p.k_strides.batch + s * p.k_strides.seq +
           kv_head * p.k_strides.head;
}

// ---- Key importance on tensor cores ----------------------------------------------------------
// A block holds the importance rows of one (head, batch) in shared memory (at most 128: the
// last `block` query rows) and walks kTcTilesPerBlock tiles of kTcKeys keys, copying tile i+1
// while it computes tile i; warp w owns rows [16w, 16w + 16) and computes their 16 x kTcKeys
// scores with mma.sync m16n8k16. Pass 1 folds each row's (max, sum of exp) over the block's
// tiles, a warp per row folds those over the blocks in order, and pass 2 recomputes the scores
// and sums each key's probabilities over the rows. Scores are in log2 units (scale * log2(e)),
// as on the CPU. The per-score exponentials are ex2.approx (flushing results below 2^-126 to 0;
// every argument is at most 0); the row-statistic folds use exp2f.
#ifndef SA_PBS_TC_KEYS
#define SA_PBS_TC_KEYS 64
#endif
#ifndef SA_PBS_TC_TILES
#define SA_PBS_TC_TILES 8
#endif
constexpr int kTcKeys = SA_PBS_TC_KEYS;
constexpr int kTcTilesPerBlock = SA_PBS_TC_TILES;
constexpr int kTcRows = 128;
constexpr int kTcThreads = 256;  // kTcRows / 16 warps
constexpr float kLog2e = 1.4426950408889634f;

template <int kDp>
constexpr size_t tc_smem_bytes() {
    return static_cast<size_t>(kTcRows + 2 * kTcKeys) * (kDp + 8) * 2;
}

// Rows [0, count) of a tile_rows-row tile into shared memory (row stride kDp + 8), zero filled
// past head_dim and past count, by the block's kTcThreads threads; cp.async when vector_loads
// (then committed as one group), element copies otherwise.
template <typename T, int kDp, typename RowPtr>
__device__ __forceinline__ void tc_load_rows(T* tile, int tile_rows, int count, int head_dim,
                                             bool vector_loads, RowPtr row_ptr) {
    constexpr int kLd = kDp + 8;
    if (vector_loads) {
        constexpr int kChunks = kDp / 8;
        for (int c = threadIdx.x; c < tile_rows * kChunks; c += kTcThreads) {
            const int r = c / kChunks, col = (c % kChunks) * 8;
            const bool valid = r < count && col < head_dim;
            const T* src = valid ? row_ptr(r) + col : row_ptr(0);
            common::cp_async_16_zfill(common::smem_addr(tile + r * kLd + col), src, valid);
        }
    } else {
        for (int e = threadIdx.x; e < tile_rows * kDp; e += kTcThreads) {
            const int r = e / kDp, col = e % kDp;
            tile[r * kLd + col] = r < count && col < head_dim ? row_ptr(r)[col]
                                                              : common::from_float<T>(0.f);
        }
    }
    common::cp_async_commit();
}

// One warp's 16 x kTcKeys scores (rows warp*16.., all keys of the tile), unscaled. Lane
// (g = lane / 4, t = lane % 4) holds rows g and g + 8, columns nt * 8 + 2t + {0, 1}.
template <typename T, int kDp>
__device__ __forceinline__ void tc_warp_scores(float (&acc)[kTcKeys / 8][4], const T* sQ,
                                               const T* sK, int warp, int lane) {
    constexpr int kLd = kDp + 8;
#pragma unroll
    for (int nt = 0; nt < kTcKeys / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[nt][e] = 0.f;
    const uint32_t q_lane =
        common::smem_addr(sQ + (warp * 16 + lane % 16) * kLd + (lane / 16) * 8);
    const uint32_t k_lane =
        common::smem_addr(sK + ((lane / 16) * 8 + lane % 8) * kLd + ((lane / 8) % 2) * 8);
#pragma unroll
    for (int kk = 0; kk < kDp / 16; ++kk) {
        uint32_t a[4];
        common::ldmatrix_x4(a, q_lane + 2 * kk * 16);
#pragma unroll
        for (int np = 0; np < kTcKeys / 16; ++np) {
            uint32_t bk[4];
            common::ldmatrix_x4(bk, k_lane + 2 * (np * 16 * kLd + kk * 16));
            common::mma_m16n8k16<T>(acc[2 * np], a, bk[0], bk[1]);
            common::mma_m16n8k16<T>(acc[2 * np + 1], a, bk[2], bk[3]);
        }
    }
}

// The block's key tiles and importance rows, double-buffered: visit(i, sK, keys) runs on tile
// i (keys valid keys from key k0 = first + i * kTcKeys) once it is in shared memory.
template <typename T, int kDp, typename Visit>
__device__ __forceinline__ void tc_walk_tiles(const PlanParams& p, unsigned char* smem, int64_t b,
                                              int64_t h, Visit visit) {
    constexpr int kLd = kDp + 8;
    T* sQ = reinterpret_cast<T*>(smem);
    T* sK = sQ + kTcRows * kLd;
    const int64_t first = static_cast<int64_t>(blockIdx.x) * kTcTilesPerBlock * kTcKeys;
    const int tiles = static_cast<int>(
        min(static_cast<int64_t>(kTcTilesPerBlock), (p.full_keys - first + kTcKeys - 1) / kTcKeys));
    const int head_dim = static_cast<int>(p.head_dim);
    // The head's rows are found once (k_row divides for the kv head); rows step by the stride.
    const int64_t q_seq = p.q_strides.seq, k_seq = p.k_strides.seq;
    const T* q_rows = q_row<T>(p, b, h, p.last_first);
    const T* k_rows = k_row<T>(p, b, h, 0);
    auto load_keys = [&](int i) {
        const int64_t k0 = first + static_cast<int64_t>(i) * kTcKeys;
        const int keys = static_cast<int>(min(static_cast<int64_t>(kTcKeys), p.full_keys - k0));
        const T* tile = k_rows + k0 * k_seq;
        tc_load_rows<T, kDp>(sK + (i % 2) * kTcKeys * kLd, kTcKeys, keys, head_dim, p.vector_loads,
                             [&](int r) { return tile + r * k_seq; });
        return keys;
    };
    tc_load_rows<T, kDp>(sQ, kTcRows, static_cast<int>(p.last_rows), head_dim, p.vector_loads,
                         [&](int r) { return q_rows + r * q_seq; });
    int keys = load_keys(0);
    for (int i = 0; i < tiles; ++i) {
        int next_keys = 0;
        if (i + 1 < tiles) {
            next_keys = load_keys(i + 1);
            common::cp_async_wait<1>();
        } else {
            common::cp_async_wait<0>();
        }
        __syncthreads();
        visit(i, sQ, sK + (i % 2) * kTcKeys * kLd, keys);
        __syncthreads();  // buffer i % 2 is refilled by the next iteration's copy
        keys = next_keys;
    }
}

__device__ __forceinline__ float2 combine_stats(float2 x, float2 y) {
    const float m = fmaxf(x.x, y.x);
    if (m == -INFINITY) return make_float2(m, 0.f);
    return make_float2(m, x.y * exp2f(x.x - m) + y.y * exp2f(y.x - m));
}

// Pass 1: (max, sum of exp2) of each importance row over this block's keys.
template <typename T, int kDp>
__global__ void __launch_bounds__(kTcThreads) tile_stats_kernel(const PlanParams p) {
    extern __shared__ __align__(16) unsigned char tc_smem[];
    const int64_t h = blockIdx.y, b = blockIdx.z, bh = b * p.heads_q + h;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
    const bool active = warp * 16 < p.last_rows;  // warp-uniform
    const float factor = p.scale * kLog2e;
    float2 run[2] = {make_float2(-INFINITY, 0.f), make_float2(-INFINITY, 0.f)};
    tc_walk_tiles<T, kDp>(p, tc_smem, b, h, [&](int, const T* sQ, const T* sK, int keys) {
        if (!active) return;
        float acc[kTcKeys / 8][4];
        tc_warp_scores<T, kDp>(acc, sQ, sK, warp, lane);
        const bool full = keys == kTcKeys;  // block-uniform: only the last tile is partial
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            float mx = -INFINITY;
#pragma unroll
            for (int nt = 0; nt < kTcKeys / 8; ++nt)
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const bool valid = full || nt * 8 + 2 * t + e < keys;
                    acc[nt][2 * half + e] = valid ? acc[nt][2 * half + e] * factor : -INFINITY;
                    mx = fmaxf(mx, acc[nt][2 * half + e]);
                }
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            float sum = 0.f;
#pragma unroll
            for (int nt = 0; nt < kTcKeys / 8; ++nt)
#pragma unroll
                for (int e = 0; e < 2; ++e)
                    sum += mx == -INFINITY ? 0.f : common::fast_exp2(acc[nt][2 * half + e] - mx);
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            run[half] = combine_stats(run[half], make_float2(mx, sum));
        }
    });
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int row = warp * 16 + g + 8 * half;
        if (active && t == 0 && row < p.last_rows)
            p.tile_stats[(bh * p.last_rows + row) * p.key_chunks + blockIdx.x] = run[half];
    }
}

// Folds the per-block statistics of each importance row, one warp per row, in a fixed order.
__global__ void row_stats_kernel(const PlanParams p) {
    const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (row >= p.batch * p.heads_q * p.last_rows) return;  // warp-uniform
    const float2* stats = p.tile_stats + row * p.key_chunks;
    float2 acc = make_float2(-INFINITY, 0.f);
    for (int chunk = lane; chunk < p.key_chunks; chunk += 32) acc = combine_stats(acc, stats[chunk]);
    for (int offset = 16; offset > 0; offset >>= 1) {
        const float2 other = make_float2(__shfl_xor_sync(0xffffffffu, acc.x, offset),
                                         __shfl_xor_sync(0xffffffffu, acc.y, offset));
        acc = combine_stats(acc, other);
    }
    if (lane == 0) {
        p.row_max[row] = acc.x;
        p.row_sum[row] = acc.y;
    }
}

// Pass 2: each key's probability summed over the importance rows, divided by their count.
template <typename T, int kDp>
__global__ void __launch_bounds__(kTcThreads) importance_kernel(const PlanParams p) {
    extern __shared__ __align__(16) unsigned char tc_smem[];
    __shared__ float column_part[kTcThreads / 32][kTcKeys];
    const int64_t h = blockIdx.y, b = blockIdx.z, bh = b * p.heads_q + h;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
    const bool active = warp * 16 < p.last_rows;  // warp-uniform
    const float factor = p.scale * kLog2e;
    // A row past last_rows (zero filled) gets m = +inf and w = 0: its terms are exp2(-inf) * 0 = 0.
    float m[2], w[2];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int row = warp * 16 + g + 8 * half;
        const bool valid = row < p.last_rows;
        const int64_t at = bh * p.last_rows + (valid ? row : 0);
        m[half] = valid ? p.row_max[at] : INFINITY;
        w[half] = valid ? 1.f / (p.row_sum[at] * static_cast<float>(p.last_rows)) : 0.f;
    }
    const int64_t first = static_cast<int64_t>(blockIdx.x) * kTcTilesPerBlock * kTcKeys;
    tc_walk_tiles<T, kDp>(p, tc_smem, b, h, [&](int i, const T* sQ, const T* sK, int keys) {
        float sums[kTcKeys / 8][2] = {};
        if (active) {
            float acc[kTcKeys / 8][4];
            tc_warp_scores<T, kDp>(acc, sQ, sK, warp, lane);
#pragma unroll
            for (int half = 0; half < 2; ++half)
#pragma unroll
                for (int nt = 0; nt < kTcKeys / 8; ++nt)
#pragma unroll
                    for (int e = 0; e < 2; ++e)
                        sums[nt][e] += common::fast_exp2(acc[nt][2 * half + e] * factor - m[half]) * w[half];
        }
#pragma unroll
        for (int nt = 0; nt < kTcKeys / 8; ++nt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                float v = sums[nt][e];
                v += __shfl_xor_sync(0xffffffffu, v, 4);
                v += __shfl_xor_sync(0xffffffffu, v, 8);
                v += __shfl_xor_sync(0xffffffffu, v, 16);
                if (g == 0) column_part[warp][nt * 8 + 2 * t + e] = v;
            }
        __syncthreads();
        if (threadIdx.x < keys) {
            float column = 0.f;
            for (int x = 0; x < kTcThreads / 32; ++x) column += column_part[x][threadIdx.x];
            p.importance[bh * p.full_keys + first + static_cast<int64_t>(i) * kTcKeys + threadIdx.x] = column;
        }
    });
}

// Does (score a, index ia) come before (score b, index ib)? Descending score, then lower index.
__device__ __forceinline__ bool precedes(float a, int32_t ia, float b, int32_t ib) {
    return a > b || (a == b && ia < ib);
}

// In-place bitonic sort of `size` (a power of two) pairs in shared memory, in `precedes` order.
__device__ void bitonic_sort(float* score, int32_t* index, int32_t size) {
    for (int32_t width = 2; width <= size; width <<= 1) {
        for (int32_t stride = width >> 1; stride > 0; stride >>= 1) {
            __syncthreads();
            for (int32_t e = threadIdx.x; e < size; e += blockDim.x) {
                const int32_t partner = e ^ stride;
                if (partner <= e) continue;
                const bool ascending_run = (e & width) == 0;
                const bool swap = ascending_run
                                      ? precedes(score[partner], index[partner], score[e], index[e])
                                      : precedes(score[e], index[e], score[partner], index[partner]);
                if (swap) {
                    const float s = score[e];
                    score[e] = score[partner];
                    score[partner] = s;
                    const int32_t i = index[e];
                    index[e] = index[partner];
                    index[partner] = i;
                }
            }
        }
    }
    __syncthreads();
}

__host__ __device__ inline int32_t next_power_of_two(int64_t n) {
    int32_t size = 1;
    while (size < n) size <<= 1;
    return size;
}

// Sorts the keys of one full segment by importance; one block per (segment, head, batch).
__global__ void __launch_bounds__(kThreads) segment_sort_kernel(const PlanParams p) {
    extern __shared__ unsigned char shared_bytes[];
    const int32_t size = next_power_of_two(p.segment);
    float* score = reinterpret_cast<float*>(shared_bytes);
    int32_t* index = reinterpret_cast<int32_t*>(score + size);
    const int64_t segment = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int64_t first = segment * p.segment;
    const float* importance = p.importance + (b * p.heads_q + h) * p.full_keys + first;
    for (int32_t e = threadIdx.x; e < size; e += blockDim.x) {
        const bool real = e < p.segment;
        score[e] = real ? importance[e] : -INFINITY;
        index[e] = real ? static_cast<int32_t>(first + e) : INT_MAX;
    }
    bitonic_sort(score, index, size);
    int32_t* perm = p.key_perm + (b * p.heads_q + h) * p.seqlen + first;
    for (int32_t e = threadIdx.x; e < p.segment; e += blockDim.x) {
        perm[e] = index[e];
        if (index[e] == 0) p.sink_block[b * p.heads_q + h] = e / p.block;  // original token 0
    }
}

// Keys from `first` on keep their order (the tail past the last full segment; all keys when
// the plan does not permute them, with the sink in block 0).
__global__ void identity_from_kernel(const PlanParams p, int64_t first) {
    const int64_t tail = p.seqlen - first;
    const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e >= p.batch * p.heads_q * tail) return;
    const int64_t bh = e / tail, t = first + e % tail;
    p.key_perm[bh * p.seqlen + t] = static_cast<int32_t>(t);
    if (t == 0) p.sink_block[bh] = 0;
}

// Adds the 8 elements at src to acc (one 16-byte load when vector_loads).
template <typename T>
__device__ __forceinline__ void add8(float (&acc)[8], const T* src, bool vector_loads) {
    if (vector_loads) {
        const uint4 raw = *reinterpret_cast<const uint4*>(src);
        const T* v = reinterpret_cast<const T*>(&raw);
#pragma unroll
        for (int x = 0; x < 8; ++x) acc[x] += to_float(v[x]);
    } else {
#pragma unroll
        for (int x = 0; x < 8; ++x) acc[x] += to_float(src[x]);
    }
}

// Rows per batch of block_means_kernel: a thread reads the permutation entries of this many of
// its rows, then issues their Q and K loads together (a K row's address waits on its entry).
#ifndef SA_PBS_MEANS_BATCH
#define SA_PBS_MEANS_BATCH 4
#endif

// Mean of the valid query rows of block j and of the permuted keys of block j. Thread
// (group, c) sums columns [8c, 8c + 8) of rows group, group + groups, ... in that order; the
// groups are folded in order.
template <typename T>
__global__ void __launch_bounds__(kThreads) block_means_kernel(const PlanParams p) {
    __shared__ float part_q[kThreads * 8], part_k[kThreads * 8];
    const int64_t j = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int64_t first = j * p.block;
    const int64_t rows = p.seqlen - first < p.block ? p.seqlen - first : p.block;
    const int32_t* perm = p.key_perm + (b * p.heads_q + h) * p.seqlen;
    const int64_t at = ((b * p.heads_q + h) * p.num_blocks + j) * p.head_dim;
    const int chunks = static_cast<int>(p.head_dim / 8), groups = kThreads / chunks;
    const int group = threadIdx.x / chunks, c = threadIdx.x % chunks;
    float sum_q[8] = {}, sum_k[8] = {};
    const T* q_rows = q_row<T>(p, b, h, 0) + 8 * c;  // rows step by the stride (one kv-head division)
    const T* k_rows = k_row<T>(p, b, h, 0) + 8 * c;
    constexpr int kBatch = SA_PBS_MEANS_BATCH;
    const int mine = group < groups && group < rows ? static_cast<int>((rows - group + groups - 1) / groups) : 0;
    if (p.vector_loads) {
        // Batches of rows with no branch between their loads: a row past the end reads the
        // thread's first row again and adds zeros.
        for (int i0 = 0; i0 < mine; i0 += kBatch) {
            int64_t q_at[kBatch], k_at[kBatch];
#pragma unroll
            for (int u = 0; u < kBatch; ++u) {
                const int64_t r = first + group + int64_t(i0 + u < mine ? i0 + u : 0) * groups;
                q_at[u] = r * p.q_strides.seq;
                k_at[u] = int64_t(perm[r]) * p.k_strides.seq;
            }
            uint4 q_raw[kBatch], k_raw[kBatch];
#pragma unroll
            for (int u = 0; u < kBatch; ++u) {
                q_raw[u] = *reinterpret_cast<const uint4*>(q_rows + q_at[u]);
                k_raw[u] = *reinterpret_cast<const uint4*>(k_rows + k_at[u]);
            }
#pragma unroll
            for (int u = 0; u < kBatch; ++u) {
                const bool valid = i0 + u < mine;
                const T* qv = reinterpret_cast<const T*>(&q_raw[u]);
                const T* kv = reinterpret_cast<const T*>(&k_raw[u]);
#pragma unroll
                for (int x = 0; x < 8; ++x) {
                    sum_q[x] += valid ? to_float(qv[x]) : 0.f;
                    sum_k[x] += valid ? to_float(kv[x]) : 0.f;
                }
            }
        }
    } else {
        for (int i = 0; i < mine; ++i) {
            const int64_t r = first + group + int64_t(i) * groups;
            add8(sum_q, q_rows + r * p.q_strides.seq, false);
            add8(sum_k, k_rows + int64_t(perm[r]) * p.k_strides.seq, false);
        }
    }
    if (group < groups)
#pragma unroll
        for (int x = 0; x < 8; ++x) {
            part_q[group * p.head_dim + 8 * c + x] = sum_q[x];
            part_k[group * p.head_dim + 8 * c + x] = sum_k[x];
        }
    __syncthreads();
    for (int64_t d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
        float total_q = 0.f, total_k = 0.f;
        for (int w = 0; w < groups; ++w) {
            total_q += part_q[w * p.head_dim + d];
            total_k += part_k[w * p.head_dim + d];
        }
        p.mean_q[at + d] = total_q / static_cast<float>(rows);
        p.mean_k[at + d] = total_k / static_cast<float>(rows);
    }
}

// scale * mean_q[i] . mean_k[j] for every candidate j of query block i (blocks of earlier
// segments): a 64 x 64 tile of (i, j) per block, 4 x 4 per thread, d summed in index order.
constexpr int kScoreTile = 64;
constexpr int kScoreDepth = 16;
__global__ void __launch_bounds__(kThreads) block_scores_kernel(const PlanParams p) {
    __shared__ float sq[kScoreDepth][kScoreTile + 4];
    __shared__ float sk[kScoreDepth][kScoreTile + 4];
    const int64_t tiles = (p.num_blocks + kScoreTile - 1) / kScoreTile;
    const int64_t i0 = (blockIdx.x / tiles) * kScoreTile, j0 = (blockIdx.x % tiles) * kScoreTile;
    const int64_t h = blockIdx.y, b = blockIdx.z, bh = b * p.heads_q + h;
    const int64_t blocks_per_segment = p.segment / p.block;
    const int64_t i_last = min(i0 + kScoreTile - 1, p.num_blocks - 1);
    if (j0 >= (i_last * p.block) / p.segment * blocks_per_segment) return;  // no candidates
    const float* mean_q = p.mean_q + bh * p.num_blocks * p.head_dim;
    const float* mean_k = p.mean_k + bh * p.num_blocks * p.head_dim;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[4][4] = {};
    for (int64_t d0 = 0; d0 < p.head_dim; d0 += kScoreDepth) {
        for (int e = threadIdx.x; e < kScoreTile * kScoreDepth; e += blockDim.x) {
            const int row = e / kScoreDepth, dd = e % kScoreDepth;
            const bool in_d = d0 + dd < p.head_dim;
            sq[dd][row] = in_d && i0 + row < p.num_blocks ? mean_q[(i0 + row) * p.head_dim + d0 + dd] : 0.f;
            sk[dd][row] = in_d && j0 + row < p.num_blocks ? mean_k[(j0 + row) * p.head_dim + d0 + dd] : 0.f;
        }
        __syncthreads();
        const int depth = static_cast<int>(min(static_cast<int64_t>(kScoreDepth), p.head_dim - d0));
        for (int dd = 0; dd < depth; ++dd) {
            float a[4], c[4];
#pragma unroll
            for (int x = 0; x < 4; ++x) {
                a[x] = sq[dd][ty * 4 + x];
                c[x] = sk[dd][tx * 4 + x];
            }
#pragma unroll
            for (int x = 0; x < 4; ++x)
#pragma unroll
                for (int y = 0; y < 4; ++y) acc[x][y] = fmaf(a[x], c[y], acc[x][y]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int x = 0; x < 4; ++x) {
        const int64_t i = i0 + ty * 4 + x;
        if (i >= p.num_blocks) continue;
        const int64_t candidates = (i * p.block) / p.segment * blocks_per_segment;
#pragma unroll
        for (int y = 0; y < 4; ++y) {
            const int64_t jj = j0 + tx * 4 + y;
            if (jj < candidates) p.block_score[(bh * p.num_blocks + i) * p.num_blocks + jj] = acc[x][y] * p.scale;
        }
    }
}

// ---- Block selection ------------------------------------------------------------------------
// One warp per query block. Lane l holds candidates j = 32 s + l (s < kSelectSlots) in
// registers; candidates from 32 * kSelectSlots on live in the warp's shared memory. Instead of
// sorting, the warp bisects on the float bits of the probabilities (monotone for values >= 0)
// for the smallest value v whose "sum of probabilities >= v" still reaches tau; the kept set
// is every candidate above v plus the fewest candidates equal to v, lowest index first, that
// bring the sum to tau. That is the sorted order's shortest prefix (ties: lower index first).
constexpr int kSelectWarps = 4;   // query blocks (warps) per block of the selection kernel
constexpr int kSelectSlots = 32;  // candidates per lane in registers: 1024 per query block
constexpr int kSelectInRegisters = 32 * kSelectSlots;

// p rounded to a multiple of 2^-52 (no change for p >= 2^-29): sums of such values below 2 are
// exact in fp64, so every prefix sum is exact and independent of the order of the additions.
__device__ __forceinline__ double exact_unit(float p) {
    return rint(static_cast<double>(p) * 0x1p52) * 0x1p-52;
}

// xor-butterfly reductions: every lane ends with the same value (each step adds a pair in
// either order, and addition is commutative).
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}
__device__ __forceinline__ double warp_sum(double x) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1)
        x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
    return x;
}
__device__ __forceinline__ uint32_t warp_min(uint32_t x) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) x = min(x, __shfl_xor_sync(0xffffffffu, x, offset));
    return x;
}
__device__ __forceinline__ uint32_t warp_max(uint32_t x) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) x = max(x, __shfl_xor_sync(0xffffffffu, x, offset));
    return x;
}

// Candidates past kSelectInRegisters that one warp keeps in shared memory, for the largest
// candidate count of the plan; each spilled candidate takes a float and a double.
int64_t select_spill(int64_t most_candidates) {
    return most_candidates > kSelectInRegisters ? most_candidates - kSelectInRegisters : 0;
}

// Block selection for rows_per_block query blocks of one (head, batch), one warp each.
__global__ void __launch_bounds__(kSelectWarps * 32, 3)
    select_blocks_kernel(const PlanParams p, int32_t rows_per_block, int32_t spill) {
    extern __shared__ __align__(16) unsigned char shared_bytes[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t i = static_cast<int64_t>(blockIdx.x) * rows_per_block + warp;
    const int64_t h = blockIdx.y, b = blockIdx.z, bh = b * p.heads_q + h;
    if (i >= p.num_blocks) return;  // warp-uniform; the kernel has no block-wide barrier
    double* spill_unit = reinterpret_cast<double*>(shared_bytes) + static_cast<int64_t>(warp) * spill;
    float* spill_prob = reinterpret_cast<float*>(reinterpret_cast<double*>(shared_bytes) +
                                                 static_cast<int64_t>(rows_per_block) * spill) +
                        static_cast<int64_t>(warp) * spill;
    const int64_t nb = p.num_blocks;
    const int64_t blocks_per_segment = p.segment / p.block;
    const int64_t own_segment = (i * p.block) / p.segment;
    const int32_t n = static_cast<int32_t>(own_segment * blocks_per_segment);  // candidates
    const float* row_score = p.block_score + (bh * nb + i) * nb;

    // Softmax over the candidates; lanes past n hold -1 (below every threshold) and weight 0.
    float prob[kSelectSlots];
    double unit[kSelectSlots];
    float top = -INFINITY;
#pragma unroll
    for (int s = 0; s < kSelectSlots; ++s) {
        const int32_t j = s * 32 + lane;
        prob[s] = j < n ? row_score[j] : -INFINITY;
        unit[s] = 0.0;
        top = fmaxf(top, prob[s]);
    }
    for (int32_t j = kSelectInRegisters + lane; j < n; j += 32) {
        const float x = row_score[j];
        spill_prob[j - kSelectInRegisters] = x;
        top = fmaxf(top, x);
    }
    top = warp_max(top);
    float local = 0.f;
#pragma unroll
    for (int s = 0; s < kSelectSlots; ++s) {
        if (s * 32 >= n) break;  // warp-uniform
        prob[s] = s * 32 + lane < n ? expf(prob[s] - top) : 0.f;
        local += prob[s];
    }
    for (int32_t j = kSelectInRegisters + lane; j < n; j += 32) {
        const float e = expf(spill_prob[j - kSelectInRegisters] - top);
        spill_prob[j - kSelectInRegisters] = e;
        local += e;
    }
    const float normalizer = warp_sum(local);
    double weight = 0.0;
    uint32_t key_min = UINT_MAX, key_max = 0;
#pragma unroll
    for (int s = 0; s < kSelectSlots; ++s) {
        if (s * 32 >= n) break;  // warp-uniform
        const bool valid = s * 32 + lane < n;
        prob[s] = valid ? prob[s] / normalizer : -1.f;
        unit[s] = valid ? exact_unit(prob[s]) : 0.0;
        weight += unit[s];
        if (valid) {
            key_min = min(key_min, __float_as_uint(prob[s]));
            key_max = max(key_max, __float_as_uint(prob[s]));
        }
    }
    for (int32_t j = kSelectInRegisters + lane; j < n; j += 32) {
        const float x = spill_prob[j - kSelectInRegisters] / normalizer;
        spill_prob[j - kSelectInRegisters] = x;
        spill_unit[j - kSelectInRegisters] = exact_unit(x);
        weight += exact_unit(x);
        key_min = min(key_min, __float_as_uint(x));
        key_max = max(key_max, __float_as_uint(x));
    }

    // The threshold: keep every candidate whose bits exceed `cut` and the first `ties`
    // candidates (by index) whose bits equal it; keep_all when no prefix short of all reaches
    // tau (tau >= 1, or the probabilities sum to less than tau).
    bool keep_all = !(p.tau < 1.f) || n == 0;
    uint32_t cut = 0;
    int32_t ties = 0;
    if (!keep_all) {
        // A tau at or below 0 keeps the first candidate, as does any tau up to its probability.
        const double target = fmax(static_cast<double>(p.tau), 0x1p-52);
        const double total = warp_sum(weight);
        if (total < target) {
            keep_all = true;
        } else {
            // sum(key_lo) >= target > sum(key_hi) = above, with sum(t) the sum of the
            // probabilities whose bits are >= t; each step halves [key_lo, key_hi).
            uint32_t key_lo = warp_min(key_min), key_hi = warp_max(key_max) + 1u;
            double above = 0.0;
            while (key_hi - key_lo > 1u) {
                const uint32_t mid = key_lo + (key_hi - key_lo) / 2u;
                const float threshold = __uint_as_float(mid);
                double acc[2] = {0.0, 0.0};
#pragma unroll
                for (int s = 0; s < kSelectSlots; ++s) {
                    if (s * 32 >= n) break;  // warp-uniform
                    if (prob[s] >= threshold) acc[s % 2] += unit[s];
                }
                for (int32_t j = kSelectInRegisters + lane; j < n; j += 32)
                    if (spill_prob[j - kSelectInRegisters] >= threshold)
                        acc[0] += spill_unit[j - kSelectInRegisters];
                const double sum = warp_sum(acc[0] + acc[1]);
                if (sum >= target) {
                    key_lo = mid;
                } else {
                    key_hi = mid;
                    above = sum;
                }
            }
            // key_lo is a candidate's value (sum() only changes at candidates' values); the
            // sums below are exact, so the fewest ties reaching the target are found exactly.
            cut = key_lo;
            const double value = exact_unit(__uint_as_float(cut));
            ties = value > 0.0 ? max(1, static_cast<int32_t>(min(ceil((target - above) / value),
                                                                 static_cast<double>(n))))
                               : n;
            while (ties > 1 && above + static_cast<double>(ties - 1) * value >= target) --ties;
            while (ties < n && above + static_cast<double>(ties) * value < target) ++ties;
        }
    }

    // Ascending list, 32 blocks at a time: kept candidates, the own segment's blocks, the sink.
    // Kept candidates (earlier segments) and own-segment blocks are distinct blocks.
    // A permuted full segment may hold keys the query sees in any of its blocks; in
    // unpermuted keys, blocks past the diagonal hold only later keys.
    const bool own_is_full = p.permute_keys && (own_segment + 1) * p.segment <= p.seqlen;
    const int64_t own_last = own_is_full ? (own_segment + 1) * blocks_per_segment - 1 : i;
    const int64_t sink = p.sink_block[bh];
    int32_t* list = p.kv_indices + (bh * nb + i) * nb;
    const unsigned lower_lanes = (1u << lane) - 1u;
    int32_t count = 0, ties_before = 0;
    auto emit = [&](int64_t j, float value) {
        const bool candidate = j < n;
        const uint32_t key = __float_as_uint(value);
        const bool tie = candidate && !keep_all && key == cut;
        const unsigned tie_ballot = __ballot_sync(0xffffffffu, tie);
        const bool chosen =
            candidate && (keep_all || key > cut ||
                          (tie && ties_before + __popc(tie_ballot & lower_lanes) < ties));
        ties_before += __popc(tie_ballot);
        const bool kept = j < nb && (chosen || (j >= n && j <= own_last) || j == sink);
        const unsigned ballot = __ballot_sync(0xffffffffu, kept);
        if (kept) list[count + __popc(ballot & lower_lanes)] = static_cast<int32_t>(j);
        count += __popc(ballot);
    };
    int64_t j0 = 0;
#pragma unroll
    for (int s = 0; s < kSelectSlots; ++s) {
        if (j0 >= n) break;  // warp-uniform
        emit(j0 + lane, prob[s]);
        j0 += 32;
    }
    for (; j0 < nb; j0 += 32) {
        const int64_t j = j0 + lane;
        emit(j, j < n ? spill_prob[j - kSelectInRegisters] : -1.f);
    }
    for (int64_t j = count + lane; j < nb; j += 32) list[j] = -1;
    if (lane == 0) p.kv_num_blocks[bh * nb + i] = count;
}

// One segment or less: identity permutation and every causal block, as dense causal attention.
__global__ void identity_plan_kernel(const PlanParams p) {
    const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t rows = p.batch * p.heads_q * p.num_blocks;
    if (e < p.batch * p.heads_q * p.seqlen) p.key_perm[e] = static_cast<int32_t>(e % p.seqlen);
    if (e < rows * p.num_blocks) {
        const int64_t row = e / p.num_blocks, j = e % p.num_blocks, i = row % p.num_blocks;
        p.kv_indices[e] = j <= i ? static_cast<int32_t>(j) : -1;
        if (j == 0) p.kv_num_blocks[row] = static_cast<int32_t>(i + 1);
    }
}

size_t align_up(size_t bytes) { return (bytes + 255) / 256 * 256; }

// Queues the three importance kernels for head dims up to kDp.
template <typename T, int kDp>
void launch_importance(const PlanParams& params, const PbsProblem& problem, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>(params.key_chunks), static_cast<unsigned>(problem.heads_q),
                    static_cast<unsigned>(problem.batch));
    constexpr size_t bytes = tc_smem_bytes<kDp>();
    if (bytes > 48 * 1024) {
        enable_large_smem(reinterpret_cast<const void*>(&tile_stats_kernel<T, kDp>), problem.device_id);
        enable_large_smem(reinterpret_cast<const void*>(&importance_kernel<T, kDp>), problem.device_id);
    }
    tile_stats_kernel<T, kDp><<<grid, kTcThreads, bytes, stream>>>(params);
    check_kernel_launch("PBS importance statistics kernel");
    const int64_t rows = problem.batch * problem.heads_q * params.last_rows;
    row_stats_kernel<<<static_cast<unsigned>(ceil_div(rows * 32, kThreads)), kThreads, 0, stream>>>(params);
    check_kernel_launch("PBS importance row statistics kernel");
    importance_kernel<T, kDp><<<grid, kTcThreads, bytes, stream>>>(params);
    check_kernel_launch("PBS key importance kernel");
}

bool aligned_rows(const void* data, const RowStrides& st) {
    return reinterpret_cast<uintptr_t>(data) % 16 == 0 && st.batch % 8 == 0 && st.seq % 8 == 0 &&
           st.head % 8 == 0;
}

template <typename T>
void plan_typed(PlanParams params, const PbsProblem& problem) {
    const auto stream = static_cast<cudaStream_t>(problem.stream);
    const int64_t bh = problem.batch * problem.heads_q;
    if (params.seqlen <= params.segment) {
        const int64_t work = bh * (params.seqlen > params.num_blocks * params.num_blocks
                                       ? params.seqlen
                                       : params.num_blocks * params.num_blocks);
        identity_plan_kernel<<<static_cast<unsigned>(ceil_div(work, kThreads)), kThreads, 0,
                               stream>>>(params);
        check_kernel_launch("PBS identity plan kernel");
        return;
    }

    params.key_chunks = static_cast<int32_t>(ceil_div(params.full_keys, kTcKeys * kTcTilesPerBlock));
    params.vector_loads = params.head_dim % 8 == 0 && aligned_rows(params.q, params.q_strides) &&
                          aligned_rows(params.k, params.k_strides);
    const size_t rows_bytes = align_up(sizeof(float) * bh * params.last_rows);
    const size_t importance_bytes = align_up(sizeof(float) * bh * params.full_keys);
    const size_t means_bytes = align_up(sizeof(float) * bh * params.num_blocks * params.head_dim);
    const size_t scores_bytes = align_up(sizeof(float) * bh * params.num_blocks * params.num_blocks);
    const size_t stats_bytes =
        params.permute_keys ? align_up(sizeof(float2) * bh * params.last_rows * params.key_chunks) : 0;
    const size_t sink_bytes = align_up(sizeof(int32_t) * bh);
    ScratchLease lease = scratch(problem.device_id, problem.stream,
                                 2 * rows_bytes + importance_bytes + 2 * means_bytes +
                                     scores_bytes + stats_bytes + sink_bytes);
    auto* cursor = static_cast<unsigned char*>(lease.data());
    auto take = [&cursor](size_t bytes) {
        unsigned char* at = cursor;
        cursor += bytes;
        return at;
    };
    params.row_max = reinterpret_cast<float*>(take(rows_bytes));
    params.row_sum = reinterpret_cast<float*>(take(rows_bytes));
    params.importance = reinterpret_cast<float*>(take(importance_bytes));
    params.mean_q = reinterpret_cast<float*>(take(means_bytes));
    params.mean_k = reinterpret_cast<float*>(take(means_bytes));
    params.block_score = reinterpret_cast<float*>(take(scores_bytes));
    params.tile_stats = reinterpret_cast<float2*>(take(stats_bytes));
    params.sink_block = reinterpret_cast<int32_t*>(take(sink_bytes));

    const auto heads = static_cast<unsigned>(problem.heads_q);
    const auto batch = static_cast<unsigned>(problem.batch);
    if (!params.permute_keys) {
        // no importance: the keys keep their order
    } else if (params.head_dim <= 64) {
        launch_importance<T, 64>(params, problem, stream);
    } else if (params.head_dim <= 128) {
        launch_importance<T, 128>(params, problem, stream);
    } else {
        launch_importance<T, 256>(params, problem, stream);
    }
    if (params.permute_keys) {
        const size_t sort_bytes = static_cast<size_t>(next_power_of_two(params.segment)) *
                                  (sizeof(float) + sizeof(int32_t));
        segment_sort_kernel<<<dim3(static_cast<unsigned>(params.full_keys / params.segment),
                                   heads, batch),
                              kThreads, sort_bytes, stream>>>(params);
        check_kernel_launch("PBS segment sort kernel");
    }
    const int64_t identity_first = params.permute_keys ? params.full_keys : 0;
    const int64_t tail = params.seqlen - identity_first;
    if (tail > 0) {
        identity_from_kernel<<<static_cast<unsigned>(ceil_div(bh * tail, kThreads)), kThreads, 0,
                               stream>>>(params, identity_first);
        check_kernel_launch("PBS identity permutation kernel");
    }
    block_means_kernel<T><<<dim3(static_cast<unsigned>(params.num_blocks), heads, batch), kThreads,
                            0, stream>>>(params);
    check_kernel_launch("PBS block means kernel");
    const int64_t score_tiles = ceil_div(params.num_blocks, kScoreTile);
    block_scores_kernel<<<dim3(static_cast<unsigned>(score_tiles * score_tiles), heads, batch),
                          kThreads, 0, stream>>>(params);
    check_kernel_launch("PBS block scores kernel");
    const int64_t most_candidates = params.full_keys / params.block;
    const int64_t spill = select_spill(most_candidates);
    const size_t spill_bytes = static_cast<size_t>(spill) * (sizeof(double) + sizeof(float));
    int64_t rows_per_block = kSelectWarps;
    if (spill > 0) {
        const size_t limit = enable_large_smem(reinterpret_cast<const void*>(&select_blocks_kernel),
                                               problem.device_id);
        if (spill_bytes > limit)
            throw_invalid("pbs_plan: seqlen " + std::to_string(params.seqlen) + " with block " +
                          std::to_string(params.block) + " gives " +
                          std::to_string(params.num_blocks) +
                          " blocks, more than the CUDA planner handles on this device");
        rows_per_block = std::min<int64_t>(kSelectWarps, static_cast<int64_t>(limit / spill_bytes));
    }
    select_blocks_kernel<<<dim3(static_cast<unsigned>(ceil_div(params.num_blocks, rows_per_block)),
                                heads, batch),
                           static_cast<unsigned>(32 * rows_per_block),
                           spill_bytes * static_cast<size_t>(rows_per_block), stream>>>(
        params, static_cast<int32_t>(rows_per_block), static_cast<int32_t>(spill));
    check_kernel_launch("PBS block selection kernel");
}

}  // namespace

void pbs_plan(const PbsProblem& problem) {
    if (problem.segment > kMaxSegment)
        throw_invalid("segment: " + std::to_string(problem.segment) +
                      " is larger than the CUDA planner supports (at most " +
                      std::to_string(kMaxSegment) + ")");
    if (problem.head_dim > kMaxHeadDim || problem.head_dim % 8 != 0)
        throw_invalid("head_dim: " + std::to_string(problem.head_dim) +
                      " is not supported by the CUDA planner (multiples of 8 up to 256)");
    if (problem.batch > 65535 || problem.heads_q > 65535)
        throw_invalid("pbs_plan: batch " + std::to_string(problem.batch) + " or heads " +
                      std::to_string(problem.heads_q) + " exceed 65535");
    if (problem.block > kTcRows)
        throw_invalid("block: " + std::to_string(problem.block) +
                      " is larger than the CUDA planner supports (at most 128)");
    if (problem.batch * problem.heads_q * problem.seqlen == 0) return;

    PlanParams params{};
    params.q = problem.q;
    params.k = problem.k;
    params.q_strides = problem.q_strides;
    params.k_strides = problem.k_strides;
    params.batch = problem.batch;
    params.seqlen = problem.seqlen;
    params.heads_q = problem.heads_q;
    params.heads_kv = problem.heads_kv;
    params.head_dim = problem.head_dim;
    params.block = problem.block;
    params.segment = problem.segment;
    params.num_blocks = problem.num_blocks;
    params.full_keys = problem.seqlen / problem.segment * problem.segment;
    params.last_rows = problem.seqlen < problem.block ? problem.seqlen : problem.block;
    params.last_first = problem.seqlen - params.last_rows;
    params.tau = problem.tau;
    params.permute_keys = problem.permute_keys;
    params.scale = problem.scale;
    params.key_perm = problem.key_perm;
    params.kv_num_blocks = problem.kv_num_blocks;
    params.kv_indices = problem.kv_indices;

    DeviceGuard guard(problem.device_id);
    switch (problem.dtype) {
        case SA_DTYPE_F16: plan_typed<__half>(params, problem); break;
        case SA_DTYPE_BF16: plan_typed<__nv_bfloat16>(params, problem); break;
        default:
            throw_invalid("q: dtype " + std::to_string(problem.dtype) +
                          " is not supported by the CUDA planner (fp16 or bf16)");
    }
}

}  // namespace sa::cuda
