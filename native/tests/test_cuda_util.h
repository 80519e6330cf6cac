// CUDA test helpers shared by the reference-kernel and fast-kernel tests: device mirrors of
// host tensors, element-wise comparison against the CPU backend, random block lists and
// permutations.
#pragma once
#include <algorithm>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "test_util.h"

namespace sa_test {


// A device mirror of a host tensor (same dtype, shape, strides and storage size).
struct DeviceTensor {
    void* ptr = nullptr;
    size_t bytes = 0;
    sa_tensor desc{};

    explicit DeviceTensor(const HostTensor& host) {
        bytes = std::max<size_t>(host.storage.size(), 1);
        if (sa_cuda_malloc(0, bytes, &ptr) != SA_OK) {
            report_failure(__FILE__, __LINE__, std::string("sa_cuda_malloc: ") + sa_last_error());
            throw AbortCase{};
        }
        desc = host.desc;
        desc.data = ptr;
        desc.device_type = SA_DEVICE_CUDA;
        desc.device_id = 0;
        upload(host);
    }
    ~DeviceTensor() {
        if (ptr != nullptr) sa_cuda_free(0, ptr);
    }
    DeviceTensor(const DeviceTensor&) = delete;
    DeviceTensor& operator=(const DeviceTensor&) = delete;

