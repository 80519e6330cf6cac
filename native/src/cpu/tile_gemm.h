// The matrix micro-kernel of the CPU backend: C[M][N] (+)= A[M][K] * B[K][N] as register-blocked
// outer products. A block of kRowBlock rows by kColVecs vectors of accumulators stays in
// registers over the whole K loop (6 x 16 floats on AVX2+FMA, 6 x 64 on AVX-512, 4 x 8 on the
// baseline); each step broadcasts one A element per row and loads kColVecs vectors of B. M is
// any size (smaller blocks take the remainder rows), N a multiple of kLanes. Operand policies say
// where A and B live, so tensors are read in place (row pointers) and no tile is transposed.
#pragma once
#include <algorithm>
#include <cstdint>
#include "simd.h"

namespace sa {
namespace cpu {
namespace SA_CPU_ISA {

// Accumulator block: as many rows as the register file holds with kColVecs vectors each, plus
// the B vectors and one broadcast (16 registers on SSE2/AVX2, 32 on AVX-512).
constexpr int kRowBlock = kLanes == 16 ? 6 : kLanes == 8 ? 6 : 4;
constexpr int kColVecs = kLanes == 16 ? 4 : 2;
constexpr int kColBlock = kColVecs * kLanes;

// A(i, p) = rows[i][p]: one pointer per row (tensor rows gathered in place).
struct RowPointerA {
    const float* const* rows;
    const float* row(int64_t i) const { return rows[i]; }
    int64_t step_stride() const { return 1; }
};

// A(i, p) = data[i * ld + p]: rows packed with a stride.
struct StridedA {
    const float* data;
    int64_t ld;
    const float* row(int64_t i) const { return data + i * ld; }
    int64_t step_stride() const { return 1; }
};

// A(i, p) = data[p * ld + i]: A stored transposed (probabilities kept as [key][query]).
struct TransposedA {
    const float* data;
    int64_t ld;
    const float* row(int64_t i) const { return data + i; }
    int64_t step_stride() const { return ld; }
};

// B(p, j) = data[p * ld + j].
struct StridedB {
    const float* data;
    int64_t ld;
    const float* row(int64_t p) const { return data + p * ld; }
};

// B(p, j) = rows[p][j].
struct RowPointerB {
    const float* const* rows;
    const float* row(int64_t p) const { return rows[p]; }
};

// One MR x (NV * kLanes) block of C over the whole K. With row_scale, C rows are scaled by it
// before accumulating (the online-softmax rescale, fused into the load). With col_max, the
// column maxima of the block are folded into col_max[j..] (the softmax's running max, taken
// while the scores are still in registers).
template <int MR, int NV, bool Accumulate, class A, class B>
inline void micro_tile(float* __restrict c, int64_t ldc, const float* row_scale, const A& a,
                       const B& b, int64_t i, int64_t j, int64_t k, float* col_max = nullptr) {
    VecF acc[MR][NV];
    for (int r = 0; r < MR; ++r) {
        const VecF s = splat(Accumulate && row_scale ? row_scale[i + r] : 1.0f);
        for (int v = 0; v < NV; ++v)
            acc[r][v] = Accumulate ? load(c + (i + r) * ldc + j + v * kLanes) * s : splat(0.0f);
    }
    const float* arow[MR];
    for (int r = 0; r < MR; ++r) arow[r] = a.row(i + r);
    const int64_t as = a.step_stride();
    for (int64_t p = 0; p < k; ++p) {
        const float* brow = b.row(p) + j;
        VecF bv[NV];
        for (int v = 0; v < NV; ++v) bv[v] = load(brow + v * kLanes);
        for (int r = 0; r < MR; ++r) {
            const VecF x = splat(arow[r][p * as]);
            for (int v = 0; v < NV; ++v) acc[r][v] = fmadd(x, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) store(c + (i + r) * ldc + j + v * kLanes, acc[r][v]);
    if (col_max) {
        for (int v = 0; v < NV; ++v) {
            VecF mx = acc[0][v];
            for (int r = 1; r < MR; ++r) mx = vmax(mx, acc[r][v]);
            store(col_max + j + v * kLanes, vmax(load(col_max + j + v * kLanes), mx));
        }
    }
}

// The rows of one column block: full row blocks, then one block of the remaining rows.
template <int NV, bool Accumulate, class A, class B>
inline void column_block(float* c, int64_t ldc, const float* row_scale, const A& a, const B& b,
                         int64_t m, int64_t j, int64_t k, float* col_max = nullptr) {
    int64_t i = 0;
    for (; i + kRowBlock <= m; i += kRowBlock)
        micro_tile<kRowBlock, NV, Accumulate>(c, ldc, row_scale, a, b, i, j, k, col_max);
    switch (m - i) {
#define SA_CPU_REMAINDER(R) \
    case R: if constexpr (R < kRowBlock) micro_tile<R, NV, Accumulate>(c, ldc, row_scale, a, b, i, j, k, col_max); break;
        SA_CPU_REMAINDER(1)
        SA_CPU_REMAINDER(2)
        SA_CPU_REMAINDER(3)
        SA_CPU_REMAINDER(4)
        SA_CPU_REMAINDER(5)
        SA_CPU_REMAINDER(6)
        SA_CPU_REMAINDER(7)
#undef SA_CPU_REMAINDER
        default: break;
    }
}

// Few rows (decode): wide column blocks keep enough independent accumulators in flight.
template <bool Accumulate, class A, class B>
inline void few_rows(float* c, int64_t ldc, const float* row_scale, const A& a, const B& b,
                     int64_t m, int64_t n, int64_t k) {
    int64_t j = 0;
    if (m == 1) {
        for (; j + 8 * kLanes <= n; j += 8 * kLanes) micro_tile<1, 8, Accumulate>(c, ldc, row_scale, a, b, 0, j, k);
        for (; j + 4 * kLanes <= n; j += 4 * kLanes) micro_tile<1, 4, Accumulate>(c, ldc, row_scale, a, b, 0, j, k);
    } else {
        for (; j + 4 * kLanes <= n; j += 4 * kLanes) micro_tile<2, 4, Accumulate>(c, ldc, row_scale, a, b, 0, j, k);
    }
    for (; j + 2 * kLanes <= n; j += 2 * kLanes) column_block<2, Accumulate>(c, ldc, row_scale, a, b, m, j, k);
    for (; j < n; j += kLanes) column_block<1, Accumulate>(c, ldc, row_scale, a, b, m, j, k);
}

// One key tile for R (one or two) queries, fused: per chunk of up to kLanes keys, the scores
// as dot products along the head dim (a query per lane would leave the other lanes idle), the
// chunk's probabilities a vector at a time (online softmax: running max m and sum l per query,
// log2 units), then O = O * alpha + P V with the rescale folded into the accumulator load.
// q, o: R rows of dp floats (a multiple of kLanes); key and value rows dp floats each. mask
// (optional): mask[j * ld_mask + r] != 0 where query r may see key j.
template <int R>
inline void few_query_tile(float* o, float* m, float* l, const float* q, const float* const* krows,
                           const float* const* vrows, int32_t n, int64_t dp, const uint8_t* mask,
                           int64_t ld_mask) {
    const float neg_inf = -__builtin_huge_valf();
    constexpr int kOutVecs = 8 / R;         // accumulator vectors per query in the P V loop
    for (int32_t c = 0; c < n; c += kLanes) {
        const int32_t cn = n - c < kLanes ? n - c : kLanes;
        const float* const* kr = krows + c;
        const float* const* vr = vrows + c;
        // Scores: dot products of four keys at a time, reduced across lanes together
        // (sum4_per_block, blocks_to_lanes) so that lane j of sv[r] is key c + j. Keys past
        // the chunk's end reuse its last row and get -inf below.
        VecF sv[R];
        {
            VecF blocks[R][kLanes / 4];
            for (int g = 0; g < kLanes / 4; ++g) {
                const float* k4[4];
                for (int i = 0; i < 4; ++i) k4[i] = kr[std::min(4 * g + i, cn - 1)];
                VecF acc[R][4];
                for (int r = 0; r < R; ++r)
                    for (int i = 0; i < 4; ++i) acc[r][i] = splat(0.0f);
                if (4 * g < cn) {
                    for (int64_t d = 0; d < dp; d += kLanes) {
                        VecF qv[R];
                        for (int r = 0; r < R; ++r) qv[r] = load(q + r * dp + d);
                        for (int i = 0; i < 4; ++i) {
                            const VecF kv = load(k4[i] + d);
                            for (int r = 0; r < R; ++r) acc[r][i] = fmadd(kv, qv[r], acc[r][i]);
                        }
                    }
                }
                for (int r = 0; r < R; ++r) blocks[r][g] = sum4_per_block(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
            }
            for (int r = 0; r < R; ++r) sv[r] = blocks_to_lanes(blocks[r]);
        }
        alignas(64) float s[R][kLanes];
        for (int r = 0; r < R; ++r) {
            store(s[r], sv[r]);
            int32_t j = cn;
            for (; j < kLanes; ++j) s[r][j] = neg_inf;
            if (mask)
                for (j = 0; j < cn; ++j) s[r][j] = mask[(c + j) * ld_mask + r] ? s[r][j] : neg_inf;
        }
        float alpha[R];
        for (int r = 0; r < R; ++r) {
            const VecF x = load(s[r]);
            const float m_new = std::max(m[r], horizontal_max(x));
            const float m_use = m_new == neg_inf ? 0.0f : m_new;  // nothing allowed yet
            const VecF p = exp2_nonpositive(x - splat(m_use));
            store(s[r], p);
            alpha[r] = exp2_nonpositive(m[r] - m_use);
            l[r] = l[r] * alpha[r] + horizontal_sum(p);
            m[r] = m_new;
        }
        int64_t d = 0;
        int32_t j;
        for (; d + kOutVecs * kLanes <= dp; d += kOutVecs * kLanes) {
            VecF acc[R][kOutVecs];
            for (int r = 0; r < R; ++r) {
                const VecF a = splat(alpha[r]);
                for (int v = 0; v < kOutVecs; ++v) acc[r][v] = load(o + r * dp + d + v * kLanes) * a;
            }
            for (j = 0; j < cn; ++j) {
                const float* vrow = vr[j] + d;
                VecF pv[R];
                for (int r = 0; r < R; ++r) pv[r] = splat(s[r][j]);
                for (int v = 0; v < kOutVecs; ++v) {
                    const VecF x = load(vrow + v * kLanes);
                    for (int r = 0; r < R; ++r) acc[r][v] = fmadd(pv[r], x, acc[r][v]);
                }
            }
            for (int r = 0; r < R; ++r)
                for (int v = 0; v < kOutVecs; ++v) store(o + r * dp + d + v * kLanes, acc[r][v]);
        }
        for (; d < dp; d += kLanes) {
            VecF acc[R];
            for (int r = 0; r < R; ++r) acc[r] = load(o + r * dp + d) * splat(alpha[r]);
            for (j = 0; j < cn; ++j) {
                const VecF x = load(vr[j] + d);
                for (int r = 0; r < R; ++r) acc[r] = fmadd(splat(s[r][j]), x, acc[r]);
            }
            for (int r = 0; r < R; ++r) store(o + r * dp + d, acc[r]);
        }
    }
}

// col_max (optional, only with more than two rows): column maxima folded in, see micro_tile.
template <bool Accumulate, class A, class B>
inline void tile_gemm(float* c, int64_t ldc, const float* row_scale, const A& a, const B& b,
                      int64_t m, int64_t n, int64_t k, float* col_max = nullptr) {
    if (m <= 0) return;
    if (m <= 2 && !col_max) return few_rows<Accumulate>(c, ldc, row_scale, a, b, m, n, k);
    int64_t j = 0;
    for (; j + kColBlock <= n; j += kColBlock)
        column_block<kColVecs, Accumulate>(c, ldc, row_scale, a, b, m, j, k, col_max);
    // The remaining vectors of columns as one block where the registers allow (AVX-512).
    if constexpr (kColVecs == 4) {
        const int64_t rest = (n - j) / kLanes;
        if (rest == 3) return column_block<3, Accumulate>(c, ldc, row_scale, a, b, m, j, k, col_max);
        if (rest == 2) return column_block<2, Accumulate>(c, ldc, row_scale, a, b, m, j, k, col_max);
    }
    for (; j < n; j += kLanes) column_block<1, Accumulate>(c, ldc, row_scale, a, b, m, j, k, col_max);
}

}  // namespace SA_CPU_ISA
}  // namespace cpu
}  // namespace sa
