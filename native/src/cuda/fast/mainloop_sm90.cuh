// The forward main loop on Hopper's warpgroup tensor cores (wgmma, sm_90a), written once over
// a family (families.cuh), as the mma.sync loop is. Warp specialized:
//  - warpgroup 0 is the producer: it copies Q, then each K/V tile into a ring (3 slots; 2 at
//    head dim 256) with cp.async (row addresses from the family: runs, gathered through
//    fetched tokens, or boxes),
//    and signals each slot's mbarrier when its copies land; it gives registers up (setmaxnreg);
//  - warpgroups 1 and 2 are the consumers: consumer c owns query rows [64c, 64c + 64) of the
//    128-row tile, waits on a slot's full barrier, and arrives on its empty barrier once both
//    GEMMs that read it are done; no block-wide barrier runs in the steady state. With split
//    release (two-slot rings) K and V of a slot have barriers of their own: K is released
//    once S has read it, V once P V has;
//  - S = Q K^T reads both operands from shared memory, O += P V takes P from registers (the
//    accumulator layout of S is the A-fragment layout) and V across rows, all in the 128-byte
//    swizzled layout of common/wgmma.cuh;
//  - within a consumer, step j issues S of tile j and P V of tile j-1 and runs the softmax of
//    tile j while that P V is on the tensor cores; between consumers, named barriers make them
//    take turns issuing (ping-pong), so one's softmax runs under the other's GEMMs.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>

#include "cuda/common/mma.cuh"
#include "cuda/common/pipeline.cuh"
#include "cuda/common/softmax.cuh"
#include "cuda/common/wgmma.cuh"
#include "cuda/fast/epilogue.cuh"
#include "cuda/fast/families.cuh"
#include "cuda/fast/mainloop_sm80.cuh"
#include "cuda/fast/params.h"
#include "cuda/fast/tile_load.cuh"
#include "cuda/fast/tile_scheduler.cuh"

