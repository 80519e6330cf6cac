// The portable forward main loop on mma.sync (sm_80 and later), written once over a family
// (families.cuh: schedule, mask and row-address policies). Each warp owns kRowTiles x 16
// query rows of the block's query tile; K/V tiles stream through a 2-deep cp.async ring in
// padded shared memory. Per step: S = Q K^T, the mask where the tile is partial, online
// softmax, O += P V.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>

#include "cuda/common/mma.cuh"
#include "cuda/common/softmax.cuh"
#include "cuda/fast/epilogue.cuh"
#include "cuda/fast/families.cuh"
#include "cuda/fast/params.h"
#include "cuda/fast/tile_load.cuh"
#include "cuda/fast/tile_scheduler.cuh"

namespace sa::cuda::fast {

// Tile configuration per head dim: kSmallM is the short-query (decode) variant; Sm80Tile64
// is the 64 x 64 tile for 64-row query or key blocks.
template <int D, int BM, int BN, int WARPS, int MINB>
struct Sm80Traits {
    static constexpr int kHeadDim = D, kBlockM = BM, kBlockN = BN, kWarps = WARPS, kStages = 2, kMinBlocks = MINB;
};
template <int D, bool kSmallM>
struct Sm80DenseTraits;
template <> struct Sm80DenseTraits<32, false> : Sm80Traits<32, 128, 128, 4, 2> {};
template <> struct Sm80DenseTraits<64, false> : Sm80Traits<64, 128, 128, 4, 2> {};
template <> struct Sm80DenseTraits<96, false> : Sm80Traits<96, 128, 64, 4, 2> {};
template <> struct Sm80DenseTraits<128, false> : Sm80Traits<128, 128, 64, 4, 2> {};
template <> struct Sm80DenseTraits<256, false> : Sm80Traits<256, 128, 64, 8, 1> {};
template <> struct Sm80DenseTraits<32, true> : Sm80Traits<32, 64, 128, 4, 3> {};
template <> struct Sm80DenseTraits<64, true> : Sm80Traits<64, 64, 128, 4, 2> {};
template <> struct Sm80DenseTraits<96, true> : Sm80Traits<96, 64, 64, 4, 2> {};
template <> struct Sm80DenseTraits<128, true> : Sm80Traits<128, 64, 64, 4, 2> {};
template <> struct Sm80DenseTraits<256, true> : Sm80Traits<256, 64, 64, 4, 1> {};
template <int D>
struct Sm80Tile64Traits : Sm80Traits<D, 64, 64, 4, D == 256 ? 1 : 2> {};

template <typename Traits, typename Select>
struct Sm80Layout {
    static constexpr int kD = Traits::kHeadDim;
    static constexpr int kLd = kD + 8;  // +16 bytes per row: ldmatrix rows hit distinct banks
    static constexpr int kThreads = Traits::kWarps * 32;
    static constexpr int kRowTiles = Traits::kBlockM / (16 * Traits::kWarps);
    static constexpr int kQElems = Traits::kBlockM * kLd;
    static constexpr int kKvElems = Traits::kBlockN * kLd;
    static constexpr bool kPositions = Select::template At<Traits::kBlockM, Traits::kBlockN>::kKeyPositions;
    static constexpr size_t kPositionBytes = kPositions ? sizeof(int) * Traits::kStages * Traits::kBlockN : 0;
    static constexpr size_t kSmemBytes =
        sizeof(uint16_t) * (size_t(kQElems) + size_t(2 * Traits::kStages) * kKvElems) + kPositionBytes;
    static_assert(Traits::kBlockM % (16 * Traits::kWarps) == 0, "rows per warp");
    static_assert(Traits::kBlockN % 16 == 0 && kD % 16 == 0, "mma tiles");
    static_assert(Traits::kStages == 2, "the loop carries one key tile ahead");
};

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

template <typename T, typename Traits, typename Select>
__global__ void __launch_bounds__(Traits::kWarps * 32, Traits::kMinBlocks)
    fwd_sm80_kernel(const __grid_constant__ FwdParams p) {
    using L = Sm80Layout<Traits, Select>;
    constexpr int kD = L::kD, kLd = L::kLd, kBM = Traits::kBlockM, kBN = Traits::kBlockN;
    constexpr int kMT = L::kRowTiles, kNT = kBN / 8, kDT = kD / 8, kStages = Traits::kStages;
    using Family = typename Select::template At<kBM, kBN>;
    using PaddedRows = PaddedLayout<kLd>;

    extern __shared__ __align__(16) unsigned char smem_raw[];
    T* sQ = reinterpret_cast<T*>(smem_raw);
    T* sK = sQ + L::kQElems;
    T* sV = sK + kStages * L::kKvElems;
    int* sPos = reinterpret_cast<int*>(sV + kStages * L::kKvElems);  // [kStages][kBN] when kPositions

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
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

    auto load_key_tile = [&](const typename Family::KeyTile& kt, int stage) {
        const uint32_t sk = common::smem_addr(sK + stage * L::kKvElems), sv = common::smem_addr(sV + stage * L::kKvElems);
        if (Family::kRuns && fam.keys_are_runs())
            load_kv_run<kBN, kD, L::kThreads, PaddedRows, L::kPositions>(sk, sv, sPos + stage * kBN, k_base, v_base,
                                                                         p.k_seq, p.v_seq, fam.key_run(kt), tid);
        else
            load_kv<kBN, kD, L::kThreads, PaddedRows, L::kPositions>(sk, sv, sPos + stage * kBN, k_base, v_base, p.k_seq,
                                                                     p.v_seq, [&](int c) { return fam.key_token(kt, c); }, tid);
    };

    // Row state: each lane holds rows g and g+8 of each of its warp's 16-row tiles.
    const int g = lane / 4, t = lane % 4;
    const int warp_row0 = warp * kMT * 16;
    const bool warp_active = fam.rows_from(warp_row0);  // decode: warps past the last row skip the math
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

    typename Family::KeyTile cur{};
    if (steps > 0) {
        if (Family::kRuns && fam.queries_are_runs())
            load_rows_run<kBM, kD, L::kThreads, PaddedRows>(common::smem_addr(sQ), q_base, p.q_seq, fam.query_run(), tid);
        else
            load_rows<kBM, kD, L::kThreads, PaddedRows>(common::smem_addr(sQ), q_base,
                                                       [&](int r) { return fam.q_offset(r); }, tid);
        cur = fam.key_tile(range.begin);
        load_key_tile(cur, 0);
    }
    common::cp_async_commit();

    // Per-lane ldmatrix offsets (elements): A rows of Q, B rows of K, transposed B of V.
    const uint32_t q_lane = common::smem_addr(sQ + (warp_row0 + lane % 16) * kLd + (lane / 16) * 8);
    const int k_lane = ((lane / 16) * 8 + lane % 8) * kLd + ((lane / 8) % 2) * 8;
    const int v_lane = (((lane / 8) % 2) * 8 + lane % 8) * kLd + (lane / 16) * 8;
    const float scale_log2 = p.scale_log2;

    // A plain loop body (not a callable): passing the accumulators by reference would move
    // them to local memory.
    for (int step = 0; step < steps; ++step) {
        common::cp_async_wait<0>();
        __syncthreads();  // tile `step` visible to all; the other slot's tile was consumed
        typename Family::KeyTile next = cur;
        if (step + 1 < steps) {
            next = fam.key_tile(range.begin + step + 1);
            load_key_tile(next, (step + 1) % kStages);
        }
        common::cp_async_commit();
        if (warp_active) {
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
                for (int mt = 0; mt < kMT; ++mt) common::ldmatrix_x4(a[mt], q_lane + 2 * (mt * 16 * kLd + kk * 16));
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

            if (fam.partial(cur)) {
                const int* positions = sPos + stage * kBN;
#pragma unroll
                for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
                    for (int half = 0; half < 2; ++half) {
                        const auto row_mask = fam.row_mask(warp_row0 + mt * 16 + g + half * 8);
#pragma unroll
                        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
                            for (int e = 0; e < 2; ++e)
                                if (!fam.allowed(row_mask, cur, nt * 8 + 2 * t + e, positions))
                                    s_acc[mt][nt][2 * half + e] = -INFINITY;
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
        cur = next;
    }
    common::cp_async_wait<0>();

    // Epilogue: finish the deferred row sums, normalize, write O and the LSE.
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const RowResult res = finish_row(rows[mt][half], p.scale);
            const OutRow target = fam.out_row(warp_row0 + mt * 16 + g + half * 8);
            const RowWriter<T, kD> out(p, b, fam.h0 + target.head, fam.q_start, target.token, work.split);
            if (!out.active()) continue;
#pragma unroll
            for (int dt = 0; dt < kDT; ++dt)
                out.pair(dt * 8 + 2 * t, o_acc[mt][dt][2 * half] * res.inv, o_acc[mt][dt][2 * half + 1] * res.inv);
            if (t == 0) out.write_lse(res.lse);
        }
    }
}

}  // namespace sa::cuda::fast
