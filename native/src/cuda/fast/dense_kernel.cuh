// FlashAttention-2 class forward main loop on mma.sync, written once over a key-tile Schedule
// and a Mask policy. Each warp owns kRowTiles x 16 query rows of the block's query tile; K/V
// tiles stream through a kStages-deep cp.async ring in padded shared memory.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>

#include "cuda/common/mma.cuh"
#include "cuda/common/softmax.cuh"
#include "cuda/fast/dense_params.h"

namespace sa::cuda::fast {

// Tile configuration per head dim; kSmallM is the short-query (decode) variant.
template <int D, bool kSmallM>
struct DenseTileTraits;
#define SA_DENSE_TRAITS(D_, SMALL_, BM_, BN_, WARPS_, STAGES_, MINB_)          \
    template <>                                                               \
    struct DenseTileTraits<D_, SMALL_> {                                      \
        static constexpr int kHeadDim = D_, kBlockM = BM_, kBlockN = BN_;      \
        static constexpr int kWarps = WARPS_, kStages = STAGES_, kMinBlocks = MINB_; \
    };
SA_DENSE_TRAITS(32, false, 128, 128, 4, 2, 2)
SA_DENSE_TRAITS(64, false, 128, 128, 4, 2, 2)
SA_DENSE_TRAITS(96, false, 128, 64, 4, 2, 2)
SA_DENSE_TRAITS(128, false, 128, 64, 4, 2, 2)
SA_DENSE_TRAITS(256, false, 128, 64, 8, 2, 1)
SA_DENSE_TRAITS(32, true, 64, 128, 4, 2, 3)
SA_DENSE_TRAITS(64, true, 64, 128, 4, 2, 2)
SA_DENSE_TRAITS(96, true, 64, 64, 4, 2, 2)
SA_DENSE_TRAITS(128, true, 64, 64, 4, 2, 2)
SA_DENSE_TRAITS(256, true, 64, 64, 4, 2, 1)
#undef SA_DENSE_TRAITS

template <typename Traits>
struct DenseLayout {
    static constexpr int kD = Traits::kHeadDim;
    static constexpr int kLd = kD + 8;  // +16 bytes per row: ldmatrix rows hit distinct banks
    static constexpr int kThreads = Traits::kWarps * 32;
    static constexpr int kRowTiles = Traits::kBlockM / (16 * Traits::kWarps);
    static constexpr int kQElems = Traits::kBlockM * kLd;
    static constexpr int kKvElems = Traits::kBlockN * kLd;
    static constexpr size_t kSmemBytes =
        sizeof(uint16_t) * (size_t(kQElems) + size_t(2 * Traits::kStages) * kKvElems);
    static_assert(Traits::kBlockM % (16 * Traits::kWarps) == 0, "rows per warp");
    static_assert(Traits::kBlockN % 16 == 0 && kD % 16 == 0, "mma tiles");
};

// Key tiles of one query tile, visited from the last to the first so that the partial
// (masked) tiles of a causal diagonal come first and the rest run unmasked.
struct DenseKeySchedule {
    int tile_begin;
    int tile_end;
    __device__ int count() const { return tile_end - tile_begin; }
    __device__ int tile(int step) const { return tile_end - 1 - step; }
};

// Bottom-right causal (key j allowed for query i iff j <= i + S_k - S_q) plus the ragged
// key end; only tiles that cross a boundary pay for per-element masking. Tile rows are
// (query, head) pairs when GQA heads are packed: query = row / pack.
template <bool kCausal>
struct CausalMask {
    int seqlen_q;
    int seqlen_k;
    int pack;
    __device__ int query(int row) const { return pack == 1 ? row : row / pack; }
    __device__ int key_end_for_rows(int row_end) const {  // keys any row < row_end may see
        return kCausal ? min(seqlen_k, query(row_end - 1) + 1 + seqlen_k - seqlen_q) : seqlen_k;
    }
    // row0 is the tile's first (smallest-query) row: a tile is clean for every row if clean for it.
    __device__ bool tile_is_partial(int row0, int key0, int block_n) const {
        return key0 + block_n > seqlen_k ||
               (kCausal && key0 + block_n - 1 > query(row0) + seqlen_k - seqlen_q);
    }
    __device__ int key_limit(int row) const {  // keys < key_limit are allowed for this row
        return kCausal ? min(seqlen_k, query(row) + 1 + seqlen_k - seqlen_q) : seqlen_k;
    }
};

// Where batch b's queries and keys start and how many there are: the fixed lengths, or the
// varlen offsets (cu_seqlens) when given.
struct SequenceBounds {
    int q_start, k_start, seqlen_q, seqlen_k;
};
__device__ __forceinline__ SequenceBounds sequence_bounds(const DenseParams& p, int b) {
    SequenceBounds s{0, 0, p.seqlen_q, p.seqlen_k};
    if (p.cu_seqlens_q != nullptr) {
        s.q_start = p.cu_seqlens_q[b];
        s.seqlen_q = p.cu_seqlens_q[b + 1] - s.q_start;
        s.k_start = p.cu_seqlens_k[b];
        s.seqlen_k = p.cu_seqlens_k[b + 1] - s.k_start;
    }
    return s;
}

// Copies rows [row0, row0 + kRows) of a [S, D] view into padded shared memory; rows at or
// past row_limit are zero filled. Where it divides evenly a thread owns one column chunk.
template <int kRows, int kD, int kLd, int kThreads, typename T>
__device__ __forceinline__ void load_tile_async(T* smem, const T* base, int64_t row_stride,
                                                int row0, int row_limit, int tid) {
    constexpr int kChunksPerRow = kD / 8;
    if constexpr (kThreads % kChunksPerRow == 0 && kRows % (kThreads / kChunksPerRow) == 0) {
        constexpr int kRowStep = kThreads / kChunksPerRow;
        const int r = tid / kChunksPerRow;
        const int c = (tid % kChunksPerRow) * 8;
        const T* src = base + int64_t(row0 + r) * row_stride + c;
        const int64_t step_stride = int64_t(kRowStep) * row_stride;
        const uint32_t dst = common::smem_addr(smem + r * kLd + c);
#pragma unroll
        for (int i = 0; i < kRows / kRowStep; ++i) {
            const bool valid = row0 + r + i * kRowStep < row_limit;
            common::cp_async_16_zfill(dst + 2 * i * kRowStep * kLd, valid ? src : base, valid);
            src += step_stride;
        }
    } else {  // head dims whose chunk count does not divide the thread count (96)
        constexpr int kChunks = kRows * kChunksPerRow;
#pragma unroll
        for (int i = 0; i < (kChunks + kThreads - 1) / kThreads; ++i) {
            const int idx = tid + i * kThreads;
            if (kChunks % kThreads == 0 || idx < kChunks) {
                const int r = idx / kChunksPerRow;
                const int c = (idx % kChunksPerRow) * 8;
                const bool valid = row0 + r < row_limit;
                const T* src = valid ? base + int64_t(row0 + r) * row_stride + c : base;
                common::cp_async_16_zfill(common::smem_addr(smem + r * kLd + c), src, valid);
            }
        }
    }
}

// Copies query tile rows [row0, row0 + kRows) (packed (query, head) rows when pack > 1) into
// padded shared memory; rows at or past row_limit are zero filled.
template <int kRows, int kD, int kLd, int kThreads, typename T>
__device__ __forceinline__ void load_q_tile_async(T* smem, const T* base, int64_t q_seq,
                                                  int64_t q_head, int pack, int row0,
                                                  int row_limit, int tid) {
    if (pack == 1) {
        load_tile_async<kRows, kD, kLd, kThreads>(smem, base, q_seq, row0, row_limit, tid);
        return;
    }
    constexpr int kChunksPerRow = kD / 8;
    constexpr int kChunks = kRows * kChunksPerRow;
    for (int idx = tid; idx < kChunks; idx += kThreads) {
        const int r = idx / kChunksPerRow;
        const int c = (idx % kChunksPerRow) * 8;
        const int row = row0 + r;
        const bool valid = row < row_limit;
        const T* src = valid ? base + int64_t(row / pack) * q_seq + int64_t(row % pack) * q_head + c : base;
        common::cp_async_16_zfill(common::smem_addr(smem + r * kLd + c), src, valid);
    }
}

// Reduces N values (N a power of two) pairwise: log2(N) dependent steps instead of N. The
// width is a template parameter so every index is a compile-time constant (a halving run-time
// loop left the array in local memory).
template <int W, int N, typename Op>
__device__ __forceinline__ float tree_reduce_step(float (&v)[N], Op op) {
#pragma unroll
    for (int i = 0; i < W; ++i) v[i] = op(v[i], v[i + W]);
    if constexpr (W > 1) return tree_reduce_step<W / 2>(v, op);
    else return v[0];
}

template <int N, typename Op>
__device__ __forceinline__ float tree_reduce(float (&v)[N], Op op) {
    static_assert(N >= 2 && (N & (N - 1)) == 0, "tree_reduce needs a power of two >= 2");
    return tree_reduce_step<N / 2>(v, op);
}

template <typename T, typename Traits, bool kCausal>
__global__ void __launch_bounds__(Traits::kWarps * 32, Traits::kMinBlocks)
    dense_forward_kernel(const __grid_constant__ DenseParams p) {
    using L = DenseLayout<Traits>;
    constexpr int kD = L::kD, kLd = L::kLd, kBM = Traits::kBlockM, kBN = Traits::kBlockN;
    constexpr int kMT = L::kRowTiles, kNT = kBN / 8, kDT = kD / 8, kStages = Traits::kStages;

    extern __shared__ __align__(16) unsigned char smem_raw[];
    T* sQ = reinterpret_cast<T*>(smem_raw);
    T* sK = sQ + L::kQElems;
    T* sV = sK + kStages * L::kKvElems;

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int m_linear = blockIdx.x % p.num_m_blocks;
    const int bh = blockIdx.x / p.num_m_blocks;
    // Causal: the longest query tiles (largest m) are scheduled first.
    const int m_block = kCausal ? p.num_m_blocks - 1 - m_linear : m_linear;
    const int split = blockIdx.y;
    const int pack = p.pack_group;
    const int b = bh / p.grid_heads;
    const int h0 = (bh % p.grid_heads) * pack;  // query head of row offset 0
    const int hk = h0 / p.group;

    const auto [q_start, k_start, seqlen_q, seqlen_k] = sequence_bounds(p, b);
    const int rows_total = seqlen_q * pack;
    const int m0 = m_block * kBM;
    if (m0 >= rows_total) return;

    const T* q_base = static_cast<const T*>(p.q) + b * p.q_batch + int64_t(q_start) * p.q_seq + h0 * p.q_head;
    const T* k_base = static_cast<const T*>(p.k) + b * p.k_batch + int64_t(k_start) * p.k_seq + hk * p.k_head;
    const T* v_base = static_cast<const T*>(p.v) + b * p.v_batch + int64_t(k_start) * p.v_seq + hk * p.v_head;

    const CausalMask<kCausal> mask{seqlen_q, seqlen_k, pack};
    const int key_end = max(0, mask.key_end_for_rows(min(m0 + kBM, rows_total)));
    const int tiles = (key_end + kBN - 1) / kBN;
    const int per_split = (tiles + p.num_splits - 1) / p.num_splits;
    const DenseKeySchedule schedule{min(tiles, split * per_split), min(tiles, (split + 1) * per_split)};

    // Row state: each lane holds rows g and g+8 of each of its warp's 16-row tiles.
    const int g = lane / 4, t = lane % 4;
    const int warp_row0 = warp * kMT * 16;
    const bool warp_active = m0 + warp_row0 < rows_total;  // decode: idle warps skip the math
    float o_acc[kMT][kDT][4];
    common::RowState rows[kMT][2];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
        for (int dt = 0; dt < kDT; ++dt)
#pragma unroll
            for (int e = 0; e < 4; ++e) o_acc[mt][dt][e] = 0.f;
        rows[mt][0] = rows[mt][1] = common::RowState{-INFINITY, 0.f};
    }

