// The one matrix micro-kernel of the CPU backend: C[M][N] (+)= A[M][K] * B[K][N], row-major,
// M a multiple of 4 and N a multiple of 8, with a 4x8 register block of accumulators.
#pragma once
#include <cstdint>
#include "simd.h"

namespace sa {
namespace cpu {

constexpr int kGemmRows = 4;
constexpr int kGemmCols = 8;

template <bool Accumulate>
inline void tile_gemm(float* __restrict c, int64_t ldc, const float* __restrict a, int64_t lda,
                      const float* __restrict b, int64_t ldb, int64_t m, int64_t n, int64_t k) {
    for (int64_t i = 0; i < m; i += kGemmRows) {
        for (int64_t j = 0; j < n; j += kGemmCols) {
            Float4 acc[kGemmRows][2];
            for (int r = 0; r < kGemmRows; ++r)
                for (int v = 0; v < 2; ++v)
                    acc[r][v] = Accumulate ? load4(c + (i + r) * ldc + j + 4 * v) : splat4(0.0f);
            for (int64_t p = 0; p < k; ++p) {
                Float4 bv[2];
                for (int v = 0; v < 2; ++v) bv[v] = load4(b + p * ldb + j + 4 * v);
                for (int r = 0; r < kGemmRows; ++r) {
                    const Float4 x = splat4(a[(i + r) * lda + p]);
                    for (int v = 0; v < 2; ++v) acc[r][v] += x * bv[v];
                }
            }
            for (int r = 0; r < kGemmRows; ++r)
                for (int v = 0; v < 2; ++v) store4(c + (i + r) * ldc + j + 4 * v, acc[r][v]);
        }
    }
}

}  // namespace cpu
}  // namespace sa
