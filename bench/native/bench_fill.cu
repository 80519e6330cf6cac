// Device-side random fills for the benchmark (large K/V would take seconds on the host).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>

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