    const int steps = schedule.count();
    if (steps > 0) {
        load_q_tile_async<kBM, kD, kLd, L::kThreads>(sQ, q_base, p.q_seq, p.q_head, pack, m0, rows_total, tid);
#pragma unroll
        for (int s = 0; s < kStages - 1; ++s) {
            if (s < steps) {
                const int n0 = schedule.tile(s) * kBN;
                load_tile_async<kBN, kD, kLd, L::kThreads>(sK + s * L::kKvElems, k_base, p.k_seq, n0, seqlen_k, tid);
                load_tile_async<kBN, kD, kLd, L::kThreads>(sV + s * L::kKvElems, v_base, p.v_seq, n0, seqlen_k, tid);
            }
            common::cp_async_commit();
        }
    }

    // Per-lane ldmatrix offsets (elements): A rows of Q, B rows of K, transposed B of V.
    const uint32_t q_lane = common::smem_addr(sQ + (warp_row0 + lane % 16) * kLd + (lane / 16) * 8);
    const int k_lane = ((lane / 16) * 8 + lane % 8) * kLd + ((lane / 8) % 2) * 8;
    const int v_lane = (((lane / 8) % 2) * 8 + lane % 8) * kLd + (lane / 16) * 8;
    const float scale_log2 = p.scale_log2;

