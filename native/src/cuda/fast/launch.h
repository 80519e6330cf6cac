// Launch entry points of the fast forward kernels, one instantiation unit per (loop, family
// group, head dim) so they build in parallel (sm80_*_d<D>.cu, sm90_*.cu).
#pragma once
#include <cuda_runtime.h>

#include "cuda/fast/params.h"
#include "sparseattn/sparseattn.h"

namespace sa::cuda::fast {

enum class FamilyKind { Dense, DenseCausal, BlockSparse, Neighborhood1, Neighborhood2, Neighborhood3 };

// mma.sync tile variants: Full (128-row query tiles), Small (64-row: short queries), Tile64
// (64 x 64: block-sparse blocks of 64).
enum class Sm80Tile { Full, Small, Tile64 };

struct KernelInfo {
    int block_m;
    int block_n;
    int blocks_per_sm;  // occupancy of the main kernel on the device
};

// Tile sizes of a kernel without touching a device (planning).
KernelInfo sm80_tile_shape(int head_dim, Sm80Tile tile);

// Selects the mma.sync kernel, raises its shared-memory limit on `device` once, reports its
// tiles and occupancy.
template <int D, FamilyKind F>
KernelInfo sm80_info(sa_dtype dtype, Sm80Tile tile, int device);
// Launches it (grid: work tiles x batch x grid heads, splits) and, when p.num_splits > 1, the
// combine kernel.
template <int D, FamilyKind F>
void sm80_run(const FwdParams& p, sa_dtype dtype, Sm80Tile tile, int device, cudaStream_t stream);

// The wgmma kernels (128 x 128 tiles, 128 x 64 at head dim 256; no split, no GQA row packing): whether this build holds
// their sm_90a code, and their launch.
bool sm90_compiled();
constexpr int kSm90Block = 128;
template <int D, FamilyKind F>
void sm90_run(const FwdParams& p, sa_dtype dtype, int device, cudaStream_t stream);

}  // namespace sa::cuda::fast