namespace sa::cuda::fast {

#ifndef SA_SM90_PINGPONG
#define SA_SM90_PINGPONG 0  // 1: consumers alternate their GEMM issue (bench/NOTES.md: slower here)
#endif

#ifndef SA_SM90_PRODUCER_REGS
#define SA_SM90_PRODUCER_REGS 72
#endif
#ifndef SA_SM90_CONSUMER_REGS
#define SA_SM90_CONSUMER_REGS 216
#endif
// Head dim 256: O alone takes 128 registers per consumer thread.
#ifndef SA_SM90_D256_PRODUCER_REGS
#define SA_SM90_D256_PRODUCER_REGS 56
#endif
#ifndef SA_SM90_D256_CONSUMER_REGS
#define SA_SM90_D256_CONSUMER_REGS 224
#endif

// 1: K and V of a ring slot are copied and released separately at every head dim (the two-slot
// ring of head dim 256 always does; at 64 and 128 it made key-permuted block-sparse calls
// 14-18% slower, bench/NOTES.md v10).
#ifndef SA_SM90_SPLIT_KV
#define SA_SM90_SPLIT_KV 0
#endif

// 1: a boxed key tile's row tokens (neighborhood families) reach the threads that copy them by
// warp shuffles (WarpTokens in tile_load.cuh); 0, and always for tokens fetched from an index
// array: through the slot's key positions in shared memory behind a barrier of the producer's
// warps.
#ifndef SA_SM90_GATHER_SHUFFLE
#define SA_SM90_GATHER_SHUFFLE 1
#endif

// Named barriers of the loop (0 is __syncthreads).
constexpr int kProducerBarrier = 1;  // the producer warpgroup: fetched tokens stored (unshuffled copies)
constexpr int kPingPongBarrier = 2;  // 2 + c: consumer c may issue its GEMMs

template <int D, typename Select>
struct Sm90Layout {
    // Three ring slots: the producer copies tile j+1 (and j+2 once it is free) while the
    // consumers run tile j's S and tile j-1's P V. Head dim 256 takes 64-key tiles in two
    // slots, which is what the shared memory holds beside its 64 KB Q tile; there step j holds
    // both slots (S of tile j, P V of tile j-1), so a slot is released in halves: K of tile j-1
    // once S of tile j-1 is done (K of tile j+1 is copied under step j), V once P V is.
    static constexpr bool kWide = D > 128;
    static constexpr int kHeadDim = D, kBlockM = 128, kBlockN = kWide ? 64 : 128, kStages = kWide ? 2 : 3;
    static constexpr bool kSplitRelease = kWide || SA_SM90_SPLIT_KV != 0;
    static constexpr int kBarriers = 1 + (kSplitRelease ? 4 : 2) * kStages;
    static constexpr int kConsumers = kBlockM / 64, kConsumerWarps = 4 * kConsumers;
    static constexpr int kProducerThreads = 128, kThreads = kProducerThreads + kConsumers * 128;
    // setmaxnreg: every warp starts with the launch's share of the register file (65536 /
    // kThreads, in steps of 8); the consumers can grow only by what the producer gives up.
    static constexpr int kLaunchRegs = 65536 / kThreads / 8 * 8;
    static constexpr int kProducerRegs = kWide ? SA_SM90_D256_PRODUCER_REGS : SA_SM90_PRODUCER_REGS;
    static constexpr int kConsumerRegs = kWide ? SA_SM90_D256_CONSUMER_REGS : SA_SM90_CONSUMER_REGS;
    static_assert((kLaunchRegs - kProducerRegs) * kProducerThreads >= (kConsumerRegs - kLaunchRegs) * kConsumers * 128,
                  "the consumers' registers come from the producer");
    static constexpr bool kPingPong = SA_SM90_PINGPONG != 0;
    static constexpr int kQBytes = kBlockM * D * 2, kKvBytes = kBlockN * D * 2;
    static constexpr bool kPositions = Select::template At<kBlockM, kBlockN>::kKeyPositions;
    static constexpr int kPositionStride = kTokenSlotInts<kBlockN>;  // ints per ring slot
    // Every ring slot holds its tile's key tokens: the producer computes one row's token per
    // thread; the copy reads them here (or takes them by warp shuffle, WarpTokens, where no
    // consumer reads them), and so do the mask and the tile's token bounds.
    static constexpr size_t kPositionBytes = sizeof(int) * kStages * kPositionStride;
    // +1024: the swizzle pattern repeats every 1024 bytes and tiles start on that boundary.
    static constexpr size_t kSmemBytes = 1024 + size_t(kQBytes) + size_t(2 * kStages) * kKvBytes + kPositionBytes;
    static_assert(D % 64 == 0, "the swizzled layout holds 64-column blocks");
    static_assert(kSmemBytes + 8 * kBarriers <= 232448, "shared memory per block on sm_90");
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
    constexpr int kBM = Lay::kBlockM, kBN = Lay::kBlockN, kStages = Lay::kStages;
    constexpr int kNT = kBN / 8, kDT = D / 8, kLoad = Lay::kProducerThreads;
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
    // Barriers: Q landed; slot s holds its tile (full) / was read by both consumers (empty);
    // with split release, K and V of the slot each have a full and an empty barrier (the _v
    // barriers are the K ones otherwise).
    constexpr bool kSplit = Lay::kSplitRelease;
    __shared__ __align__(8) uint64_t bars[Lay::kBarriers];
    const uint32_t bar_q = common::smem_addr(&bars[0]);
    auto bar_full = [&](int st) { return bar_q + 8u * uint32_t(1 + st); };
    auto bar_empty = [&](int st) { return bar_q + 8u * uint32_t(1 + kStages + st); };
    auto bar_full_v = [&](int st) { return kSplit ? bar_q + 8u * uint32_t(1 + 2 * kStages + st) : bar_full(st); };
    auto bar_empty_v = [&](int st) { return kSplit ? bar_q + 8u * uint32_t(1 + 3 * kStages + st) : bar_empty(st); };

    const int tid = threadIdx.x, lane = tid % 32;
    const int wg = common::warpgroup_index();
    const WorkTile work = work_tile(p);
    const Family fam(p, work.m_block, work.b, work.head);
    if (fam.empty()) return;
    const int b = work.b;
    const StepRange range = split_steps(fam.steps(), work.split, p.num_splits);
    const int steps = range.end - range.begin;