    // Tiles are visited partial-first, so the masked steps are a prefix.
    int n_masked = 0;
    while (n_masked < steps && mask.tile_is_partial(m0, schedule.tile(n_masked) * kBN, kBN)) ++n_masked;

    // A plain loop body (not a callable): passing the accumulators by reference would move
    // them to local memory.
    for (int step = 0; step < steps; ++step) {
        common::cp_async_wait<kStages - 2>();
        __syncthreads();
        {
            const int pf = step + kStages - 1;
            if (pf < steps) {
                const int n0 = schedule.tile(pf) * kBN;
                const int st = pf % kStages;
                load_tile_async<kBN, kD, kLd, L::kThreads>(sK + st * L::kKvElems, k_base, p.k_seq, n0, seqlen_k, tid);
                load_tile_async<kBN, kD, kLd, L::kThreads>(sV + st * L::kKvElems, v_base, p.v_seq, n0, seqlen_k, tid);
            }
            common::cp_async_commit();
        }
        if (!warp_active) continue;
        const int stage = step % kStages;
        const uint32_t k_smem = common::smem_addr(sK + stage * L::kKvElems + k_lane);
        const uint32_t v_smem = common::smem_addr(sV + stage * L::kKvElems + v_lane);

        // S = Q K^T
        float s_acc[kMT][kNT][4];
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
            for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
                for (int e = 0; e < 4; ++e) s_acc[mt][nt][e] = 0.f;
#pragma unroll
        for (int kk = 0; kk < kD / 16; ++kk) {
            uint32_t a[kMT][4];
#pragma unroll
            for (int mt = 0; mt < kMT; ++mt)
                common::ldmatrix_x4(a[mt], q_lane + 2 * (mt * 16 * kLd + kk * 16));
#pragma unroll
            for (int np = 0; np < kNT / 2; ++np) {
                uint32_t bk[4];
                common::ldmatrix_x4(bk, k_smem + 2 * (np * 16 * kLd + kk * 16));
#pragma unroll
                for (int mt = 0; mt < kMT; ++mt) {
                    common::mma_m16n8k16<T>(s_acc[mt][2 * np], a[mt], bk[0], bk[1]);
                    common::mma_m16n8k16<T>(s_acc[mt][2 * np + 1], a[mt], bk[2], bk[3]);
                }
            }
        }

        if (step < n_masked) {
            const int n0 = schedule.tile(step) * kBN;
#pragma unroll
            for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
                for (int half = 0; half < 2; ++half) {
                    const int limit = mask.key_limit(m0 + warp_row0 + mt * 16 + g + half * 8) - n0;
#pragma unroll
                    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
                        for (int e = 0; e < 2; ++e)
                            if (nt * 8 + 2 * t + e >= limit) s_acc[mt][nt][2 * half + e] = -INFINITY;
                }
        }

        // Online softmax; P leaves as packed 16-bit pairs (the A operand of P V) so the fp32
        // scores die here.
        uint32_t p_pack[kMT][kNT][2];
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                float mx[kNT];
#pragma unroll
                for (int nt = 0; nt < kNT; ++nt) mx[nt] = fmaxf(s_acc[mt][nt][2 * half], s_acc[mt][nt][2 * half + 1]);
                const float tile_max = common::quad_max(tree_reduce(mx, [](float x, float y) { return fmaxf(x, y); }));
                float max_scaled;
                const float alpha = common::online_softmax_rescale(rows[mt][half], tile_max, scale_log2, max_scaled);
                float sums[kNT];
#pragma unroll
                for (int nt = 0; nt < kNT; ++nt) {
                    const float p0 = common::softmax_prob(s_acc[mt][nt][2 * half], scale_log2, max_scaled);
                    const float p1 = common::softmax_prob(s_acc[mt][nt][2 * half + 1], scale_log2, max_scaled);
                    p_pack[mt][nt][half] = common::pack2<T>(p0, p1);
                    sums[nt] = p0 + p1;
                }
                rows[mt][half].sum_partial += tree_reduce(sums, [](float x, float y) { return x + y; });
#pragma unroll
                for (int dt = 0; dt < kDT; ++dt) {
                    o_acc[mt][dt][2 * half] *= alpha;
                    o_acc[mt][dt][2 * half + 1] *= alpha;
                }
            }
        }

        // O += P V
