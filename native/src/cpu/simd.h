// Four-float values for the hot loops. GCC and Clang lower them to SSE2 registers (the
// portable x86-64 baseline, no -march needed); other compilers get a plain-array twin.
#pragma once
#include <cstdint>
#include <cstring>

namespace sa {
namespace cpu {

inline float scale_bits_to_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// 2^x for x <= 0 by integer exponent and polynomial; exactly 0 below -125 so no result is
// subnormal (slow on some CPUs); relative error about 1e-7.
inline float exp2_nonpositive(float x) {
    x = x < -125.0f ? -127.0f : x;
    const int32_t n = static_cast<int32_t>(x - 0.5f);  // round to nearest for x <= 0
    const float f = x - static_cast<float>(n);         // in [-0.5, 0.5]
    float p = 1.5252733804059840e-5f;
    p = p * f + 1.5403530393381606e-4f;
    p = p * f + 1.3333558146428443e-3f;
    p = p * f + 9.6181291076284772e-3f;
    p = p * f + 5.5504108664821580e-2f;
    p = p * f + 2.4022650695910072e-1f;
    p = p * f + 6.9314718055994531e-1f;
    p = p * f + 1.0f;
    const float scale = scale_bits_to_float(static_cast<uint32_t>(n + 127) << 23);
    return p * scale;
}

#if defined(__GNUC__)
typedef float Float4 __attribute__((vector_size(16)));
typedef int32_t Int4 __attribute__((vector_size(16)));
inline Float4 splat4(float x) { return Float4{x, x, x, x}; }
inline Float4 max4(Float4 a, Float4 b) { return a > b ? a : b; }
template <int L> inline Float4 lane_splat4(Float4 x) { return __builtin_shufflevector(x, x, L, L, L, L); }
// Lanes equal to -inf become 0, others pass through.
inline Float4 finite_or_zero4(Float4 x, float neg_inf) { return x == splat4(neg_inf) ? splat4(0.0f) : x; }
// 2^x for x <= 0 on four lanes (see exp2_nonpositive).
inline Float4 exp2_nonpositive4(Float4 x) {
    x = x < splat4(-125.0f) ? splat4(-127.0f) : x;
    const Int4 n = __builtin_convertvector(x - splat4(0.5f), Int4);
    const Float4 f = x - __builtin_convertvector(n, Float4);
    Float4 p = splat4(1.5252733804059840e-5f);
    p = p * f + 1.5403530393381606e-4f;
    p = p * f + 1.3333558146428443e-3f;
    p = p * f + 9.6181291076284772e-3f;
    p = p * f + 5.5504108664821580e-2f;
    p = p * f + 2.4022650695910072e-1f;
    p = p * f + 6.9314718055994531e-1f;
    p = p * f + 1.0f;
    const Int4 bits = (n + 127) << 23;
    Float4 scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}
typedef uint16_t Uint16x4 __attribute__((vector_size(8)));
// Four fp16 values to fp32, the same branch-free rule as half_to_float.
inline Float4 half4_to_float4(const uint16_t* src) {
    Uint16x4 h;
    std::memcpy(&h, src, sizeof(h));
    const Int4 x = __builtin_convertvector(h, Int4);
    const Int4 sign = (x & 0x8000) << 16;
    const Int4 em = x & 0x7FFF;
    const Int4 shifted = em << 13;
    Float4 magnitude;
    std::memcpy(&magnitude, &shifted, sizeof(magnitude));
    magnitude *= 0x1p112f;
    Int4 bits;
    std::memcpy(&bits, &magnitude, sizeof(bits));
    const Int4 special = 0x7F800000 | ((em & 0x3FF) << 13);
    bits = em >= 0x7C00 ? special : bits;
    bits |= sign;
    Float4 f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
}
inline Float4 bf16x4_to_float4(const uint16_t* src) {
    Uint16x4 h;
    std::memcpy(&h, src, sizeof(h));
    const Int4 bits = __builtin_convertvector(h, Int4) << 16;
    Float4 f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
}
#define SA_CPU_HAS_VECTOR_CONVERSIONS 1
#else
struct Float4 {
    float v[4];
    Float4& operator+=(const Float4& o) { for (int i = 0; i < 4; ++i) v[i] += o.v[i]; return *this; }
    friend Float4 operator*(const Float4& a, const Float4& b) {
        Float4 r; for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] * b.v[i]; return r;
    }
    friend Float4 operator+(const Float4& a, const Float4& b) {
        Float4 r; for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] + b.v[i]; return r;
    }
    friend Float4 operator-(const Float4& a, const Float4& b) {
        Float4 r; for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] - b.v[i]; return r;
    }
    float operator[](int i) const { return v[i]; }
};
inline Float4 splat4(float x) { return Float4{{x, x, x, x}}; }
inline Float4 max4(Float4 a, Float4 b) {
    Float4 r; for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i]; return r;
}
template <int L> inline Float4 lane_splat4(Float4 x) { return splat4(x.v[L]); }
inline Float4 finite_or_zero4(Float4 x, float neg_inf) {
    Float4 r; for (int i = 0; i < 4; ++i) r.v[i] = x.v[i] == neg_inf ? 0.0f : x.v[i]; return r;
}
inline Float4 exp2_nonpositive4(Float4 x) {
    Float4 r; for (int i = 0; i < 4; ++i) r.v[i] = exp2_nonpositive(x.v[i]); return r;
}
#endif

inline Float4 load4(const float* p) { Float4 v; std::memcpy(&v, p, sizeof(v)); return v; }
inline void store4(float* p, Float4 v) { std::memcpy(p, &v, sizeof(v)); }

}  // namespace cpu
}  // namespace sa