    if (tid == 0) {
        // The producer's cp.async arrivals, then its ordinary arrivals (they publish the key
        // positions it stored); one arrival per consumer thread (each releases its own reads of
        // the slot's key positions).
        common::mbarrier_init(bar_q, kLoad);
        for (int st = 0; st < kStages; ++st) {
            common::mbarrier_init(bar_full(st), 2 * kLoad);
            common::mbarrier_init(bar_empty(st), Lay::kConsumers * 128);
            if constexpr (kSplit) {
                common::mbarrier_init(bar_full_v(st), 2 * kLoad);
                common::mbarrier_init(bar_empty_v(st), Lay::kConsumers * 128);
            }
        }
    }
    __syncthreads();  // the only block-wide barrier: the mbarriers are initialized

    // A tile with no key to visit runs one fully masked step on a zero-filled tile, so every
    // wgmma below is unconditional: the compiler serializes all of them when one sits behind
    // a branch it cannot prove uniform. Likewise rows that do not exist compute on zeros and
    // are not stored.
    const bool none = steps == 0;
    const int runs = max(steps, 1);
    auto tile_at = [&](int j) { return none ? KeyTile{} : fam.key_tile(range.begin + j); };
    auto token_of = [&](const KeyTile& kt) { return [&fam, &kt, none](int c) { return none ? -1 : fam.key_token(kt, c); }; };
    // Families whose key rows come through an index array read each tile's tokens once, one
    // row per producer thread, a step ahead of the tile's copy.
    const bool gathered = Family::kFetchAhead && !fam.keys_are_runs();

    if (wg == 0) {
        // Producer warpgroup: Q once, then K/V tile j into ring slot j % kStages as soon as
        // both consumers released the tile that held it.
        common::setmaxnreg_dec<Lay::kProducerRegs>();
        const TileBases<T> bases(p, b, fam);
        if (Family::kRuns && fam.queries_are_runs())
            load_rows_run<kBM, D, kLoad, Swizzled128Layout<kBM>>(sQ, bases.q, p.q_seq, fam.query_run(), tid);
        else
            load_rows<kBM, D, kLoad, Swizzled128Layout<kBM>>(sQ, bases.q, [&](int r) { return fam.q_offset(r); }, tid);
        common::cp_async_mbarrier_arrive(bar_q);
        // Tiles whose rows are not one run: thread r computes (or, gathered, reads) the token of
        // row r of tile j + 1 and the list entry of tile j + 2 while tile j is waited for and
        // copied, so no copy waits on device memory or recomputes a row's token.
        const bool by_token = !(Family::kRuns && fam.keys_are_runs());
        using Warp = WarpTokens<kBN, D, kLoad>;
        // Tokens fetched from an index array (block-sparse) keep the shared-memory hand-off:
        // compute-sanitizer racecheck reported write-after-write hazards on the shuffled copy
        // of the head-dim-64 block-sparse kernel (bench/NOTES.md v11); boxed neighborhood
        // tokens shuffle, racecheck clean. Shuffled tokens are not stored: only families whose
        // consumers read no key positions take them.
        constexpr bool kShuffled =
            SA_SM90_GATHER_SHUFFLE != 0 && Warp::kApplies && !Family::kFetchAhead && !Lay::kPositions;
        const int fetch_row = kShuffled ? Warp::row(tid) : tid;  // the row whose token this thread reads
        KeyTile kt = tile_at(0);
        KeyTile kt_ahead = runs > 1 ? tile_at(1) : kt;
        int token_ahead = by_token ? token_of(kt)(fetch_row) : -1;
        for (int j = 0; j < runs; ++j) {
            const int st = j % kStages;
            const int token = token_ahead;
            const KeyTile kt_now = kt;
            if (j + 1 < runs) {
                if (by_token) token_ahead = token_of(kt_ahead)(fetch_row);
                kt = kt_ahead;
                if (j + 2 < runs) kt_ahead = tile_at(j + 2);
            }
            // The slot (or its K or V half) is free once both consumers released tile
            // j - kStages from it; the copy of that tile completed before they could read it,
            // and this thread observes that completion too (the full barrier's phase for
            // j - kStages, already past) before it copies into the same bytes again.
            const uint32_t phase = uint32_t((j / kStages - 1) & 1);
            auto wait_free = [&](uint32_t empty, uint32_t full) {
                if (j >= kStages) {
                    common::mbarrier_wait(empty, phase);
                    common::mbarrier_wait(full, phase);
                }
            };
            const uint32_t sk = sK + st * Lay::kKvBytes, sv = sV + st * Lay::kKvBytes;
            int* positions = sPos + st * kPosStride;
            using Rows = Swizzled128Layout<kBN>;
            const RowRun run = by_token || none ? RowRun{0, 1, 0} : fam.key_run(kt_now);
            // K (with V unless split), then V alone when split.
            auto copy = [&](bool with_k, bool with_v) {
                if (!by_token)
                    load_kv_run<kBN, D, kLoad, Rows, Lay::kPositions>(sk, sv, positions, bases.k, bases.v, p.k_seq,
                                                                       p.v_seq, run, tid, with_k, with_v);
                else if constexpr (kShuffled)
                    load_kv_shuffled<kBN, D, kLoad, Rows>(sk, sv, token, bases.k, bases.v, p.k_seq, p.v_seq, tid,
                                                          with_k, with_v);
                else
                    load_kv_fetched<kBN, D, kLoad, Rows>(sk, sv, positions, bases.k, bases.v, p.k_seq, p.v_seq, tid,
                                                         with_k, with_v);
            };
            wait_free(bar_empty(st), bar_full(st));
            if (!kShuffled && by_token) {
                store_tokens<kBN>(positions, token, tid);
                common::named_barrier_sync(kProducerBarrier, kLoad);  // every row's token is stored
            }
            copy(true, !kSplit);
            common::cp_async_mbarrier_arrive(bar_full(st));
            common::mbarrier_arrive(bar_full(st));
            if constexpr (kSplit) {
                wait_free(bar_empty_v(st), bar_full_v(st));
                copy(false, true);
                common::cp_async_mbarrier_arrive(bar_full_v(st));
                common::mbarrier_arrive(bar_full_v(st));
            }
        }
        common::cp_async_commit();
        common::cp_async_wait<0>();  // no copy outlives its thread
        return;
    }

