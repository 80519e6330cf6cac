// The matrix micro-kernel of the CPU backend: C[M][N] (+)= A[M][K] * B[K][N] with a 4x8
// register block of accumulators, M a multiple of 4 and N a multiple of 8. Operand policies
// say where A and B live, so tensors are read in place (row pointers) and no tile is transposed
// per visit.
#pragma once
#include <cstdint>
#include "simd.h"

namespace sa {
namespace cpu {

constexpr int kGemmRows = 4;
constexpr int kGemmCols = 8;

// A(i, p) = rows[i][p]: one pointer per row (tensor rows gathered in place).
struct RowPointerA {
    const float* const* rows;
    void broadcast(int64_t i, int64_t p, Float4 out[kGemmRows]) const {
        for (int r = 0; r < kGemmRows; ++r) out[r] = splat4(rows[i + r][p]);
    }
};

// A(i, p) = data[p * ld + i]: A stored transposed (probabilities kept as [key][query]).
struct TransposedA {
    const float* data;
    int64_t ld;
    void broadcast(int64_t i, int64_t p, Float4 out[kGemmRows]) const {
        const Float4 x = load4(data + p * ld + i);
        out[0] = lane_splat4<0>(x);
        out[1] = lane_splat4<1>(x);
        out[2] = lane_splat4<2>(x);
        out[3] = lane_splat4<3>(x);
    }
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

template <bool Accumulate, class A, class B>
inline void tile_gemm(float* __restrict c, int64_t ldc, const A& a, const B& b, int64_t m,
                      int64_t n, int64_t k) {
    for (int64_t i = 0; i < m; i += kGemmRows) {
        for (int64_t j = 0; j < n; j += kGemmCols) {
            Float4 acc[kGemmRows][2];
            for (int r = 0; r < kGemmRows; ++r)
                for (int v = 0; v < 2; ++v)
                    acc[r][v] = Accumulate ? load4(c + (i + r) * ldc + j + 4 * v) : splat4(0.0f);
            for (int64_t p = 0; p < k; ++p) {
                const float* brow = b.row(p) + j;
                Float4 bv[2];
                for (int v = 0; v < 2; ++v) bv[v] = load4(brow + 4 * v);
                Float4 x[kGemmRows];
                a.broadcast(i, p, x);
                for (int r = 0; r < kGemmRows; ++r)
                    for (int v = 0; v < 2; ++v) acc[r][v] += x[r] * bv[v];
            }
            for (int r = 0; r < kGemmRows; ++r)
                for (int v = 0; v < 2; ++v) store4(c + (i + r) * ldc + j + 4 * v, acc[r][v]);
        }
    }
}

}  // namespace cpu
}  // namespace sa