#pragma unroll
        for (int kk = 0; kk < kBN / 16; ++kk) {
            uint32_t a[kMT][4];
#pragma unroll
            for (int mt = 0; mt < kMT; ++mt) {
                a[mt][0] = p_pack[mt][2 * kk][0];
                a[mt][1] = p_pack[mt][2 * kk][1];
                a[mt][2] = p_pack[mt][2 * kk + 1][0];
                a[mt][3] = p_pack[mt][2 * kk + 1][1];
            }
#pragma unroll
            for (int dp = 0; dp < kDT / 2; ++dp) {
                uint32_t bv[4];
                common::ldmatrix_x4_trans(bv, v_smem + 2 * (kk * 16 * kLd + dp * 16));
#pragma unroll
                for (int mt = 0; mt < kMT; ++mt) {
                    common::mma_m16n8k16<T>(o_acc[mt][2 * dp], a[mt], bv[0], bv[1]);
                    common::mma_m16n8k16<T>(o_acc[mt][2 * dp + 1], a[mt], bv[2], bv[3]);
                }
            }
        }
    }
    common::cp_async_wait<0>();

    // Epilogue: finish the deferred row sums, normalize, write O and the LSE.
    const bool to_partial = p.num_splits > 1;
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int row = m0 + warp_row0 + mt * 16 + g + half * 8;
            const float l = common::quad_sum(rows[mt][half].sum_partial);
            const bool any = l > 0.f;
            const float inv = any ? 1.f / l : 0.f;
            const float lse = any ? rows[mt][half].max_raw * p.scale + logf(l) : -INFINITY;
            if (row >= rows_total) continue;
            const int qi = mask.query(row);
            const int h = h0 + (pack == 1 ? 0 : row - qi * pack);
            if (to_partial) {
                const int64_t prow = (int64_t(split) * p.batch * p.heads_q + int64_t(b) * p.heads_q + h) * p.seqlen_q + qi;
                float* o_row = p.o_partial + prow * kD;
#pragma unroll
                for (int dt = 0; dt < kDT; ++dt)
                    *reinterpret_cast<float2*>(o_row + dt * 8 + 2 * t) =
                        make_float2(o_acc[mt][dt][2 * half] * inv, o_acc[mt][dt][2 * half + 1] * inv);
                if (t == 0) p.lse_partial[prow] = lse;
            } else {
                T* o_row = static_cast<T*>(p.out) + b * p.o_batch + int64_t(q_start + qi) * p.o_seq + h * p.o_head;
#pragma unroll
                for (int dt = 0; dt < kDT; ++dt)
                    *reinterpret_cast<uint32_t*>(o_row + dt * 8 + 2 * t) =
                        common::pack2<T>(o_acc[mt][dt][2 * half] * inv, o_acc[mt][dt][2 * half + 1] * inv);
                if (t == 0 && p.lse != nullptr)
                    p.lse[b * p.lse_batch + h * p.lse_head + int64_t(q_start + qi) * p.lse_seq] = lse;
            }
        }
    }
}

// Merges the split partials of one (batch, head, query row) per warp by their LSEs.
template <typename T, int D>
__global__ void __launch_bounds__(128) dense_combine_kernel(const __grid_constant__ DenseParams p) {
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
                for (int e = 0; e < kVec; ++e)
                    acc[c * kVec + e] += w * src[(c * 32 + lane) * kVec + e];
        }
    }
    T* o_row = static_cast<T*>(p.out) + b * p.o_batch + int64_t(q_start + row) * p.o_seq + h * p.o_head;
#pragma unroll
    for (int c = 0; c < D / (32 * kVec); ++c)
#pragma unroll
        for (int e = 0; e < kVec; ++e)
            o_row[(c * 32 + lane) * kVec + e] = common::from_float<T>(acc[c * kVec + e]);
    if (lane == 0 && p.lse != nullptr)
        p.lse[b * p.lse_batch + h * p.lse_head + int64_t(q_start + row) * p.lse_seq] = lse;
}

}  // namespace sa::cuda::fast
