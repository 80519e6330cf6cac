// Shared pieces of the CPU backend: element types and their scalar conversions, row loads and
// stores, dtype dispatch and the parallel-for over work items. Compiled for the baseline
// instruction set; the kernels' vector twins live in rows.h.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include "core/backend.h"

namespace sa {
namespace cpu {

struct Half { uint16_t bits; };
struct BFloat16 { uint16_t bits; };

inline float bits_to_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t float_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

// Branch-free so load loops vectorize: the float multiply rebiases the exponent and turns
// half subnormals into float normals; exponent 31 maps to inf/nan.
inline float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t em = h & 0x7FFFu;
    const float magnitude = bits_to_float(em << 13) * 0x1p112f;
    const uint32_t special = 0x7F800000u | ((em & 0x3FFu) << 13);
    const uint32_t mag_bits = em >= 0x7C00u ? special : float_to_bits(magnitude);
    return bits_to_float(mag_bits | sign);
}

// Round to nearest even, with subnormals, overflow to inf and nan kept quiet.
inline uint16_t float_to_half(float f) {
    const uint32_t x = float_to_bits(f);
    const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) return static_cast<uint16_t>(sign | (ax > 0x7F800000u ? 0x7E00u : 0x7C00u));
    if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds past 65504
    if (ax < 0x38800000u) {  // below the smallest half normal: subnormal or zero
        if (ax < 0x33000000u) return sign;  // below half of the smallest subnormal
        const uint32_t exp = ax >> 23;
        const uint32_t mant = (ax & 0x7FFFFFu) | 0x800000u;
        const uint32_t shift = 126u - exp;  // 14..24: value = mant * 2^(exp-150), unit 2^-24
        uint32_t q = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1u);
        const uint32_t half_unit = 1u << (shift - 1u);
        if (rem > half_unit || (rem == half_unit && (q & 1u))) ++q;
        return static_cast<uint16_t>(sign | q);
    }
    uint32_t r = ax - 0x38000000u;  // rebias 127 -> 15, still with 23 mantissa bits
    r += 0xFFFu + ((r >> 13) & 1u);
    return static_cast<uint16_t>(sign | (r >> 13));
}

inline float bf16_to_float(uint16_t h) { return bits_to_float(static_cast<uint32_t>(h) << 16); }

inline uint16_t float_to_bf16(float f) {
    const uint32_t x = float_to_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
    return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

inline float to_float(float v) { return v; }
inline float to_float(Half v) { return half_to_float(v.bits); }
inline float to_float(BFloat16 v) { return bf16_to_float(v.bits); }

template <class T> inline T from_float(float v);
template <> inline float from_float<float>(float v) { return v; }
template <> inline Half from_float<Half>(float v) { return Half{float_to_half(v)}; }
template <> inline BFloat16 from_float<BFloat16>(float v) { return BFloat16{float_to_bf16(v)}; }

template <class T>
inline void load_row(const T* src, float* dst, int64_t n, float factor) {
    for (int64_t i = 0; i < n; ++i) dst[i] = to_float(src[i]) * factor;
}
template <class T>
inline void store_row(const float* src, T* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = from_float<T>(src[i]);
}

[[noreturn]] void throw_invalid_dtype(sa_dtype dtype);

// Calls f(T{}) with the element type T of dtype.
template <class F>
inline void dispatch_dtype(sa_dtype dtype, F&& f) {
    switch (dtype) {
        case SA_DTYPE_F32: f(float{}); break;
        case SA_DTYPE_F16: f(Half{}); break;
        case SA_DTYPE_BF16: f(BFloat16{}); break;
        default: throw_invalid_dtype(dtype);
    }
}

// Runs body(item, worker) for item in [0, count) on up to num_threads threads (0 = all
// hardware threads); worker is in [0, workers) where workers is returned by worker_count.
int32_t worker_count(int32_t num_threads, int64_t count);
void parallel_for(int64_t count, int32_t workers, const std::function<void(int64_t, int32_t)>& body);

}  // namespace cpu
}  // namespace sa
