// The dense forward main loop with its two GEMMs on Hopper's warpgroup tensor cores (wgmma,
// sm_90a). Same schedule, mask and online softmax as dense_kernel.cuh; what changes:
//  - a block is two warpgroups (8 warps); warpgroup w owns query rows [64w, 64w + 64) of the
//    128-row tile, so each K/V tile read from shared memory feeds 64 rows per instruction;
//  - S = Q K^T reads both operands straight from shared memory (no ldmatrix), O += P V takes P
//    from registers (the accumulator layout of S is the A-fragment layout, as with mma.sync);
//  - Q, K and V live in shared memory in the 128-byte swizzled layout of common/wgmma.cuh,
//    written by cp.async through a kStages-deep ring.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>

#include "cuda/common/mma.cuh"
#include "cuda/common/softmax.cuh"
#include "cuda/common/wgmma.cuh"
#include "cuda/fast/dense_kernel.cuh"
#include "cuda/fast/dense_params.h"

namespace sa::cuda::fast {

template <int D>
struct Sm90TileTraits {
    static constexpr int kHeadDim = D, kBlockM = 128, kBlockN = 128, kStages = 2;
    static constexpr int kWarpgroups = kBlockM / 64, kThreads = kWarpgroups * 128;
    static constexpr int kQBytes = kBlockM * D * 2, kKvBytes = kBlockN * D * 2;
    // +1024: the swizzle pattern repeats every 1024 bytes and tiles start on that boundary.
    static constexpr size_t kSmemBytes = 1024 + size_t(kQBytes) + size_t(2 * kStages) * kKvBytes;
    static_assert(D % 64 == 0, "the swizzled layout holds 64-column blocks");
    static_assert(kSmemBytes <= 232448, "shared memory per block on sm_90");
};

// Copies rows [row0, row0 + kRows) of a [S, D] view into a swizzled tile; rows at or past
// row_limit are zero filled. Thread tid owns one 16-byte column chunk of every kStep-th row;
// kStep is a multiple of 8, so its swizzled chunk position is the same in every row it copies.
template <int kRows, int kD, int kThreads, typename T>
__device__ __forceinline__ void load_tile_sw128(uint32_t smem, const T* base, int64_t row_stride,
                                                int row0, int row_limit, int tid) {
    constexpr int kChunksPerRow = kD / 8;
    constexpr int kStep = kThreads / kChunksPerRow;
    static_assert(kThreads % kChunksPerRow == 0 && kStep % 8 == 0 && kRows % kStep == 0, "copy split");
    const int r = tid / kChunksPerRow;
    const int c = tid % kChunksPerRow;
    const uint32_t dst = smem + common::sw128_offset<kRows>(r, c * 8);
    const T* src = base + int64_t(row0 + r) * row_stride + c * 8;
    const int64_t step_stride = int64_t(kStep) * row_stride;
#pragma unroll
    for (int i = 0; i < kRows / kStep; ++i) {
        const bool valid = row0 + r + i * kStep < row_limit;
        common::cp_async_16_zfill(dst + uint32_t(i * kStep * 128), valid ? src : base, valid);
        src += step_stride;
    }
}

template <typename T, int D, bool kCausal>
__global__ void __launch_bounds__(Sm90TileTraits<D>::kThreads, 1)
    dense_forward_sm90_kernel(const __grid_constant__ DenseParams p) {
#ifdef SA_WGMMA_ENABLED
    using Tr = Sm90TileTraits<D>;
    constexpr int kBM = Tr::kBlockM, kBN = Tr::kBlockN, kStages = Tr::kStages, kThreads = Tr::kThreads;
    constexpr int kNT = kBN / 8, kDT = D / 8;

    extern __shared__ __align__(16) unsigned char smem_raw[];
    const uint32_t smem_base = (common::smem_addr(smem_raw) + 1023u) & ~1023u;
    const uint32_t sQ = smem_base;
    const uint32_t sK = sQ + Tr::kQBytes;
    const uint32_t sV = sK + kStages * Tr::kKvBytes;

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int wg = warp / 4;
    const int m_linear = blockIdx.x % p.num_m_blocks;
    const int bh = blockIdx.x / p.num_m_blocks;
    const int m_block = kCausal ? p.num_m_blocks - 1 - m_linear : m_linear;  // longest first
    const int b = bh / p.heads_q;
    const int h = bh % p.heads_q;
    const int hk = h / p.group;

    int q_start = 0, k_start = 0, seqlen_q = p.seqlen_q, seqlen_k = p.seqlen_k;
    if (p.cu_seqlens_q != nullptr) {
        q_start = p.cu_seqlens_q[b];
        seqlen_q = p.cu_seqlens_q[b + 1] - q_start;
        k_start = p.cu_seqlens_k[b];
        seqlen_k = p.cu_seqlens_k[b + 1] - k_start;
    }
    const int m0 = m_block * kBM;
    if (m0 >= seqlen_q) return;

    const T* q_base = static_cast<const T*>(p.q) + b * p.q_batch + int64_t(q_start) * p.q_seq + h * p.q_head;
    const T* k_base = static_cast<const T*>(p.k) + b * p.k_batch + int64_t(k_start) * p.k_seq + hk * p.k_head;
    const T* v_base = static_cast<const T*>(p.v) + b * p.v_batch + int64_t(k_start) * p.v_seq + hk * p.v_head;

    const CausalMask<kCausal> mask{seqlen_q, seqlen_k, 1};
    const int key_end = max(0, mask.key_end_for_rows(min(m0 + kBM, seqlen_q)));
    const DenseKeySchedule schedule{0, (key_end + kBN - 1) / kBN};
    const int steps = schedule.count();

    // Row state: each lane holds rows g and g+8 of its warp's 16-row slice of the warpgroup's 64.
    const int g = lane / 4, t = lane % 4;
    const int row_base = m0 + wg * 64 + (warp % 4) * 16 + g;
    float o_acc[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; ++i) o_acc[i] = 0.f;
    common::RowState rows[2] = {{-INFINITY, 0.f}, {-INFINITY, 0.f}};

    // One tile ahead: tile j+1 is copied while tile j is computed. Its ring slot last held
    // tile j+1-kStages, whose last reader (P V of that tile) has finished by then.
    // No wgmma sits behind a data-dependent branch (the compiler would serialize them all):
    // warpgroups past the last query row compute on zero rows and write nothing.
    if (steps > 0) {
        load_tile_sw128<kBM, D, kThreads>(sQ, q_base, p.q_seq, m0, seqlen_q, tid);
        const int n0 = schedule.tile(0) * kBN;
        load_tile_sw128<kBN, D, kThreads>(sK, k_base, p.k_seq, n0, seqlen_k, tid);
        load_tile_sw128<kBN, D, kThreads>(sV, v_base, p.v_seq, n0, seqlen_k, tid);
        common::cp_async_commit();
    }

    // Descriptors: Q (this warpgroup's 64 rows) and K read along the head dim; V across keys.
    const uint64_t q_desc = common::sw128_desc(sQ + wg * 64 * 128, 16, 1024);
    const uint64_t k_desc0 = common::sw128_desc(sK, 16, 1024);
    const uint64_t v_desc0 = common::sw128_desc(sV, kBN * 128, 1024);
    const float scale_log2 = p.scale_log2;

    int n_masked = 0;  // tiles are visited partial-first, so the masked steps are a prefix
    while (n_masked < steps && mask.tile_is_partial(m0, schedule.tile(n_masked) * kBN, kBN)) ++n_masked;

    for (int step = 0; step < steps; ++step) {
        common::cp_async_wait<0>();
        common::fence_proxy_async_smem();
        __syncthreads();  // tile `step` is visible to all; the slot refilled next is free
        if (step + 1 < steps) {
            const int n0 = schedule.tile(step + 1) * kBN;
            const int st = (step + 1) % kStages;
            load_tile_sw128<kBN, D, kThreads>(sK + st * Tr::kKvBytes, k_base, p.k_seq, n0, seqlen_k, tid);
            load_tile_sw128<kBN, D, kThreads>(sV + st * Tr::kKvBytes, v_base, p.v_seq, n0, seqlen_k, tid);
        }
        common::cp_async_commit();
        const int stage = step % kStages;
        const uint64_t k_desc = common::desc_advance(k_desc0, stage * Tr::kKvBytes);

        // S = Q K^T over the head dim, 16 columns per instruction.
        float s_acc[kBN / 2];
        common::wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            const uint32_t col = (kk % 4) * 32;  // byte offset of the 16 columns in their block
            common::wgmma_ss<kBN, T>(s_acc, common::desc_advance(q_desc, (kk / 4) * kBM * 128 + col),
                                     common::desc_advance(k_desc, (kk / 4) * kBN * 128 + col), kk > 0);
        }
        common::wgmma_commit();
        common::wgmma_wait<0>();
        common::fence_registers(s_acc);

        if (step < n_masked) {
            const int n0 = schedule.tile(step) * kBN;
#pragma unroll
            for (int half = 0; half < 2; ++half) {
                const int limit = mask.key_limit(row_base + half * 8) - n0;
#pragma unroll
                for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
                    for (int e = 0; e < 2; ++e)
                        if (nt * 8 + 2 * t + e >= limit) s_acc[nt * 4 + 2 * half + e] = -INFINITY;
            }
        }

        // Online softmax; P leaves packed as the A operand of P V.
        uint32_t p_pack[kNT][2];
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            float mx[kNT];
#pragma unroll
            for (int nt = 0; nt < kNT; ++nt) mx[nt] = fmaxf(s_acc[nt * 4 + 2 * half], s_acc[nt * 4 + 2 * half + 1]);
            const float tile_max = common::quad_max(tree_reduce(mx, [](float x, float y) { return fmaxf(x, y); }));
            float max_scaled;
            const float alpha = common::online_softmax_rescale(rows[half], tile_max, scale_log2, max_scaled);
            float sums[kNT];
#pragma unroll
            for (int nt = 0; nt < kNT; ++nt) {
                const float p0 = common::softmax_prob(s_acc[nt * 4 + 2 * half], scale_log2, max_scaled);
                const float p1 = common::softmax_prob(s_acc[nt * 4 + 2 * half + 1], scale_log2, max_scaled);
                p_pack[nt][half] = common::pack2<T>(p0, p1);
                sums[nt] = p0 + p1;
            }
            rows[half].sum_partial += tree_reduce(sums, [](float x, float y) { return x + y; });
#pragma unroll
            for (int dt = 0; dt < kDT; ++dt) {
                o_acc[dt * 4 + 2 * half] *= alpha;
                o_acc[dt * 4 + 2 * half + 1] *= alpha;
            }
        }

