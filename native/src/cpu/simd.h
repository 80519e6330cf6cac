// Float vectors for the hot loops of the CPU kernels, as wide as the instruction set the
// translation unit is compiled for: 4 lanes (SSE2, the x86-64 baseline), 8 (AVX2+FMA) or 16
// (AVX-512F). GCC and Clang lower the vector extensions to those registers; other compilers
// get a four-lane plain-array twin. Everything here lives in the namespace SA_CPU_ISA, which
// the including file names after its instruction set, so the copies never merge at link time.
#pragma once
#include <cstdint>
#include <cstring>
#include <utility>

#if !defined(SA_CPU_ISA)
#error "define SA_CPU_ISA (the instruction-set namespace) before including the CPU kernel headers"
#endif

namespace sa {
namespace cpu {
namespace SA_CPU_ISA {

inline float bits_as_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

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
    return p * bits_as_float(static_cast<uint32_t>(n + 127) << 23);
}

#if defined(__GNUC__)
#if defined(__AVX512F__)
constexpr int kLanes = 16;
#elif defined(__AVX2__)
constexpr int kLanes = 8;
#else
constexpr int kLanes = 4;
#endif
typedef float VecF __attribute__((vector_size(kLanes * 4)));
typedef int32_t VecI __attribute__((vector_size(kLanes * 4)));
typedef uint16_t VecU16 __attribute__((vector_size(kLanes * 2)));

// Every lane x. Written lane by lane: `VecF{} + x` would keep an add (for the sign of zero).
template <size_t... L>
inline VecF splat_lanes(float x, std::index_sequence<L...>) { return VecF{((void)L, x)...}; }
inline VecF splat(float x) { return splat_lanes(x, std::make_index_sequence<kLanes>{}); }
inline VecF load(const float* p) { VecF v; std::memcpy(&v, p, sizeof(v)); return v; }
inline void store(float* p, VecF v) { std::memcpy(p, &v, sizeof(v)); }
// a * b + c; one fused instruction where the target has FMA.
inline VecF fmadd(VecF a, VecF b, VecF c) { return a * b + c; }
inline VecF vmax(VecF a, VecF b) { return a > b ? a : b; }
// Lanes equal to -inf become 0, others pass through.
inline VecF finite_or_zero(VecF x, float neg_inf) { return x == splat(neg_inf) ? splat(0.0f) : x; }
inline VecF as_float(VecI x) { VecF f; std::memcpy(&f, &x, sizeof(f)); return f; }
inline VecI as_int(VecF x) { VecI i; std::memcpy(&i, &x, sizeof(i)); return i; }

#if defined(__clang__) || __GNUC__ >= 12
// Sum and maximum of the lanes as a tree of halves (a few shuffles, not a serial chain). The
// wider overloads exist only where the unit's instruction set has those registers.
typedef float VecF4 __attribute__((vector_size(16)));
inline VecF4 max4(VecF4 a, VecF4 b) { return a > b ? a : b; }
inline float lanes_sum(VecF4 x) {
    const VecF4 y = x + __builtin_shufflevector(x, x, 2, 3, 0, 1);
    return (y + __builtin_shufflevector(y, y, 1, 0, 3, 2))[0];
}
inline float lanes_max(VecF4 x) {
    const VecF4 y = max4(x, __builtin_shufflevector(x, x, 2, 3, 0, 1));
    return max4(y, __builtin_shufflevector(y, y, 1, 0, 3, 2))[0];
}
#if defined(__AVX2__)
typedef float VecF8 __attribute__((vector_size(32)));
inline float lanes_sum(VecF8 x) {
    return lanes_sum(__builtin_shufflevector(x, x, 0, 1, 2, 3) + __builtin_shufflevector(x, x, 4, 5, 6, 7));
}
inline float lanes_max(VecF8 x) {
    return lanes_max(max4(__builtin_shufflevector(x, x, 0, 1, 2, 3), __builtin_shufflevector(x, x, 4, 5, 6, 7)));
}
#endif
#if defined(__AVX512F__)
typedef float VecF16 __attribute__((vector_size(64)));
inline VecF8 max8(VecF8 a, VecF8 b) { return a > b ? a : b; }
inline float lanes_sum(VecF16 x) {
    return lanes_sum(__builtin_shufflevector(x, x, 0, 1, 2, 3, 4, 5, 6, 7) +
                     __builtin_shufflevector(x, x, 8, 9, 10, 11, 12, 13, 14, 15));
}
inline float lanes_max(VecF16 x) {
    return lanes_max(max8(__builtin_shufflevector(x, x, 0, 1, 2, 3, 4, 5, 6, 7),
                          __builtin_shufflevector(x, x, 8, 9, 10, 11, 12, 13, 14, 15)));
}
#endif
inline float horizontal_sum(VecF x) { return lanes_sum(x); }
inline float horizontal_max(VecF x) { return lanes_max(x); }
#define SA_CPU_HAS_SHUFFLES 1

// Four vectors a0..a3 to one whose 128-bit block b holds, in order, the sums of a0..a3 over
// that block's four lanes (the first two steps of a transposed reduction).
inline VecF sum4_per_block(VecF a0, VecF a1, VecF a2, VecF a3) {
#if defined(__AVX512F__)
#define SA_UNPACK(x, y, o0, o1) __builtin_shufflevector(x, y, 0 + o0, 16 + o0, 0 + o1, 16 + o1, 4 + o0, 20 + o0, \
    4 + o1, 20 + o1, 8 + o0, 24 + o0, 8 + o1, 24 + o1, 12 + o0, 28 + o0, 12 + o1, 28 + o1)
#define SA_UNPACK_PAIRS(x, y, o) __builtin_shufflevector(x, y, 0 + o, 1 + o, 16 + o, 17 + o, 4 + o, 5 + o, \
    20 + o, 21 + o, 8 + o, 9 + o, 24 + o, 25 + o, 12 + o, 13 + o, 28 + o, 29 + o)
#elif defined(__AVX2__)
#define SA_UNPACK(x, y, o0, o1) __builtin_shufflevector(x, y, 0 + o0, 8 + o0, 0 + o1, 8 + o1, 4 + o0, 12 + o0, \
    4 + o1, 12 + o1)
