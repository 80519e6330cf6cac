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
    // Three ring slots: tile j+1 is copied while tile j's S and tile j-1's P V run.
    static constexpr int kHeadDim = D, kBlockM = 128, kBlockN = 128, kStages = 3;
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

// S = Q K^T for one key tile: D/16 instructions, both operands from shared memory.
template <typename T, int D, int kBM, int kBN>
__device__ __forceinline__ void issue_qk(float (&s)[kBN / 2], uint64_t q_desc, uint64_t k_desc) {
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
        const uint32_t col = (kk % 4) * 32;  // byte offset of the 16 columns in their 64-column block
        common::wgmma_ss<kBN, T>(s, common::desc_advance(q_desc, (kk / 4) * kBM * 128 + col),
                                 common::desc_advance(k_desc, (kk / 4) * kBN * 128 + col), kk > 0);
    }
}

// O += P V for one key tile: kBN/16 instructions, P from registers, V across rows.
template <typename T, int D, int kBN>
__device__ __forceinline__ void issue_pv(float (&o)[D / 2], const uint32_t (&p)[kBN / 8][2], uint64_t v_desc) {
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
        const uint32_t a[4] = {p[2 * kk][0], p[2 * kk][1], p[2 * kk + 1][0], p[2 * kk + 1][1]};
        common::wgmma_rs_tb<D, T>(o, a, common::desc_advance(v_desc, kk * 16 * 128), 1);
    }
}

// Masks (when asked) and exponentiates one tile of scores in place; updates the running row
// state and returns in alpha the factor the rows of O must be scaled by before this tile's
// P V. Lane layout: rows g (half 0) and g + 8 (half 1), columns nt*8 + 2t + {0, 1}.
template <int kNT, typename Mask>
__device__ __forceinline__ void softmax_tile(float (&s)[kNT * 4], common::RowState (&rows)[2], float (&alpha)[2],
                                             bool masked, const Mask& mask, int row_base, int n0, int t,
                                             float scale_log2) {
    if (masked) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int limit = mask.key_limit(row_base + half * 8) - n0;
#pragma unroll
            for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
                for (int e = 0; e < 2; ++e)
                    if (nt * 8 + 2 * t + e >= limit) s[nt * 4 + 2 * half + e] = -INFINITY;
        }
    }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        float mx[kNT];
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) mx[nt] = fmaxf(s[nt * 4 + 2 * half], s[nt * 4 + 2 * half + 1]);
        const float tile_max = common::quad_max(tree_reduce(mx, [](float x, float y) { return fmaxf(x, y); }));
        float max_scaled;
        alpha[half] = common::online_softmax_rescale(rows[half], tile_max, scale_log2, max_scaled);
        float sums[kNT];
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) {
            s[nt * 4 + 2 * half] = common::softmax_prob(s[nt * 4 + 2 * half], scale_log2, max_scaled);
            s[nt * 4 + 2 * half + 1] = common::softmax_prob(s[nt * 4 + 2 * half + 1], scale_log2, max_scaled);
            sums[nt] = s[nt * 4 + 2 * half] + s[nt * 4 + 2 * half + 1];
        }
        rows[half].sum_partial += tree_reduce(sums, [](float x, float y) { return x + y; });
    }
}

// Probabilities -> the packed 16-bit A operand of P V.
template <typename T, int kNT>
__device__ __forceinline__ void pack_p(uint32_t (&p)[kNT][2], const float (&s)[kNT * 4]) {
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
        p[nt][0] = common::pack2<T>(s[nt * 4], s[nt * 4 + 1]);
        p[nt][1] = common::pack2<T>(s[nt * 4 + 2], s[nt * 4 + 3]);
    }
}

