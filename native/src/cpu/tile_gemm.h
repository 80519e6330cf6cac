// The matrix micro-kernel of the CPU backend: C[M][N] (+)= A[M][K] * B[K][N] as register-blocked
// outer products. A block of kRowBlock rows by kColVecs vectors of accumulators stays in
// registers over the whole K loop (6 x 16 floats on AVX2+FMA, 8 x 32 on AVX-512, 4 x 8 on the
// baseline); each step broadcasts one A element per row and loads kColVecs vectors of B. M is
// any size (smaller blocks take the remainder rows), N a multiple of kLanes. Operand policies say
// where A and B live, so tensors are read in place (row pointers) and no tile is transposed.
#pragma once
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

// Scores of one or two queries against n key rows as dot products along the head dim (a
// query per lane would leave the other lanes idle): s[j * lds + r] for r < rows, zero for the
// padding lanes up to kLanes. q rows and key rows (keys.row(j)) hold dp floats, a multiple of kLanes.
template <class Keys>
inline void query_dots(float* s, int64_t lds, const float* q, int32_t rows, const Keys& keys,
                       int64_t n, int64_t dp) {
    for (int64_t j = 0; j < n; ++j)
        for (int r = 0; r < kLanes; ++r) s[j * lds + r] = 0.0f;
    for (int32_t r = 0; r < rows; ++r) {
        const float* qr = q + r * dp;
        int64_t j = 0;
        for (; j + 4 <= n; j += 4) {
            VecF acc[4] = {splat(0.0f), splat(0.0f), splat(0.0f), splat(0.0f)};
            for (int64_t d = 0; d < dp; d += kLanes) {
                const VecF x = load(qr + d);
                for (int i = 0; i < 4; ++i) acc[i] = fmadd(load(keys.row(j + i) + d), x, acc[i]);
            }
            for (int i = 0; i < 4; ++i) s[(j + i) * lds + r] = horizontal_sum(acc[i]);
        }
        for (; j < n; ++j) {
            VecF acc = splat(0.0f);
            for (int64_t d = 0; d < dp; d += kLanes) acc = fmadd(load(keys.row(j) + d), load(qr + d), acc);
            s[j * lds + r] = horizontal_sum(acc);
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
    for (; j < n; j += kLanes) column_block<1, Accumulate>(c, ldc, row_scale, a, b, m, j, k, col_max);
}

}  // namespace SA_CPU_ISA
}  // namespace cpu
}  // namespace sa