        // O += P V over the keys, 16 keys per instruction.
        const uint64_t v_desc = common::desc_advance(v_desc0, stage * Tr::kKvBytes);
        common::wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBN / 16; ++kk) {
            const uint32_t a[4] = {p_pack[2 * kk][0], p_pack[2 * kk][1], p_pack[2 * kk + 1][0], p_pack[2 * kk + 1][1]};
            common::wgmma_rs_tb<D, T>(o_acc, a, common::desc_advance(v_desc, kk * 16 * 128), 1);
        }
        common::wgmma_commit();
        // Waited for here: deferring it past the next tile's S (so the two run back to back)
        // measured no faster, as the compiler then serializes every wgmma (warning C7515).
        common::wgmma_wait<0>();
        common::fence_registers(o_acc);
    }
    common::cp_async_wait<0>();

    // Epilogue: finish the deferred row sums, normalize, write O and the LSE.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int row = row_base + half * 8;
        const float l = common::quad_sum(rows[half].sum_partial);
        const bool any = l > 0.f;
        const float inv = any ? 1.f / l : 0.f;
        const float lse = any ? rows[half].max_raw * p.scale + logf(l) : -INFINITY;
        if (row >= seqlen_q) continue;
        T* o_row = static_cast<T*>(p.out) + b * p.o_batch + int64_t(q_start + row) * p.o_seq + h * p.o_head;
#pragma unroll
        for (int dt = 0; dt < kDT; ++dt)
            *reinterpret_cast<uint32_t*>(o_row + dt * 8 + 2 * t) =
                common::pack2<T>(o_acc[dt * 4 + 2 * half] * inv, o_acc[dt * 4 + 2 * half + 1] * inv);
        if (t == 0 && p.lse != nullptr)
            p.lse[b * p.lse_batch + h * p.lse_head + int64_t(q_start + row) * p.lse_seq] = lse;
    }
#else
    __trap();  // launched only on sm_90a builds (see fast_dense.cpp)
#endif
}

}  // namespace sa::cuda::fast