#define SA_UNPACK_PAIRS(x, y, o) __builtin_shufflevector(x, y, 0 + o, 1 + o, 8 + o, 9 + o, 4 + o, 5 + o, 12 + o, 13 + o)
#else
#define SA_UNPACK(x, y, o0, o1) __builtin_shufflevector(x, y, 0 + o0, 4 + o0, 0 + o1, 4 + o1)
#define SA_UNPACK_PAIRS(x, y, o) __builtin_shufflevector(x, y, 0 + o, 1 + o, 4 + o, 5 + o)
#endif
    // Lanes 0, 2 of each block: a0 (a2), lanes 1, 3: a1 (a3), each the sum of two lanes.
    const VecF u01 = SA_UNPACK(a0, a1, 0, 1) + SA_UNPACK(a0, a1, 2, 3);
    const VecF u23 = SA_UNPACK(a2, a3, 0, 1) + SA_UNPACK(a2, a3, 2, 3);
    return SA_UNPACK_PAIRS(u01, u23, 0) + SA_UNPACK_PAIRS(u01, u23, 2);
#undef SA_UNPACK
#undef SA_UNPACK_PAIRS
}

// The per-block sums of kLanes / 4 vectors (sum4_per_block) to one vector: lane 4g + i is the
// total of key i of v[g].
inline VecF blocks_to_lanes(const VecF* v) {
#if defined(__AVX512F__)
#define SA_EVEN_BLOCKS(x, y) __builtin_shufflevector(x, y, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27)
#define SA_ODD_BLOCKS(x, y) __builtin_shufflevector(x, y, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31)
    const VecF w0 = SA_EVEN_BLOCKS(v[0], v[1]) + SA_ODD_BLOCKS(v[0], v[1]);
    const VecF w1 = SA_EVEN_BLOCKS(v[2], v[3]) + SA_ODD_BLOCKS(v[2], v[3]);
    return SA_EVEN_BLOCKS(w0, w1) + SA_ODD_BLOCKS(w0, w1);
#undef SA_EVEN_BLOCKS
#undef SA_ODD_BLOCKS
#elif defined(__AVX2__)
    return __builtin_shufflevector(v[0], v[1], 0, 1, 2, 3, 8, 9, 10, 11) +
           __builtin_shufflevector(v[0], v[1], 4, 5, 6, 7, 12, 13, 14, 15);
#else
    return v[0];
#endif
}
#else
inline float horizontal_sum(VecF x) {
    float sum = 0.0f;
    for (int i = 0; i < kLanes; ++i) sum += x[i];
    return sum;
}
inline float horizontal_max(VecF x) {
    float mx = x[0];
    for (int i = 1; i < kLanes; ++i) mx = x[i] > mx ? x[i] : mx;
    return mx;
}
#endif

