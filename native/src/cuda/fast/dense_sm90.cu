// Launch side of the Hopper (wgmma) dense forward: head dims 64 and 128, fp16 and bf16,
// causal or not. The kernels hold sm_90a code only when the library is built for that target.
#include <string>

#include "cuda/common/check.h"
#include "cuda/fast/dense_launch.h"
#include "cuda/fast/dense_sm90_kernel.cuh"

namespace sa::cuda::fast {
namespace {

template <typename T, int D, bool kCausal>
struct Sm90Kernel {
    using Tr = Sm90TileTraits<D>;
    static const void* fn() { return reinterpret_cast<const void*>(&dense_forward_sm90_kernel<T, D, kCausal>); }
    static void launch(const DenseParams& p, int device, cudaStream_t stream) {
        prepare_kernel(fn(), Tr::kSmemBytes, Tr::kThreads, device);
        const dim3 grid(unsigned(p.num_m_blocks) * unsigned(p.batch) * unsigned(p.heads_q));
        dense_forward_sm90_kernel<T, D, kCausal><<<grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(p);
        check_launch("fast dense forward (sm_90a) kernel launch");
    }
};

template <int D>
void run_head_dim(const DenseParams& p, sa_dtype dtype, bool causal, int device, cudaStream_t stream) {
    if (dtype == SA_DTYPE_BF16) {
        if (causal) Sm90Kernel<__nv_bfloat16, D, true>::launch(p, device, stream);
        else Sm90Kernel<__nv_bfloat16, D, false>::launch(p, device, stream);
    } else {
        if (causal) Sm90Kernel<__half, D, true>::launch(p, device, stream);
        else Sm90Kernel<__half, D, false>::launch(p, device, stream);
    }
}

}  // namespace

bool dense_sm90_compiled() {
#ifdef SPARSEATTN_HAVE_SM90A
    return true;
#else
    return false;
#endif
}

bool dense_sm90_head_dim(int64_t head_dim) { return head_dim == 64 || head_dim == 128; }

void dense_sm90_run(const DenseParams& p, sa_dtype dtype, int64_t head_dim, bool causal, int device,
                    cudaStream_t stream) {
    if (head_dim == 64) return run_head_dim<64>(p, dtype, causal, device, stream);
    if (head_dim == 128) return run_head_dim<128>(p, dtype, causal, device, stream);
    throw Error(SA_ERROR_INTERNAL, "fast dense (sm_90a): head_dim " + std::to_string(head_dim) + " not covered");
}

}  // namespace sa::cuda::fast
