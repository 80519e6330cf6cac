// Helpers shared by the native tests: host tensors of any dtype and layout, fp16/bf16
// conversion, seeded random inputs, NaN poisoning, and a naive double-precision attention
// reference that takes the allowed-pair rule as a function.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "harness.h"

namespace sa_test {

inline float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: normalize
            int shift = 0;
            while ((mantissa & 0x400u) == 0) {
                mantissa <<= 1;
                ++shift;
            }
            mantissa &= 0x3ffu;
            bits = sign | (static_cast<uint32_t>(127 - 15 - shift + 1) << 23) | (mantissa << 13);
        }
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// Round to nearest even through double arithmetic on the value (exact for the test range).
inline uint16_t float_to_half(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    if (std::isnan(f)) return static_cast<uint16_t>(sign | 0x7e00u);
    const float a = std::fabs(f);
    if (a >= 65520.0f) return static_cast<uint16_t>(sign | 0x7c00u);
    if (a < 6.103515625e-05f) {  // subnormal range: units of 2^-24
        const uint16_t m = static_cast<uint16_t>(std::nearbyint(static_cast<double>(a) * 16777216.0));
        return static_cast<uint16_t>(sign | m);
    }
    int e;
    const double frac = std::frexp(static_cast<double>(a), &e);  // a = frac * 2^e, frac in [0.5,1)
    double m = std::nearbyint(frac * 2048.0);                     // 11 significant bits
    if (m >= 2048.0) {
        m /= 2.0;
        ++e;
    }
    const int exponent = e - 1 + 15;
    if (exponent >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
    return static_cast<uint16_t>(sign | (exponent << 10) | (static_cast<int>(m) - 1024));
}

inline float bf16_to_float(uint16_t h) {
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline uint16_t float_to_bf16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if (std::isnan(f)) return static_cast<uint16_t>((bits >> 16) | 0x40u);
    const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
    return static_cast<uint16_t>((bits + rounding) >> 16);
}

inline size_t dtype_bytes(sa_dtype dtype) {
    switch (dtype) {
        case SA_DTYPE_F32: return 4;
        case SA_DTYPE_F16: return 2;
        case SA_DTYPE_BF16: return 2;
        case SA_DTYPE_I32: return 4;
        case SA_DTYPE_BOOL: return 1;
    }
    return 1;
}

inline const char* dtype_label(sa_dtype dtype) {
    switch (dtype) {
        case SA_DTYPE_F32: return "f32";
        case SA_DTYPE_F16: return "f16";
        case SA_DTYPE_BF16: return "bf16";
        case SA_DTYPE_I32: return "i32";
        case SA_DTYPE_BOOL: return "bool";
    }
    return "?";
}

// Random source: fresh seed per run unless SA_TEST_SEED is set; the seed is printed.
inline std::mt19937_64& rng() {
    static std::mt19937_64 engine = [] {
        uint64_t seed;
        if (const char* env = std::getenv("SA_TEST_SEED")) {
            seed = std::strtoull(env, nullptr, 10);
        } else {
            seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
        }
        std::printf("seed %llu (set SA_TEST_SEED to repeat)\n", static_cast<unsigned long long>(seed));
        return std::mt19937_64(seed);
    }();
    return engine;
}

inline double uniform(double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng());
}

inline int64_t uniform_int(int64_t lo, int64_t hi) {  // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng());
}

// A host tensor owning its storage (which may be larger than the view, for strided views).
struct HostTensor {
    sa_dtype dtype = SA_DTYPE_F32;
    std::vector<int64_t> shape;
    std::vector<int64_t> strides;
    std::vector<unsigned char> storage;
    sa_tensor desc{};

    HostTensor() = default;
    HostTensor(const HostTensor&) = delete;
    HostTensor& operator=(const HostTensor&) = delete;
    HostTensor(HostTensor&&) = default;
    HostTensor& operator=(HostTensor&&) = default;

    static HostTensor contiguous(sa_dtype dtype, std::vector<int64_t> shape) {
        std::vector<int64_t> strides(shape.size());
        int64_t s = 1;
        for (size_t i = shape.size(); i-- > 0;) {
            strides[i] = s;
            s *= shape[i];
        }
        return strided(dtype, shape, strides, s);
    }

    // A view with explicit strides over `elements` elements of storage.
    static HostTensor strided(sa_dtype dtype, std::vector<int64_t> shape,
                              std::vector<int64_t> strides, int64_t elements) {
        HostTensor t;
        t.dtype = dtype;
        t.shape = shape;
        t.strides = strides;
        t.storage.assign(static_cast<size_t>(elements) * dtype_bytes(dtype), 0);
        t.refresh();
        return t;
    }

    // Storage laid out in `memory_order` (a permutation of the dims, outermost first).
    static HostTensor permuted(sa_dtype dtype, std::vector<int64_t> shape,
                               std::vector<int> memory_order) {
        std::vector<int64_t> strides(shape.size());
        int64_t s = 1;
        for (size_t i = memory_order.size(); i-- > 0;) {
            strides[memory_order[i]] = s;
            s *= shape[memory_order[i]];
        }
        return strided(dtype, shape, strides, s);
    }

