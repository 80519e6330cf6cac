// Element conversions between storage dtypes and fp32 for the simple (non tensor-core) kernels.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "sparseattn/sparseattn.h"

namespace sa::cuda {

__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(float x) { return x; }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }

// Runtime-dtype access for kernels whose operands may each have their own float dtype.
__device__ __forceinline__ float load_float(const void* base, int32_t dtype, int64_t index) {
    switch (dtype) {
        case SA_DTYPE_F16: return to_float(static_cast<const __half*>(base)[index]);
        case SA_DTYPE_BF16: return to_float(static_cast<const __nv_bfloat16*>(base)[index]);
        default: return static_cast<const float*>(base)[index];
    }
}

__device__ __forceinline__ void store_float(void* base, int32_t dtype, int64_t index, float x) {
    switch (dtype) {
        case SA_DTYPE_F16: static_cast<__half*>(base)[index] = from_float<__half>(x); break;
        case SA_DTYPE_BF16:
            static_cast<__nv_bfloat16*>(base)[index] = from_float<__nv_bfloat16>(x);
            break;
        default: static_cast<float*>(base)[index] = x; break;
    }
}

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

}  // namespace sa::cuda
