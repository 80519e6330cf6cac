// Template bodies of the mma.sync launches (launch.h), included by each sm80_*_d<D>.cu.
#pragma once
#include "cuda/fast/launch.h"
#include "cuda/fast/mainloop_sm80.cuh"
#include "cuda/runtime.h"

namespace sa::cuda::fast {

template <FamilyKind F>
struct FamilySelect;
template <> struct FamilySelect<FamilyKind::Dense> { using type = DenseSelect<false>; };
template <> struct FamilySelect<FamilyKind::DenseCausal> { using type = DenseSelect<true>; };
template <> struct FamilySelect<FamilyKind::BlockSparse> { using type = BlockSparseSelect; };
template <> struct FamilySelect<FamilyKind::Neighborhood1> { using type = NeighborhoodSelect<1>; };
template <> struct FamilySelect<FamilyKind::Neighborhood2> { using type = NeighborhoodSelect<2>; };
template <> struct FamilySelect<FamilyKind::Neighborhood3> { using type = NeighborhoodSelect<3>; };

template <typename T, typename Traits, typename Select>
struct Sm80Kernel {
    using L = Sm80Layout<Traits, Select>;
    static const void* fn() { return reinterpret_cast<const void*>(&fwd_sm80_kernel<T, Traits, Select>); }
    static KernelInfo info(int device) {
        return {Traits::kBlockM, Traits::kBlockN, prepare_kernel(fn(), L::kSmemBytes, L::kThreads, device)};
    }
    static void launch(const FwdParams& p, int device, cudaStream_t stream) {
        prepare_kernel(fn(), L::kSmemBytes, L::kThreads, device);
        const dim3 grid(unsigned(p.num_m_blocks) * unsigned(p.batch) * unsigned(p.grid_heads), unsigned(p.num_splits));
        fwd_sm80_kernel<T, Traits, Select><<<grid, L::kThreads, L::kSmemBytes, stream>>>(p);
        check_kernel_launch("fast attention (mma.sync) kernel launch");
        if (p.num_splits > 1) {
            const int64_t rows = int64_t(p.batch) * p.heads_q * p.seqlen_q;
            combine_splits_kernel<T, Traits::kHeadDim><<<unsigned((rows + 3) / 4), 128, 0, stream>>>(p);
            check_kernel_launch("fast attention split-KV combine kernel launch");
        }
    }
};

// Calls f(Kernel{}) for the kernel of (dtype, tile); each family instantiates only the tile
// variants it uses (dense: Full and Small; block-sparse: Full and Tile64; neighborhood: Tile64).
template <int D, FamilyKind F, typename Fn>
auto with_sm80_kernel(sa_dtype dtype, Sm80Tile tile, Fn&& f) {
    using Select = typename FamilySelect<F>::type;
    auto by_type = [&](auto type_tag) {
        using T = decltype(type_tag);
        constexpr bool kDense = F == FamilyKind::Dense || F == FamilyKind::DenseCausal;
        if constexpr (kDense) {
            if (tile == Sm80Tile::Small) return f(Sm80Kernel<T, Sm80DenseTraits<D, true>, Select>{});
            return f(Sm80Kernel<T, Sm80DenseTraits<D, false>, Select>{});
        } else if constexpr (F == FamilyKind::BlockSparse) {
            if (tile == Sm80Tile::Tile64) return f(Sm80Kernel<T, Sm80Tile64Traits<D>, Select>{});
            return f(Sm80Kernel<T, Sm80DenseTraits<D, false>, Select>{});
        } else {
            return f(Sm80Kernel<T, Sm80Tile64Traits<D>, Select>{});  // the box state needs the registers
        }
    };
    return dtype == SA_DTYPE_BF16 ? by_type(__nv_bfloat16{}) : by_type(__half{});
}

template <int D, FamilyKind F>
KernelInfo sm80_info(sa_dtype dtype, Sm80Tile tile, int device) {
    return with_sm80_kernel<D, F>(dtype, tile, [&](auto kernel) { return decltype(kernel)::info(device); });
}

template <int D, FamilyKind F>
void sm80_run(const FwdParams& p, sa_dtype dtype, Sm80Tile tile, int device, cudaStream_t stream) {
    with_sm80_kernel<D, F>(dtype, tile, [&](auto kernel) {
        decltype(kernel)::launch(p, device, stream);
        return 0;
    });
}

#define SA_INSTANTIATE_SM80(D, F)                                                 \
    template KernelInfo sm80_info<D, F>(sa_dtype, Sm80Tile, int);                \
    template void sm80_run<D, F>(const FwdParams&, sa_dtype, Sm80Tile, int, cudaStream_t);

}  // namespace sa::cuda::fast