    void refresh() {
        std::memset(&desc, 0, sizeof desc);
        desc.data = storage.data();
        desc.dtype = dtype;
        desc.device_type = SA_DEVICE_CPU;
        desc.device_id = 0;
        desc.rank = static_cast<int32_t>(shape.size());
        for (size_t i = 0; i < shape.size(); ++i) {
            desc.shape[i] = shape[i];
            desc.strides[i] = strides[i];
        }
    }

    sa_tensor* d() { return &desc; }

    int64_t storage_elements() const {
        return static_cast<int64_t>(storage.size() / dtype_bytes(dtype));
    }
    int64_t numel() const {
        int64_t n = 1;
        for (int64_t s : shape) n *= s;
        return n;
    }
    int64_t offset(std::initializer_list<int64_t> index) const {
        int64_t o = 0;
        size_t i = 0;
        for (int64_t x : index) o += x * strides[i++];
        return o;
    }
    // Offset of the n-th element in row-major order of the view.
    int64_t offset_of_linear(int64_t n) const {
        int64_t o = 0;
        for (size_t i = shape.size(); i-- > 0;) {
            o += (n % shape[i]) * strides[i];
            n /= shape[i];
        }
        return o;
    }

    double get_at(int64_t off) const {
        const unsigned char* p = storage.data() + off * dtype_bytes(dtype);
        switch (dtype) {
            case SA_DTYPE_F32: { float f; std::memcpy(&f, p, 4); return f; }
            case SA_DTYPE_F16: { uint16_t h; std::memcpy(&h, p, 2); return half_to_float(h); }
            case SA_DTYPE_BF16: { uint16_t h; std::memcpy(&h, p, 2); return bf16_to_float(h); }
            case SA_DTYPE_I32: { int32_t i; std::memcpy(&i, p, 4); return i; }
            case SA_DTYPE_BOOL: return p[0] != 0 ? 1.0 : 0.0;
        }
        return 0;
    }
    void set_at(int64_t off, double value) {
        unsigned char* p = storage.data() + off * dtype_bytes(dtype);
        switch (dtype) {
            case SA_DTYPE_F32: { float f = static_cast<float>(value); std::memcpy(p, &f, 4); break; }
            case SA_DTYPE_F16: { uint16_t h = float_to_half(static_cast<float>(value)); std::memcpy(p, &h, 2); break; }
            case SA_DTYPE_BF16: { uint16_t h = float_to_bf16(static_cast<float>(value)); std::memcpy(p, &h, 2); break; }
            case SA_DTYPE_I32: { int32_t i = static_cast<int32_t>(value); std::memcpy(p, &i, 4); break; }
            case SA_DTYPE_BOOL: p[0] = value != 0 ? 1 : 0; break;
        }
    }
    double get(std::initializer_list<int64_t> index) const { return get_at(offset(index)); }
    void set(std::initializer_list<int64_t> index, double value) { set_at(offset(index), value); }
    int32_t* i32() { return reinterpret_cast<int32_t*>(storage.data()); }
    uint8_t* u8() { return storage.data(); }

    void fill_random(double lo = -1.0, double hi = 1.0) {
        for (int64_t n = 0, e = numel(); n < e; ++n) set_at(offset_of_linear(n), uniform(lo, hi));
    }
    // NaN over the whole storage (gaps of strided views included).
    void poison() {
        for (int64_t i = 0, e = storage_elements(); i < e; ++i)
            set_at(i, std::numeric_limits<double>::quiet_NaN());
    }
};

// Naive attention in double precision over [B, S, H, D] views (varlen callers use B = 1
// slices). allowed(b, h, i, j) says whether query i sees key j. Results are contiguous:
// out [B, S_q, H_q, D], lse [B, H_q, S_q].
struct Reference {
    int64_t B = 0, Sq = 0, Hq = 0, D = 0;
    std::vector<double> out;
    std::vector<double> lse;
    double o(int64_t b, int64_t i, int64_t h, int64_t d) const {
        return out[((b * Sq + i) * Hq + h) * D + d];
    }
    double l(int64_t b, int64_t h, int64_t i) const { return lse[(b * Hq + h) * Sq + i]; }
};