    // Consumer warpgroups: c owns query rows [64c, 64c + 64) of the tile.
    common::setmaxnreg_inc<Lay::kConsumerRegs>();
    const int c = wg - 1, warp = (tid - kLoad) / 32;
    // Ping-pong: the two consumers take turns issuing their GEMMs, so one's softmax runs
    // under the other's GEMMs. Consumer c waits on barrier kPingPongBarrier + c before
    // issuing and then lets the other one go; consumer 1 lets consumer 0 start.
    auto turn_wait = [&] {
        if constexpr (Lay::kPingPong) common::named_barrier_sync(kPingPongBarrier + c, 2 * 128);
    };
    auto turn_pass = [&] {
        if constexpr (Lay::kPingPong) common::named_barrier_arrive(kPingPongBarrier + (1 - c), 2 * 128);
    };
    if (c == 1) turn_pass();

    // Row state: each lane holds tile rows row0 and row0 + 8 of its warp's 16-row slice.
    const int g = lane / 4, t = lane % 4;
    const int row0 = c * 64 + (warp % 4) * 16 + g;
    float o_acc[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; ++i) o_acc[i] = 0.f;
    common::RowState rows[2] = {{-INFINITY, 0.f}, {-INFINITY, 0.f}};

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
    // K of tile j (with its V unless split) before S; V of tile j before P V (split only).
    auto wait_k = [&](int j) {
        common::mbarrier_wait(bar_full(j % kStages), uint32_t((j / kStages) & 1));
        common::fence_proxy_async_smem();  // the copies, seen by the tensor cores
    };
    auto wait_v = [&](int j) {
        if constexpr (kSplit) {
            common::mbarrier_wait(bar_full_v(j % kStages), uint32_t((j / kStages) & 1));
            common::fence_proxy_async_smem();
        }
    };
    // K of tile j once S and the mask read it (split only); V (the whole slot unless split)
    // once P V did.
    auto release_k = [&](int j) {
        if constexpr (kSplit) common::mbarrier_arrive(bar_empty(j % kStages));
    };
    auto release_v = [&](int j) { common::mbarrier_arrive(bar_empty_v(j % kStages)); };

