// Marks functions shared by host code and CUDA kernels (one source of truth per rule).
#pragma once
#if defined(__CUDACC__)
#define SA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define SA_HOST_DEVICE inline
#endif
