// The forward main loop on Hopper's warpgroup tensor cores (wgmma, sm_90a), written once over
// a family (families.cuh), as the mma.sync loop is. What differs from mainloop_sm80.cuh:
//  - a block is two warpgroups (8 warps); warpgroup w owns query rows [64w, 64w + 64) of the
//    128-row tile, so each K/V tile read from shared memory feeds 64 rows per instruction;
//  - S = Q K^T reads both operands from shared memory, O += P V takes P from registers (the
//    accumulator layout of S is the A-fragment layout) and V across rows;
//  - Q, K and V live in the 128-byte swizzled layout of common/wgmma.cuh, written by cp.async
//    through a 3-deep ring;
//  - step j copies tile j+1, issues S of tile j and P V of tile j-1, and runs the softmax of
//    tile j while that P V is on the tensor cores.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>

#include "cuda/common/mma.cuh"
#include "cuda/common/softmax.cuh"
#include "cuda/common/wgmma.cuh"
#include "cuda/fast/epilogue.cuh"
#include "cuda/fast/families.cuh"
#include "cuda/fast/mainloop_sm80.cuh"
#include "cuda/fast/params.h"
#include "cuda/fast/tile_load.cuh"
#include "cuda/fast/tile_scheduler.cuh"

namespace sa::cuda::fast {

template <int D, typename Select>
struct Sm90Layout {
    // Three ring slots: tile j+1 is copied while tile j's S and tile j-1's P V run.
    static constexpr int kHeadDim = D, kBlockM = 128, kBlockN = 128, kStages = 3;
    static constexpr int kWarpgroups = kBlockM / 64, kThreads = kWarpgroups * 128;
    static constexpr int kQBytes = kBlockM * D * 2, kKvBytes = kBlockN * D * 2;
    static constexpr bool kPositions = Select::template At<kBlockM, kBlockN>::kKeyPositions;
    static constexpr int kPositionStride = kTokenSlotInts<kBlockN>;  // ints per ring slot
    static constexpr size_t kPositionBytes = kPositions ? sizeof(int) * kStages * kPositionStride : 0;
    // +1024: the swizzle pattern repeats every 1024 bytes and tiles start on that boundary.
    static constexpr size_t kSmemBytes = 1024 + size_t(kQBytes) + size_t(2 * kStages) * kKvBytes + kPositionBytes;
    static_assert(D % 64 == 0, "the swizzled layout holds 64-column blocks");
    static_assert(kSmemBytes <= 232448, "shared memory per block on sm_90");
};

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

// Sets the disallowed scores of a partial tile to -inf (all of them when `none`). Lane
// layout: rows row0 (half 0) and row0 + 8 (half 1), columns nt*8 + 2t + {0, 1}.
template <int kNT, typename Family>
__device__ __forceinline__ void mask_tile(float (&s)[kNT * 4], const Family& fam, const typename Family::KeyTile& kt,
                                          const int* positions, bool none, int row0, int t) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const auto row_mask = fam.row_mask(row0 + half * 8);
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
            for (int e = 0; e < 2; ++e)
                if (none || !fam.allowed(row_mask, kt, nt * 8 + 2 * t + e, positions)) s[nt * 4 + 2 * half + e] = -INFINITY;
    }
}

