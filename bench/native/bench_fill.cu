// Device-side random fills for the benchmark (large K/V would take seconds on the host).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "bench_fill.h"

namespace {
__device__ uint64_t mix(uint64_t x) {  // splitmix64 finalizer
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
// Roughly standard-normal values: the sum of four uniforms, centred and scaled.
__device__ float normalish(uint64_t seed, uint64_t i) {
    const uint64_t r = mix(seed * 0x100000001b3ull + i);
    float s = 0.f;
    for (int k = 0; k < 4; ++k) s += float((r >> (16 * k)) & 0xffff) * (1.f / 65536.f);
    return (s - 2.f) * 1.7320508f;
}
__global__ void fill_kernel(void* data, uint64_t n, int is_bf16, uint64_t seed) {
    for (uint64_t i = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; i < n;
         i += uint64_t(gridDim.x) * blockDim.x) {
        const float v = normalish(seed, i);
        if (is_bf16)
            static_cast<__nv_bfloat16*>(data)[i] = __float2bfloat16_rn(v);
        else
            static_cast<__half*>(data)[i] = __float2half_rn(v);
    }
}
}  // namespace

cudaError_t bench_fill_random(void* data, uint64_t count, bool bf16, uint64_t seed) {
    fill_kernel<<<1024, 256>>>(data, count, bf16 ? 1 : 0, seed);
    return cudaGetLastError();
}

// Structured attention inputs -------------------------------------------------------------------
namespace {
constexpr int kLocalPairs = 6;  // (cos, sin) pairs of the local pattern
__constant__ float kLocalPeriods[kLocalPairs] = {11.f, 19.f, 37.f, 71.f, 137.f, 263.f};

__global__ void structured_kernel(__nv_bfloat16* q, __nv_bfloat16* k, __nv_bfloat16* v,
                                  StructuredFill f) {
    const uint64_t n = uint64_t(f.seqlen) * f.heads * f.head_dim;
    const float needle_amp = sqrtf(f.needle_logit / f.scale);
    const float sink_amp = sqrtf(f.sink_logit / f.scale);
    const float local_amp = sqrtf(f.local_logit / (f.scale * kLocalPairs));
    for (uint64_t i = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; i < n;
         i += uint64_t(gridDim.x) * blockDim.x) {
        const int64_t d = int64_t(i % f.head_dim), h = int64_t((i / f.head_dim) % f.heads);
        const int64_t s = int64_t(i / (uint64_t(f.head_dim) * f.heads));
        float qv = normalish(f.seed, i) * f.noise, kv = normalish(f.seed + 1, i) * f.noise;
        const float vv = normalish(f.seed + 2, i);
        if (d < 2 * kLocalPairs) {
            const float angle = 6.2831853f * float(s) / kLocalPeriods[d / 2];
            const float c = (d % 2 == 0 ? cosf(angle) : sinf(angle)) * local_amp;
            qv += c;
            kv += c;
        } else if (d == 2 * kLocalPairs) {
            const uint64_t r = mix(f.seed * 0x9e37ull + uint64_t(h) * 0x100000001b3ull + uint64_t(s));
            const bool needle = s >= f.sink_tokens &&
                                double(r >> 11) * (1.0 / 9007199254740992.0) < f.needle_fraction;
            qv += needle_amp;
            if (needle) kv += needle_amp;
        } else if (d == 2 * kLocalPairs + 1) {
            qv += sink_amp;
            if (s < f.sink_tokens) kv += sink_amp;
        }
        q[i] = __float2bfloat16_rn(qv);
        k[i] = __float2bfloat16_rn(kv);
        v[i] = __float2bfloat16_rn(vv);
    }
}

__device__ double block_sum(double x, double* shared) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    __syncthreads();
    if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = x;
    __syncthreads();
    double total = 0;
    for (int w = 0; w < int(blockDim.x / 32); ++w) total += shared[w];
    return total;
}

// sums[0..4] += |a-b|, |b|, a.b, a.a, b.b over bf16 elements.
__global__ void compare_kernel(const __nv_bfloat16* a, const __nv_bfloat16* b, uint64_t n, double* sums) {
    __shared__ double shared[32];
    double acc[5] = {0, 0, 0, 0, 0};
    for (uint64_t i = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; i < n;
         i += uint64_t(gridDim.x) * blockDim.x) {
        const double x = __bfloat162float(a[i]), y = __bfloat162float(b[i]);
        acc[0] += fabs(x - y);
        acc[1] += fabs(y);
        acc[2] += x * y;
        acc[3] += x * x;
        acc[4] += y * y;
    }
    for (int e = 0; e < 5; ++e) {
        const double total = block_sum(acc[e], shared);
        if (threadIdx.x == 0) atomicAdd(sums + e, total);
    }
}

// sums[0] += exp(lse_sparse - lse_dense) (the dense attention mass the sparse call covers),
// sums[1] = min of it (as an ordered int over non-negative floats), sums[2] += rows below 0.9.
__global__ void mass_kernel(const float* lse_sparse, const float* lse_dense, uint64_t n, double* sums,
                            unsigned int* min_bits) {
    __shared__ double shared[32];
    double acc = 0, low = 0;
    float mn = 1e30f;
    for (uint64_t i = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; i < n;
         i += uint64_t(gridDim.x) * blockDim.x) {
        const float m = expf(lse_sparse[i] - lse_dense[i]);
        acc += m;
        low += m < 0.9f ? 1.0 : 0.0;
        mn = fminf(mn, m);
    }
    const double total = block_sum(acc, shared);
    const double lows = block_sum(low, shared);
    if (threadIdx.x == 0) {
        atomicAdd(sums, total);
        atomicAdd(sums + 1, lows);
    }
    atomicMin(min_bits, __float_as_uint(fmaxf(mn, 0.f)));
}
}  // namespace