template <typename Allowed>
Reference reference_attention(const HostTensor& q, const HostTensor& k, const HostTensor& v,
                              double scale, Allowed allowed) {
    Reference r;
    r.B = q.shape[0];
    r.Sq = q.shape[1];
    r.Hq = q.shape[2];
    r.D = q.shape[3];
    const int64_t Sk = k.shape[1], Hkv = k.shape[2], group = r.Hq / Hkv;
    r.out.assign(static_cast<size_t>(r.B * r.Sq * r.Hq * r.D), 0.0);
    r.lse.assign(static_cast<size_t>(r.B * r.Hq * r.Sq), -std::numeric_limits<double>::infinity());
    std::vector<double> scores(static_cast<size_t>(Sk));
    for (int64_t b = 0; b < r.B; ++b)
        for (int64_t h = 0; h < r.Hq; ++h) {
            const int64_t hk = h / group;
            for (int64_t i = 0; i < r.Sq; ++i) {
                double m = -std::numeric_limits<double>::infinity();
                for (int64_t j = 0; j < Sk; ++j) {
                    if (!allowed(b, h, i, j)) {
                        scores[j] = -std::numeric_limits<double>::infinity();
                        continue;
                    }
                    double s = 0;
                    for (int64_t d = 0; d < r.D; ++d) s += q.get({b, i, h, d}) * k.get({b, j, hk, d});
                    scores[j] = s * scale;
                    m = std::max(m, scores[j]);
                }
                if (m == -std::numeric_limits<double>::infinity()) continue;  // no key: 0, -inf
                double sum = 0;
                for (int64_t j = 0; j < Sk; ++j)
                    if (scores[j] != -std::numeric_limits<double>::infinity()) sum += std::exp(scores[j] - m);
                for (int64_t j = 0; j < Sk; ++j) {
                    if (scores[j] == -std::numeric_limits<double>::infinity()) continue;
                    const double p = std::exp(scores[j] - m) / sum;
                    for (int64_t d = 0; d < r.D; ++d)
                        r.out[((b * r.Sq + i) * r.Hq + h) * r.D + d] += p * v.get({b, j, hk, d});
                }
                r.lse[(b * r.Hq + h) * r.Sq + i] = m + std::log(sum);
            }
        }
    return r;
}

// Output tolerance for results stored in `dtype` (inputs in [-1, 1], fp32 accumulation).
inline double output_tolerance(sa_dtype dtype) {
    switch (dtype) {
        case SA_DTYPE_F16: return 4e-3;
        case SA_DTYPE_BF16: return 2e-2;
        default: return 1e-4;
    }
}

// Compares out/lse with the reference: every element written (no NaN left), within tolerance,
// and an LSE of -inf exactly where no key is allowed. Returns the number of mismatches.
inline int compare_with_reference(const Reference& ref, const HostTensor& out,
                                  const HostTensor* lse, const char* file, int line) {
    const double tol = output_tolerance(out.dtype);
    int bad = 0;
    double worst = 0;
    for (int64_t b = 0; b < ref.B; ++b)
        for (int64_t i = 0; i < ref.Sq; ++i)
            for (int64_t h = 0; h < ref.Hq; ++h)
                for (int64_t d = 0; d < ref.D; ++d) {
                    const double got = out.get({b, i, h, d});
                    const double want = ref.o(b, i, h, d);
                    const double err = std::fabs(got - want);
                    if (!(err <= tol)) {
                        if (bad < 5)
                            report_failure(file, line,
                                           "out[" + std::to_string(b) + "," + std::to_string(i) + "," +
                                               std::to_string(h) + "," + std::to_string(d) + "] = " +
                                               to_text(got) + ", expected " + to_text(want));
                        ++bad;
                    }
                    if (err > worst) worst = err;
                }
    if (lse != nullptr)
        for (int64_t b = 0; b < ref.B; ++b)
            for (int64_t h = 0; h < ref.Hq; ++h)
                for (int64_t i = 0; i < ref.Sq; ++i) {
                    const double got = lse->get({b, h, i});
                    const double want = ref.l(b, h, i);
                    const bool ok = std::isinf(want) ? (std::isinf(got) && got < 0)
                                                     : std::fabs(got - want) <= 1e-3 * (1 + std::fabs(want));
                    if (!ok) {
                        if (bad < 5)
                            report_failure(file, line,
                                           "lse[" + std::to_string(b) + "," + std::to_string(h) + "," +
                                               std::to_string(i) + "] = " + to_text(got) +
                                               ", expected " + to_text(want));
                        ++bad;
                    }
                }
    if (bad > 0)
        report_failure(file, line, std::to_string(bad) + " mismatches, worst output error " +
                                       to_text(worst) + " (tolerance " + to_text(tol) + ")");
    return bad;
}

#define CHECK_MATCHES_REFERENCE(ref, out, lse) \
    ::sa_test::compare_with_reference((ref), (out), (lse), __FILE__, __LINE__)

// Storage elements outside the view must still hold the NaN poison (nothing written there).
inline int count_writes_outside_view(const HostTensor& t) {
    std::vector<char> inside(static_cast<size_t>(t.storage_elements()), 0);
    for (int64_t n = 0, e = t.numel(); n < e; ++n) inside[static_cast<size_t>(t.offset_of_linear(n))] = 1;
    int written = 0;
    for (int64_t i = 0, e = t.storage_elements(); i < e; ++i)
        if (!inside[static_cast<size_t>(i)] && !std::isnan(t.get_at(i))) ++written;
    return written;
}

}  // namespace sa_test
