// Row conversions of the CPU kernels: tensor rows (fp32, fp16, bf16) to fp32 scratch and back,
// vectorized for the translation unit's instruction set (see simd.h).
#pragma once
#include <cstdint>
#include "cpu_common.h"
#include "simd.h"

namespace sa {
namespace cpu {
namespace SA_CPU_ISA {

// dst[i] = src[i] * factor for i < n.
template <class T>
inline void widen_row(const T* src, float* dst, int64_t n, float factor) {
    for (int64_t i = 0; i < n; ++i) dst[i] = to_float(src[i]) * factor;
}
inline void widen_row(const float* src, float* dst, int64_t n, float factor) {
    int64_t i = 0;
    const VecF f = splat(factor);
    for (; i + kLanes <= n; i += kLanes) store(dst + i, load(src + i) * f);
    for (; i < n; ++i) dst[i] = src[i] * factor;
}
#if defined(SA_CPU_HAS_VECTOR_CONVERSIONS)
inline void widen_row(const Half* src, float* dst, int64_t n, float factor) {
    int64_t i = 0;
    const VecF f = splat(factor);
    for (; i + kLanes <= n; i += kLanes) store(dst + i, half_to_float(&src[i].bits) * f);
    for (; i < n; ++i) dst[i] = sa::cpu::half_to_float(src[i].bits) * factor;
}
inline void widen_row(const BFloat16* src, float* dst, int64_t n, float factor) {
    int64_t i = 0;
    const VecF f = splat(factor);
    for (; i + kLanes <= n; i += kLanes) store(dst + i, bf16_to_float(&src[i].bits) * f);
    for (; i < n; ++i) dst[i] = sa::cpu::bf16_to_float(src[i].bits) * factor;
}
#endif

template <class T>
inline void narrow_row(const float* src, T* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = from_float<T>(src[i]);
}

}  // namespace SA_CPU_ISA
}  // namespace cpu
}  // namespace sa
