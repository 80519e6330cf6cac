// Per-head-dim entry points of the fast dense kernels; each is instantiated in its own
// translation unit (dense_d<D>.cu) so the kernels build in parallel.
#pragma once
#include <cuda_runtime.h>
#include "cuda/fast/dense_params.h"
#include "sparseattn/sparseattn.h"

namespace sa::cuda::fast {

struct DenseKernelInfo {
    int block_m;
    int block_n;
    int blocks_per_sm;  // occupancy of the main kernel on the device
};

// Selects the kernel for (dtype, short-query variant, causal), raises its shared-memory limit
// on the current device once, and reports its tile sizes and occupancy.
template <int D>
DenseKernelInfo dense_kernel_info(sa_dtype dtype, bool small_m, bool causal, int device);

// Launches the main kernel (grid: m blocks x batch x grid heads, splits) and, when
// p.num_splits > 1, the combine kernel.
template <int D>
void dense_run(const DenseParams& p, sa_dtype dtype, bool small_m, bool causal,
               cudaStream_t stream);

// The Hopper (wgmma) kernels: whether this build holds their sm_90a code, which head dims they
// cover, and their launch (128-row query tiles, no split, no GQA row packing).
bool dense_sm90_compiled();
bool dense_sm90_head_dim(int64_t head_dim);
constexpr int kSm90BlockM = 128;
void dense_sm90_run(const DenseParams& p, sa_dtype dtype, int64_t head_dim, bool causal, int device,
                    cudaStream_t stream);

// Sets the dynamic shared-memory limit of `kernel` on `device` once and caches its occupancy.
int prepare_kernel(const void* kernel, size_t smem_bytes, int threads, int device);

}  // namespace sa::cuda::fast
