// Template body of the wgmma launches (launch.h), included by sm90_dense.cu and sm90_sparse.cu.
// The kernels hold sm_90a code only when the library is built for that target.
#pragma once
#include "cuda/fast/launch.h"
#include "cuda/fast/launch_sm80.cuh"
#include "cuda/fast/mainloop_sm90.cuh"
#include "cuda/runtime.h"

namespace sa::cuda::fast {

template <int D, FamilyKind F>
void sm90_run(const FwdParams& p, sa_dtype dtype, int device, cudaStream_t stream) {
    using Select = typename FamilySelect<F>::type;
    using Lay = Sm90Layout<D, Select>;
    auto launch = [&](auto type_tag) {
        using T = decltype(type_tag);
        const void* fn = reinterpret_cast<const void*>(&fwd_sm90_kernel<T, D, Select>);
        prepare_kernel(fn, Lay::kSmemBytes, Lay::kThreads, device);
        const dim3 grid(unsigned(p.num_m_blocks) * unsigned(p.batch) * unsigned(p.grid_heads));
        fwd_sm90_kernel<T, D, Select><<<grid, Lay::kThreads, Lay::kSmemBytes, stream>>>(p);
        check_kernel_launch("fast attention (sm_90a) kernel launch");
    };
    if (dtype == SA_DTYPE_BF16) launch(__nv_bfloat16{});
    else launch(__half{});
}

#define SA_INSTANTIATE_SM90(D, F) template void sm90_run<D, F>(const FwdParams&, sa_dtype, int, cudaStream_t);

}  // namespace sa::cuda::fast
