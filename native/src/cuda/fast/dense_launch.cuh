// Template bodies of dense_launch.h, included by each dense_d<D>.cu.
#pragma once
#include "cuda/common/check.h"
#include "cuda/fast/dense_kernel.cuh"
#include "cuda/fast/dense_launch.h"

namespace sa::cuda::fast {

template <typename T, int D, bool kSmallM, bool kCausal>
struct DenseKernel {
    using Traits = DenseTileTraits<D, kSmallM>;
    using Layout = DenseLayout<Traits>;
    static const void* fn() {
        return reinterpret_cast<const void*>(&dense_forward_kernel<T, Traits, kCausal>);
    }
    static DenseKernelInfo info(int device) {
        return {Traits::kBlockM, Traits::kBlockN,
                prepare_kernel(fn(), Layout::kSmemBytes, Layout::kThreads, device)};
    }
    static void launch(const DenseParams& p, cudaStream_t stream) {
        const dim3 grid(unsigned(p.num_m_blocks) * unsigned(p.batch) * unsigned(p.grid_heads),
                        unsigned(p.num_splits));
        dense_forward_kernel<T, Traits, kCausal>
            <<<grid, Layout::kThreads, Layout::kSmemBytes, stream>>>(p);
        check_launch("fast dense forward kernel launch");
        if (p.num_splits > 1) {
            const int64_t rows = int64_t(p.batch) * p.heads_q * p.seqlen_q;
            dense_combine_kernel<T, D><<<unsigned((rows + 3) / 4), 128, 0, stream>>>(p);
            check_launch("fast dense split-KV combine kernel launch");
        }
    }
};

// Calls f(Kernel{}) for the kernel matching the runtime flags.
template <int D, typename F>
auto with_dense_kernel(sa_dtype dtype, bool small_m, bool causal, F&& f) {
    auto by_type = [&](auto type_tag) {
        using T = decltype(type_tag);
        if (small_m)
            return causal ? f(DenseKernel<T, D, true, true>{}) : f(DenseKernel<T, D, true, false>{});
        return causal ? f(DenseKernel<T, D, false, true>{}) : f(DenseKernel<T, D, false, false>{});
    };
    return dtype == SA_DTYPE_BF16 ? by_type(__nv_bfloat16{}) : by_type(__half{});
}

template <int D>
DenseKernelInfo dense_kernel_info(sa_dtype dtype, bool small_m, bool causal, int device) {
    return with_dense_kernel<D>(dtype, small_m, causal,
                                [&](auto kernel) { return decltype(kernel)::info(device); });
}

template <int D>
void dense_run(const DenseParams& p, sa_dtype dtype, bool small_m, bool causal,
               cudaStream_t stream) {
    with_dense_kernel<D>(dtype, small_m, causal, [&](auto kernel) {
        decltype(kernel)::launch(p, stream);
        return 0;
    });
}

#define SA_INSTANTIATE_DENSE_HEAD_DIM(D)                                                   \
    template DenseKernelInfo dense_kernel_info<D>(sa_dtype, bool, bool, int);             \
    template void dense_run<D>(const DenseParams&, sa_dtype, bool, bool, cudaStream_t);

}  // namespace sa::cuda::fast