cudaError_t bench_fill_structured(void* q, void* k, void* v, const StructuredFill& fill) {
    structured_kernel<<<2048, 256>>>(static_cast<__nv_bfloat16*>(q), static_cast<__nv_bfloat16*>(k),
                                     static_cast<__nv_bfloat16*>(v), fill);
    return cudaGetLastError();
}

cudaError_t bench_accuracy(const void* sparse_out, const void* dense_out, uint64_t count,
                           const float* sparse_lse, const float* dense_lse, uint64_t rows,
                           AccuracyMetrics* metrics) {
    double* sums = nullptr;
    unsigned int* min_bits = nullptr;
    cudaError_t e = cudaMalloc(&sums, 8 * sizeof(double));
    if (e != cudaSuccess) return e;
    e = cudaMalloc(&min_bits, sizeof(unsigned int));
    if (e != cudaSuccess) return cudaFree(sums), e;
    cudaMemset(sums, 0, 8 * sizeof(double));
    const float big = 1e30f;
    cudaMemcpy(min_bits, &big, sizeof big, cudaMemcpyHostToDevice);
    compare_kernel<<<1024, 256>>>(static_cast<const __nv_bfloat16*>(sparse_out),
                                  static_cast<const __nv_bfloat16*>(dense_out), count, sums);
    mass_kernel<<<1024, 256>>>(sparse_lse, dense_lse, rows, sums + 5, min_bits);
    double host[8];
    unsigned int bits = 0;
    e = cudaMemcpy(host, sums, sizeof host, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess) e = cudaMemcpy(&bits, min_bits, sizeof bits, cudaMemcpyDeviceToHost);
    cudaFree(sums);
    cudaFree(min_bits);
    if (e != cudaSuccess) return e;
    float mn;
    memcpy(&mn, &bits, sizeof mn);
    metrics->rel_l1 = host[1] > 0 ? host[0] / host[1] : 0;
    metrics->cosine = host[3] > 0 && host[4] > 0 ? host[2] / sqrt(host[3] * host[4]) : 0;
    metrics->mass_mean = rows ? host[5] / double(rows) : 0;
    metrics->rows_below_90 = rows ? host[6] / double(rows) : 0;
    metrics->mass_min = mn;
    return cudaGetLastError();
}