template <int D>
__device__ __forceinline__ void scale_rows(float (&o)[D / 2], const float (&alpha)[2]) {
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            o[dt * 4 + 2 * half] *= alpha[half];
            o[dt * 4 + 2 * half + 1] *= alpha[half];
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

    const auto [q_start, k_start, seqlen_q, seqlen_k] = sequence_bounds(p, b);
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

    // A block with no visible key (S_k = 0, or causal rows before the first key) runs one
    // fully masked step on a zero-filled tile, so every wgmma below is unconditional: the
    // compiler serializes all of them when one sits behind a branch it cannot prove uniform.
    // Likewise warpgroups past the last query row compute on zero rows and write nothing.
    const int runs = max(steps, 1);
    const int n_limit = steps > 0 ? seqlen_k : 0;
    int n_masked = steps > 0 ? 0 : 1;  // tiles are visited partial-first: masked steps are a prefix
    while (n_masked < steps && mask.tile_is_partial(m0, schedule.tile(n_masked) * kBN, kBN)) ++n_masked;
    auto tile_n0 = [&](int j) { return steps > 0 ? schedule.tile(j) * kBN : 0; };

    // One tile ahead: tile j+1 is copied into slot (j+1) % 3 while S of tile j and P V of tile
    // j-1 run; that slot last held tile j-2, whose P V finished in step j-1.
    auto load_kv = [&](int j) {
        const int st = j % kStages;
        load_tile_sw128<kBN, D, kThreads>(sK + st * Tr::kKvBytes, k_base, p.k_seq, tile_n0(j), n_limit, tid);
        load_tile_sw128<kBN, D, kThreads>(sV + st * Tr::kKvBytes, v_base, p.v_seq, tile_n0(j), n_limit, tid);
    };
    load_tile_sw128<kBM, D, kThreads>(sQ, q_base, p.q_seq, m0, seqlen_q, tid);
    load_kv(0);
    common::cp_async_commit();

    // Descriptors: Q (this warpgroup's 64 rows) and K read along the head dim; V across keys.
    const uint64_t q_desc = common::sw128_desc(sQ + wg * 64 * 128, 16, 1024);
    const uint64_t k_desc0 = common::sw128_desc(sK, 16, 1024);
    const uint64_t v_desc0 = common::sw128_desc(sV, kBN * 128, 1024);
    const float scale_log2 = p.scale_log2;

    float s_acc[kBN / 2];
    uint32_t p_pack[kNT][2];  // P of the last softmaxed tile, the A operand of its P V
    float alpha[2];

    // Step 0: S, softmax, P.
    common::cp_async_wait<0>();
    common::fence_proxy_async_smem();
    __syncthreads();
    if (runs > 1) load_kv(1);
    common::cp_async_commit();
    common::wgmma_fence();
    issue_qk<T, D, kBM, kBN>(s_acc, q_desc, k_desc0);
    common::wgmma_commit();
    common::wgmma_wait<0>();
    common::fence_registers(s_acc);
    softmax_tile<kNT>(s_acc, rows, alpha, n_masked > 0, mask, row_base, tile_n0(0), t, scale_log2);
    pack_p<T, kNT>(p_pack, s_acc);

    // Step j: issue S of tile j, rescale O, issue P V of tile j-1; the softmax of tile j (the
    // exp2 work) runs while that P V is on the tensor cores. Every wgmma is waited for inside
    // its step, and no register of an in-flight wgmma is written in its shadow: P is re-packed
    // and O rescaled only after the wait.
    for (int step = 1; step < runs; ++step) {
        common::cp_async_wait<0>();
        common::fence_proxy_async_smem();
        __syncthreads();  // tile `step` is visible to all; slot (step+1) % 3 is free
        if (step + 1 < runs) load_kv(step + 1);
        common::cp_async_commit();

        common::wgmma_fence();
        issue_qk<T, D, kBM, kBN>(s_acc, q_desc, common::desc_advance(k_desc0, (step % kStages) * Tr::kKvBytes));
        common::wgmma_commit();
        scale_rows<D>(o_acc, alpha);
        common::wgmma_fence();
        issue_pv<T, D, kBN>(o_acc, p_pack, common::desc_advance(v_desc0, ((step - 1) % kStages) * Tr::kKvBytes));
        common::wgmma_commit();
        common::wgmma_wait<1>();  // S of this tile is done
        common::fence_registers(s_acc);
        softmax_tile<kNT>(s_acc, rows, alpha, step < n_masked, mask, row_base, tile_n0(step), t, scale_log2);
        common::wgmma_wait<0>();  // P V of the previous tile is done
        common::fence_registers(o_acc);
        pack_p<T, kNT>(p_pack, s_acc);
    }

    // The last tile's P V.
    scale_rows<D>(o_acc, alpha);
    common::wgmma_fence();
    issue_pv<T, D, kBN>(o_acc, p_pack, common::desc_advance(v_desc0, ((runs - 1) % kStages) * Tr::kKvBytes));
    common::wgmma_commit();
    common::wgmma_wait<0>();
    common::fence_registers(o_acc);
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