// Exponentiates one tile of scores in place; updates the running row state and returns in
// alpha the factor the rows of O must be scaled by before this tile's P V.
template <int kNT>
__device__ __forceinline__ void softmax_tile(float (&s)[kNT * 4], common::RowState (&rows)[2], float (&alpha)[2],
                                             float scale_log2) {
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

template <typename T, int D, typename Select>
__global__ void __launch_bounds__(Sm90Layout<D, Select>::kThreads, 1)
    fwd_sm90_kernel(const __grid_constant__ FwdParams p) {
#ifdef SA_WGMMA_ENABLED
    using Lay = Sm90Layout<D, Select>;
    constexpr int kBM = Lay::kBlockM, kBN = Lay::kBlockN, kStages = Lay::kStages, kThreads = Lay::kThreads;
    constexpr int kNT = kBN / 8, kDT = D / 8;
    using Family = typename Select::template At<kBM, kBN>;
    using KeyTile = typename Family::KeyTile;

    extern __shared__ __align__(16) unsigned char smem_raw[];
    const uint32_t raw = common::smem_addr(smem_raw);
    const uint32_t smem_base = (raw + 1023u) & ~1023u;
    const uint32_t sQ = smem_base;
    const uint32_t sK = sQ + Lay::kQBytes;
    const uint32_t sV = sK + kStages * Lay::kKvBytes;
    int* sPos = reinterpret_cast<int*>(smem_raw + (sV + kStages * Lay::kKvBytes - raw));  // [kStages][kPositionStride]
    constexpr int kPosStride = Lay::kPositionStride;

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int wg = warp / 4;
    const WorkTile work = work_tile(p);
    const Family fam(p, work.m_block, work.b, work.head);
    if (fam.empty()) return;
    const int b = work.b;

    const TileBases<T> bases(p, b, fam);
    const T* q_base = bases.q;
    const T* k_base = bases.k;
    const T* v_base = bases.v;
    const StepRange range = split_steps(fam.steps(), work.split, p.num_splits);
    const int steps = range.end - range.begin;

    // Row state: each lane holds tile rows row0 and row0 + 8 of its warp's 16-row slice.
    const int g = lane / 4, t = lane % 4;
    const int row0 = wg * 64 + (warp % 4) * 16 + g;
    float o_acc[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; ++i) o_acc[i] = 0.f;
    common::RowState rows[2] = {{-INFINITY, 0.f}, {-INFINITY, 0.f}};

    // A tile with no key to visit runs one fully masked step on a zero-filled tile, so every
    // wgmma below is unconditional: the compiler serializes all of them when one sits behind
    // a branch it cannot prove uniform. Likewise rows that do not exist compute on zeros and
    // are not stored.
    const bool none = steps == 0;
    const int runs = max(steps, 1);
    auto tile_at = [&](int j) { return none ? KeyTile{} : fam.key_tile(range.begin + j); };
    auto token_of = [&](const KeyTile& kt) { return [&fam, &kt, none](int c) { return none ? -1 : fam.key_token(kt, c); }; };
    // Families whose key rows come through an index array read the tokens of tile j into its
    // slot of the key positions two steps ahead (while the tensor cores run), so the copy of
    // tile j reads them from shared memory and never waits on device memory.
    const bool gathered = Family::kFetchAhead && !fam.keys_are_runs();
    auto fetch = [&](const KeyTile& kt, int j) {
        if constexpr (Family::kFetchAhead) {
            static_assert(Lay::kPositions, "fetched tokens live in the key positions");
            if (gathered) fetch_tokens<kBN>(sPos + (j % kStages) * kPosStride, token_of(kt), tid);
        }
    };
    // A partial tile skips the mask when its fetched tokens show every key present and allowed
    // for every query of the tile (the family decides from the least and greatest token).
    auto needs_mask = [&](const KeyTile& kt, int j) {
        if (!fam.partial(kt)) return false;
        if constexpr (Family::kFetchAhead) {
            if (gathered) {
                int lo, hi;
                tile_token_bounds<kBN>(sPos + (j % kStages) * kPosStride, lo, hi);
                return !fam.tokens_clear(lo, hi);
            }
        }
        return true;
    };
    auto load_kv_tile = [&](const KeyTile& kt, int j) {
        const int st = j % kStages;
        const uint32_t sk = sK + st * Lay::kKvBytes, sv = sV + st * Lay::kKvBytes;
        int* positions = sPos + st * kPosStride;
        using Rows = Swizzled128Layout<kBN>;
        if (Family::kRuns && fam.keys_are_runs()) {
            const RowRun run = none ? RowRun{0, 1, 0} : fam.key_run(kt);
            load_kv_run<kBN, D, kThreads, Rows, Lay::kPositions>(sk, sv, positions, k_base, v_base, p.k_seq, p.v_seq,
                                                                  run, tid);
        } else if constexpr (Family::kFetchAhead) {
            load_kv_fetched<kBN, D, kThreads, Rows>(sk, sv, positions, k_base, v_base, p.k_seq, p.v_seq, tid);
        } else {
            load_kv<kBN, D, kThreads, Rows, Lay::kPositions>(sk, sv, positions, k_base, v_base, p.k_seq, p.v_seq,
                                                            token_of(kt), tid);
        }
    };
    // k_cur: tile j (its mask); k_load: tile j + 1 (copied at the top of step j).
    KeyTile k_cur = tile_at(0);
    if (Family::kRuns && fam.queries_are_runs())
        load_rows_run<kBM, D, kThreads, Swizzled128Layout<kBM>>(sQ, q_base, p.q_seq, fam.query_run(), tid);
    else
        load_rows<kBM, D, kThreads, Swizzled128Layout<kBM>>(sQ, q_base, [&](int r) { return fam.q_offset(r); }, tid);
    fetch(k_cur, 0);
    if (gathered) __syncthreads();  // tile 0's tokens, before its copy
    load_kv_tile(k_cur, 0);
    common::cp_async_commit();
    KeyTile k_load = k_cur;
    if (runs > 1) {
        k_load = tile_at(1);
        fetch(k_load, 1);
    }

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
    if (runs > 1) load_kv_tile(k_load, 1);
    common::cp_async_commit();
    common::wgmma_fence();
    issue_qk<T, D, kBM, kBN>(s_acc, q_desc, k_desc0);
    common::wgmma_commit();
    KeyTile k_after = k_load;  // tile j + 2, found while the GEMMs of step j run
    if (runs > 2) {
        k_after = tile_at(2);
        fetch(k_after, 2);
    }
    common::wgmma_wait<0>();
    common::fence_registers(s_acc);
    if (none || needs_mask(k_cur, 0)) mask_tile<kNT>(s_acc, fam, k_cur, sPos, none, row0, t);
    softmax_tile<kNT>(s_acc, rows, alpha, scale_log2);
    pack_p<T, kNT>(p_pack, s_acc);
    k_cur = k_load;
    k_load = k_after;

    // Step j: issue S of tile j, rescale O, issue P V of tile j-1; the softmax of tile j (the
    // exp2 work) runs while that P V is on the tensor cores. Every wgmma is waited for inside
    // its step, and no register of an in-flight wgmma is written in its shadow: P is re-packed
    // and O rescaled only after the wait.
    for (int step = 1; step < runs; ++step) {
        common::cp_async_wait<0>();
        common::fence_proxy_async_smem();
        __syncthreads();  // tile `step` is visible to all; slot (step+1) % 3 (tile step-2) is free
        if (step + 1 < runs) load_kv_tile(k_load, step + 1);
        common::cp_async_commit();
        common::wgmma_fence();
        issue_qk<T, D, kBM, kBN>(s_acc, q_desc, common::desc_advance(k_desc0, (step % kStages) * Lay::kKvBytes));
        common::wgmma_commit();
        scale_rows<D>(o_acc, alpha);
        common::wgmma_fence();
        issue_pv<T, D, kBN>(o_acc, p_pack, common::desc_advance(v_desc0, ((step - 1) % kStages) * Lay::kKvBytes));
        common::wgmma_commit();
        k_after = k_load;
        if (step + 2 < runs) {
            k_after = tile_at(step + 2);
            fetch(k_after, step + 2);  // slot of tile step - 1, whose mask ran last step
        }
        common::wgmma_wait<1>();  // S of this tile is done
        common::fence_registers(s_acc);
        if (needs_mask(k_cur, step)) mask_tile<kNT>(s_acc, fam, k_cur, sPos + (step % kStages) * kPosStride, false, row0, t);
        softmax_tile<kNT>(s_acc, rows, alpha, scale_log2);
        common::wgmma_wait<0>();  // P V of the previous tile is done
        common::fence_registers(o_acc);
        pack_p<T, kNT>(p_pack, s_acc);
        k_cur = k_load;
        k_load = k_after;
    }

    // The last tile's P V.
    scale_rows<D>(o_acc, alpha);
    common::wgmma_fence();
    issue_pv<T, D, kBN>(o_acc, p_pack, common::desc_advance(v_desc0, ((runs - 1) % kStages) * Lay::kKvBytes));
    common::wgmma_commit();
    common::wgmma_wait<0>();
    common::fence_registers(o_acc);
    common::cp_async_wait<0>();

    // Epilogue: finish the deferred row sums, normalize, write O and the LSE.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const RowResult res = finish_row(rows[half], p.scale);
        const OutRow target = fam.out_row(row0 + half * 8);
        const RowWriter<T, D> out(p, b, fam.h0 + target.head, fam.q_start, target.token, work.split);
        if (!out.active()) continue;
#pragma unroll
        for (int dt = 0; dt < kDT; ++dt)
            out.pair(dt * 8 + 2 * t, o_acc[dt * 4 + 2 * half] * res.inv, o_acc[dt * 4 + 2 * half + 1] * res.inv);
        if (t == 0) out.write_lse(res.lse);
    }
#else
    __trap();  // launched only on sm_90a builds (see plan.cpp)
#endif
}

}  // namespace sa::cuda::fast