// 2^x for x <= 0 on every lane (see exp2_nonpositive).
inline VecF exp2_nonpositive(VecF x) {
    x = x < splat(-125.0f) ? splat(-127.0f) : x;
    const VecI n = __builtin_convertvector(x - 0.5f, VecI);
    const VecF f = x - __builtin_convertvector(n, VecF);
    VecF p = splat(1.5252733804059840e-5f);
    p = fmadd(p, f, splat(1.5403530393381606e-4f));
    p = fmadd(p, f, splat(1.3333558146428443e-3f));
    p = fmadd(p, f, splat(9.6181291076284772e-3f));
    p = fmadd(p, f, splat(5.5504108664821580e-2f));
    p = fmadd(p, f, splat(2.4022650695910072e-1f));
    p = fmadd(p, f, splat(6.9314718055994531e-1f));
    p = fmadd(p, f, splat(1.0f));
    return p * as_float((n + 127) << 23);
}

// fp16 lanes to fp32 by the branch-free rule of half_to_float: the multiply rebiases the
// exponent and turns half subnormals into float normals; exponent 31 maps to inf/nan.
inline VecF half_to_float(const uint16_t* src) {
    VecU16 h;
    std::memcpy(&h, src, sizeof(h));
    const VecI x = __builtin_convertvector(h, VecI);
    const VecI em = x & 0x7FFF;
    const VecI magnitude = as_int(as_float(em << 13) * 0x1p112f);
    const VecI special = 0x7F800000 | ((em & 0x3FF) << 13);
    return as_float((em >= 0x7C00 ? special : magnitude) | ((x & 0x8000) << 16));
}
inline VecF bf16_to_float(const uint16_t* src) {
    VecU16 h;
    std::memcpy(&h, src, sizeof(h));
    return as_float(__builtin_convertvector(h, VecI) << 16);
}
#define SA_CPU_HAS_VECTOR_CONVERSIONS 1
#else
constexpr int kLanes = 4;
struct VecF {
    float v[kLanes];
    friend VecF operator*(const VecF& a, const VecF& b) {
        VecF r; for (int i = 0; i < kLanes; ++i) r.v[i] = a.v[i] * b.v[i]; return r;
    }
    friend VecF operator+(const VecF& a, const VecF& b) {
        VecF r; for (int i = 0; i < kLanes; ++i) r.v[i] = a.v[i] + b.v[i]; return r;
    }
    friend VecF operator-(const VecF& a, const VecF& b) {
        VecF r; for (int i = 0; i < kLanes; ++i) r.v[i] = a.v[i] - b.v[i]; return r;
    }
    VecF& operator+=(const VecF& o) { return *this = *this + o; }
    float operator[](int i) const { return v[i]; }
};
inline VecF splat(float x) { VecF r; for (int i = 0; i < kLanes; ++i) r.v[i] = x; return r; }
inline VecF load(const float* p) { VecF v; std::memcpy(&v, p, sizeof(v)); return v; }
inline void store(float* p, VecF v) { std::memcpy(p, &v, sizeof(v)); }
inline VecF fmadd(VecF a, VecF b, VecF c) { return a * b + c; }
inline VecF vmax(VecF a, VecF b) {
    VecF r; for (int i = 0; i < kLanes; ++i) r.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i]; return r;
}
inline VecF finite_or_zero(VecF x, float neg_inf) {
    VecF r; for (int i = 0; i < kLanes; ++i) r.v[i] = x.v[i] == neg_inf ? 0.0f : x.v[i]; return r;
}
inline VecF exp2_nonpositive(VecF x) {
    VecF r; for (int i = 0; i < kLanes; ++i) r.v[i] = exp2_nonpositive(x.v[i]); return r;
}
inline float horizontal_sum(VecF x) {
    float sum = 0.0f;
    for (int i = 0; i < kLanes; ++i) sum += x.v[i];
    return sum;
}
inline float horizontal_max(VecF x) {
    float mx = x.v[0];
    for (int i = 1; i < kLanes; ++i) mx = x.v[i] > mx ? x.v[i] : mx;
    return mx;
}
#endif

#if !defined(SA_CPU_HAS_SHUFFLES)
// Lane by lane twins of the transposed reduction above.
inline VecF sum4_per_block(VecF a0, VecF a1, VecF a2, VecF a3) {
    const VecF a[4] = {a0, a1, a2, a3};
    float out[kLanes];
    for (int b = 0; b < kLanes / 4; ++b)
        for (int i = 0; i < 4; ++i)
            out[4 * b + i] = (a[i][4 * b] + a[i][4 * b + 1]) + (a[i][4 * b + 2] + a[i][4 * b + 3]);
    return load(out);
}
inline VecF blocks_to_lanes(const VecF* v) {
    float out[kLanes];
    for (int g = 0; g < kLanes / 4; ++g)
        for (int i = 0; i < 4; ++i) {
            float sum = 0.0f;
            for (int b = 0; b < kLanes / 4; ++b) sum += v[g][4 * b + i];
            out[4 * g + i] = sum;
        }
    return load(out);
}
#endif

}  // namespace SA_CPU_ISA
}  // namespace cpu
}  // namespace sa