    // Descriptors: Q (this warpgroup's 64 rows) and K read along the head dim; V across keys.
    const uint64_t q_desc = common::sw128_desc(sQ + c * 64 * 128, 16, 1024);
    const uint64_t k_desc0 = common::sw128_desc(sK, 16, 1024);
    const uint64_t v_desc0 = common::sw128_desc(sV, kBN * 128, 1024);
    const float scale_log2 = p.scale_log2;

    float s_acc[kBN / 2];
    uint32_t p_pack[kNT][2];  // P of the last softmaxed tile, the A operand of its P V
    float alpha[2];

    // k_cur: tile j (its mask); k_next: tile j + 1, found while the GEMMs of step j run.
    KeyTile k_cur = tile_at(0);
    KeyTile k_next = runs > 1 ? tile_at(1) : k_cur;

    // Step 0: S, softmax, P.
    common::mbarrier_wait(bar_q, 0);
    wait_k(0);
    turn_wait();
    common::wgmma_fence();
    issue_qk<T, D, kBM, kBN>(s_acc, q_desc, k_desc0);
    common::wgmma_commit();
    if (!(c == 1 && runs == 1)) turn_pass();
    common::wgmma_wait<0>();
    common::fence_registers(s_acc);
    if (none || needs_mask(k_cur, 0)) mask_tile<kNT>(s_acc, fam, k_cur, sPos, none, row0, t);
    release_k(0);
    softmax_tile<kNT>(s_acc, rows, alpha, scale_log2);
    pack_p<T, kNT>(p_pack, s_acc);
    k_cur = k_next;

    // Step j: issue S of tile j, rescale O, issue P V of tile j-1; the softmax of tile j (the
    // exp2 work) runs while that P V is on the tensor cores. Every wgmma is waited for inside
    // its step, and no register of an in-flight wgmma is written in its shadow: P is re-packed
    // and O rescaled only after the wait.
    for (int step = 1; step < runs; ++step) {
        wait_k(step);
        turn_wait();
        common::wgmma_fence();
        issue_qk<T, D, kBM, kBN>(s_acc, q_desc, common::desc_advance(k_desc0, (step % kStages) * Lay::kKvBytes));
        common::wgmma_commit();
        wait_v(step - 1);
        scale_rows<D>(o_acc, alpha);
        common::wgmma_fence();
        issue_pv<T, D, kBN>(o_acc, p_pack, common::desc_advance(v_desc0, ((step - 1) % kStages) * Lay::kKvBytes));
        common::wgmma_commit();
        if (!(c == 1 && step == runs - 1)) turn_pass();  // consumer 0 waits for no further turn
        if (step + 1 < runs) k_next = tile_at(step + 1);
        common::wgmma_wait<1>();  // S of this tile is done
        common::fence_registers(s_acc);
        if (needs_mask(k_cur, step)) mask_tile<kNT>(s_acc, fam, k_cur, sPos + (step % kStages) * kPosStride, false, row0, t);
        release_k(step);
        softmax_tile<kNT>(s_acc, rows, alpha, scale_log2);
        common::wgmma_wait<0>();  // P V of the previous tile is done: its slot (or V half) is free
        common::fence_registers(o_acc);
        release_v(step - 1);
        pack_p<T, kNT>(p_pack, s_acc);
        k_cur = k_next;
    }

    // The last tile's P V.
    wait_v(runs - 1);
    scale_rows<D>(o_acc, alpha);
    common::wgmma_fence();
    issue_pv<T, D, kBN>(o_acc, p_pack, common::desc_advance(v_desc0, ((runs - 1) % kStages) * Lay::kKvBytes));
    common::wgmma_commit();
    common::wgmma_wait<0>();
    common::fence_registers(o_acc);

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