    void upload(const HostTensor& host) {
        if (host.storage.empty()) return;
        REQUIRE_OK(sa_cuda_memcpy(ptr, host.storage.data(), host.storage.size(),
                                  SA_COPY_HOST_TO_DEVICE, nullptr));
    }
    void download(HostTensor& host) const {
        if (host.storage.empty()) return;
        REQUIRE_OK(sa_cuda_memcpy(host.storage.data(), ptr, host.storage.size(),
                                  SA_COPY_DEVICE_TO_HOST, nullptr));
    }
    sa_tensor* d() { return &desc; }
};

inline double dtype_epsilon(sa_dtype dtype) {
    switch (dtype) {
        case SA_DTYPE_F16: return 9.765625e-4;  // 2^-10
        case SA_DTYPE_BF16: return 7.8125e-3;   // 2^-7
        default: return 1.1920929e-7;           // 2^-23
    }
}

// Both backends accumulate in fp32 and round once to the output dtype: results may differ by
// the rounding of that last step (one unit in the last place) plus fp32 reordering noise.
inline double output_tolerance_vs_cpu(sa_dtype dtype) { return 2.0 * dtype_epsilon(dtype) + 1e-5; }

// Compares every element of two views of the same shape; -inf must match exactly.
inline int compare_views(const HostTensor& got, const HostTensor& want, double atol, double rtol,
                  const std::string& label, const char* file, int line) {
    int bad = 0;
    double worst = 0;
    for (int64_t n = 0, e = want.numel(); n < e; ++n) {
        const double g = got.get_at(got.offset_of_linear(n));
        const double w = want.get_at(want.offset_of_linear(n));
        bool ok;
        if (std::isinf(w) || std::isinf(g)) ok = g == w;
        else ok = std::fabs(g - w) <= atol + rtol * std::fabs(w);
        if (!ok) {
            if (bad < 5)
                report_failure(file, line, label + "[" + std::to_string(n) + "] = " + to_text(g) +
                                               ", CPU " + to_text(w));
            ++bad;
        }
        if (std::isfinite(g) && std::isfinite(w)) worst = std::max(worst, std::fabs(g - w));
    }
    if (bad > 0)
        report_failure(file, line, label + ": " + std::to_string(bad) + " of " +
                                       std::to_string(want.numel()) +
                                       " elements differ, worst finite error " + to_text(worst));
    return bad;
}

#define CHECK_VIEWS(got, want, atol, rtol, label) \
    compare_views((got), (want), (atol), (rtol), (label), __FILE__, __LINE__)

// A [B, S, H, D] tensor: contiguous, [B, H, S, D] memory, or rows padded (gaps poisoned).
enum class Layout { Bshd, Bhsd, Padded };

inline HostTensor make_attention_tensor(sa_dtype dtype, int64_t b, int64_t s, int64_t h, int64_t d,
                                 Layout layout) {
    switch (layout) {
        case Layout::Bhsd: return HostTensor::permuted(dtype, {b, s, h, d}, {0, 2, 1, 3});
        case Layout::Padded: {
            const int64_t row = d + 8;
            return HostTensor::strided(dtype, {b, s, h, d}, {s * h * row, h * row, row, 1},
                                       b * s * h * row);
        }
        default: return HostTensor::contiguous(dtype, {b, s, h, d});
    }
}

inline HostTensor random_tensor(sa_dtype dtype, std::vector<int64_t> shape) {
    HostTensor t = HostTensor::contiguous(dtype, std::move(shape));
    t.fill_random();
    return t;
}

inline HostTensor poisoned_like(const HostTensor& t) {
    HostTensor p = HostTensor::strided(t.dtype, t.shape, t.strides, t.storage_elements());
    p.poison();
    return p;
}

inline HostTensor int_tensor(std::vector<int64_t> shape, const std::vector<int32_t>& values) {
    HostTensor t = HostTensor::contiguous(SA_DTYPE_I32, std::move(shape));
    std::memcpy(t.storage.data(), values.data(), values.size() * sizeof(int32_t));
    return t;
}

// Runs one attention call on both backends: `call(q, k, v, out, lse, options)` with CPU tensors
// and then CUDA mirrors (outputs poisoned), and compares out and lse.
template <typename Call>
void compare_attention(HostTensor& q, HostTensor& k, HostTensor& v, HostTensor& out_shape,
                       HostTensor* lse_shape, sa_attention_options options, Call call,
                       const std::string& label, const char* file, int line, double tol = -1) {
    HostTensor cpu_out = poisoned_like(out_shape);
    HostTensor cpu_lse = lse_shape ? poisoned_like(*lse_shape) : HostTensor();
    if (!check_status(call(q.d(), k.d(), v.d(), cpu_out.d(), lse_shape ? cpu_lse.d() : nullptr,
                           &options),
                      SA_OK, ("CPU " + label).c_str(), file, line))
        return;

    DeviceTensor dq(q), dk(k), dv(v);
    HostTensor gpu_out = poisoned_like(out_shape);
    HostTensor gpu_lse = lse_shape ? poisoned_like(*lse_shape) : HostTensor();
    DeviceTensor dout(gpu_out);
    DeviceTensor dlse(lse_shape ? gpu_lse : cpu_out);  // a placeholder when LSE is absent
    if (!check_status(call(dq.d(), dk.d(), dv.d(), dout.d(), lse_shape ? dlse.d() : nullptr,
                           &options),
                      SA_OK, ("CUDA " + label).c_str(), file, line))
        return;
    REQUIRE_OK(sa_cuda_device_synchronize(0));
    dout.download(gpu_out);
    if (tol < 0) tol = output_tolerance_vs_cpu(q.dtype);
    compare_views(gpu_out, cpu_out, tol, 0.0, label + " out", file, line);
    const int outside = count_writes_outside_view(gpu_out);
    if (outside != 0)
        report_failure(file, line, label + ": " + std::to_string(outside) +
                                       " elements written outside the output view");
    if (lse_shape) {
        dlse.download(gpu_lse);
        compare_views(gpu_lse, cpu_lse, 1e-4, 1e-5, label + " lse", file, line);
    }
}

#define COMPARE_ATTENTION(q, k, v, out, lse, options, call, label) \
    compare_attention((q), (k), (v), (out), (lse), (options), (call), (label), __FILE__, __LINE__)
#define COMPARE_ATTENTION_TOL(q, k, v, out, lse, options, call, label, tol) \
    compare_attention((q), (k), (v), (out), (lse), (options), (call), (label), __FILE__, __LINE__, (tol))

inline std::vector<int32_t> random_permutation(int64_t n) {
    std::vector<int32_t> p(static_cast<size_t>(n));
    std::iota(p.begin(), p.end(), 0);
    std::shuffle(p.begin(), p.end(), rng());
    return p;
}



// Random block lists: per (b, h, query block) a random subset of key blocks in random order,
// split between the partial and the full list; entries past each count hold junk.
struct RandomLists {
    HostTensor num, idx, full_num, full_idx;
};

inline RandomLists random_lists(int64_t b, int64_t h, int64_t nq, int64_t nk, double density) {
    RandomLists r;
    std::vector<int32_t> num(b * h * nq), idx(b * h * nq * nk, 12345), full_num(b * h * nq),
        full_idx(b * h * nq * nk, -7);
    for (int64_t row = 0; row < b * h * nq; ++row) {
        std::vector<int32_t> blocks = random_permutation(nk);
        int32_t partial = 0, full = 0;
        for (int32_t j : blocks) {
            if (uniform(0, 1) >= density) continue;
            if (uniform_int(0, 2) == 0) full_idx[row * nk + full++] = j;
            else idx[row * nk + partial++] = j;
        }
        num[row] = partial;
        full_num[row] = full;
    }
    r.num = int_tensor({b, h, nq}, num);
    r.idx = int_tensor({b, h, nq, nk}, idx);
    r.full_num = int_tensor({b, h, nq}, full_num);
    r.full_idx = int_tensor({b, h, nq, nk}, full_idx);
    return r;
}

inline HostTensor permutations(int64_t b, int64_t h, int64_t s) {
    std::vector<int32_t> all;
    for (int64_t i = 0; i < b * h; ++i) {
        const std::vector<int32_t> p = random_permutation(s);
        all.insert(all.end(), p.begin(), p.end());
    }
    return int_tensor({b, h, s}, all);
}


}  // namespace sa_test
