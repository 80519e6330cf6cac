// Host plan of the fast forward: coverage, the choice of loop (wgmma on sm_90a builds and
// compute capability 9.0, mma.sync elsewhere) and tile, the work-tile grid of each family
// (neighborhood box shape, block-list tiles), split-KV and its workspace, then the launch.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>

#include "core/neighborhood_tiles.h"
#include "core/neighborhood_window.h"
#include "cuda/fast/fast_attention.h"
#include "cuda/fast/launch.h"
#include "cuda/runtime.h"

namespace sa::cuda::fast {
namespace {

constexpr int kMaxSplits = 128;
constexpr int kShortQueryRows = 64;  // at or under this the 64-row tile variant runs

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }
bool strides_multiple_of(const RowStrides& s, int64_t m) {
    return s.batch % m == 0 && s.seq % m == 0 && s.head % m == 0;
}
bool head_dim_covered(int64_t d) { return d == 32 || d == 64 || d == 96 || d == 128 || d == 256; }
bool sm90_head_dim(int64_t d) { return d == 64 || d == 128; }

// Compute capability 9.0 (H100, H200) and a build that holds the sm_90a kernels.
bool sm90_device(int device) {
    return sm90_compiled() && device_attribute(device, cudaDevAttrComputeCapabilityMajor) == 9 &&
           device_attribute(device, cudaDevAttrComputeCapabilityMinor) == 0;
}

FamilyKind family_kind(const AttentionProblem& p) {
    switch (p.family) {
        case Family::Dense: return p.causal ? FamilyKind::DenseCausal : FamilyKind::Dense;
        case Family::BlockSparse: return FamilyKind::BlockSparse;
        case Family::Neighborhood:
            return p.neighborhood.rank == 1 ? FamilyKind::Neighborhood1
                   : p.neighborhood.rank == 2 ? FamilyKind::Neighborhood2 : FamilyKind::Neighborhood3;
    }
    throw Error(SA_ERROR_INTERNAL, "fast attention: unknown family");
}

template <int D>
KernelInfo sm80_info_for(FamilyKind f, sa_dtype dtype, Sm80Tile tile, int device) {
    switch (f) {
        case FamilyKind::Dense: return sm80_info<D, FamilyKind::Dense>(dtype, tile, device);
        case FamilyKind::DenseCausal: return sm80_info<D, FamilyKind::DenseCausal>(dtype, tile, device);
        case FamilyKind::BlockSparse: return sm80_info<D, FamilyKind::BlockSparse>(dtype, tile, device);
        case FamilyKind::Neighborhood1: return sm80_info<D, FamilyKind::Neighborhood1>(dtype, tile, device);
        case FamilyKind::Neighborhood2: return sm80_info<D, FamilyKind::Neighborhood2>(dtype, tile, device);
        case FamilyKind::Neighborhood3: return sm80_info<D, FamilyKind::Neighborhood3>(dtype, tile, device);
    }
    throw Error(SA_ERROR_INTERNAL, "fast attention: unknown family");
}

KernelInfo sm80_kernel_info(int64_t head_dim, FamilyKind f, sa_dtype dtype, Sm80Tile tile, int device) {
    switch (head_dim) {
        case 32: return sm80_info_for<32>(f, dtype, tile, device);
        case 64: return sm80_info_for<64>(f, dtype, tile, device);
        case 96: return sm80_info_for<96>(f, dtype, tile, device);
        case 128: return sm80_info_for<128>(f, dtype, tile, device);
        case 256: return sm80_info_for<256>(f, dtype, tile, device);
        default: throw Error(SA_ERROR_INTERNAL, "fast attention: head_dim " + std::to_string(head_dim) + " not covered");
    }
}

template <int D>
void sm80_run_for(const FwdParams& params, FamilyKind f, sa_dtype dtype, Sm80Tile tile, int device, cudaStream_t s) {
    switch (f) {
        case FamilyKind::Dense: return sm80_run<D, FamilyKind::Dense>(params, dtype, tile, device, s);
        case FamilyKind::DenseCausal: return sm80_run<D, FamilyKind::DenseCausal>(params, dtype, tile, device, s);
        case FamilyKind::BlockSparse: return sm80_run<D, FamilyKind::BlockSparse>(params, dtype, tile, device, s);
        case FamilyKind::Neighborhood1: return sm80_run<D, FamilyKind::Neighborhood1>(params, dtype, tile, device, s);
        case FamilyKind::Neighborhood2: return sm80_run<D, FamilyKind::Neighborhood2>(params, dtype, tile, device, s);
        case FamilyKind::Neighborhood3: return sm80_run<D, FamilyKind::Neighborhood3>(params, dtype, tile, device, s);
    }
}

template <int D>
void sm90_run_for(const FwdParams& params, FamilyKind f, sa_dtype dtype, int device, cudaStream_t s) {
    switch (f) {
        case FamilyKind::Dense: return sm90_run<D, FamilyKind::Dense>(params, dtype, device, s);
        case FamilyKind::DenseCausal: return sm90_run<D, FamilyKind::DenseCausal>(params, dtype, device, s);
        case FamilyKind::BlockSparse: return sm90_run<D, FamilyKind::BlockSparse>(params, dtype, device, s);
        case FamilyKind::Neighborhood1: return sm90_run<D, FamilyKind::Neighborhood1>(params, dtype, device, s);
        case FamilyKind::Neighborhood2: return sm90_run<D, FamilyKind::Neighborhood2>(params, dtype, device, s);
        case FamilyKind::Neighborhood3: return sm90_run<D, FamilyKind::Neighborhood3>(params, dtype, device, s);
    }
}

struct Plan {
    bool sm90 = false;  // the Hopper wgmma loop (no split, no packing)
    FamilyKind family = FamilyKind::Dense;
    Sm80Tile tile = Sm80Tile::Full;
    int block_m = 0, block_n = 0;
    int num_m_blocks = 0;
    bool reverse_m = false;
    int pack_group = 1;  // dense: query heads sharing a kv head packed into the tile rows
    int num_splits = 1;
    size_t workspace_bytes = 0;
    NeighborhoodTileShape boxes{};
};

// Splits the key range when the (query tile, head, batch) grid alone would leave most of the
// GPU idle: pick the fewest splits whose wave efficiency is within 85% of the best.
int choose_splits(int64_t blocks, int64_t key_tiles, int64_t slots) {
    if (blocks >= (slots * 4) / 5) return 1;
    const int64_t max_splits = std::min<int64_t>(kMaxSplits, key_tiles / 2);
    if (max_splits <= 1) return 1;
    auto efficiency = [&](int64_t s) {
        const int64_t n = blocks * s;
        const int64_t waves = (n + slots - 1) / slots;
        return double(n) / double(waves * slots);
    };
    double best = 0.0;
    for (int64_t s = 1; s <= max_splits; ++s) best = std::max(best, efficiency(s));
    for (int64_t s = 1; s <= max_splits; ++s)
        if (efficiency(s) >= 0.85 * best) return int(s);
    return 1;
}

bool use_sm90(const AttentionProblem& p) {
    return p.kernel_choice == SA_KERNEL_AUTO && sm90_head_dim(p.head_dim) && sm90_device(p.device_id);
}
// Dense calls also run head dim 256 on the wgmma loop (64-key tiles, sm90_dense.cu).
bool use_sm90_dense(const AttentionProblem& p) {
    return p.kernel_choice == SA_KERNEL_AUTO && (sm90_head_dim(p.head_dim) || p.head_dim == 256) &&
           sm90_device(p.device_id);
}

Plan dense_plan(const AttentionProblem& p) {
    Plan plan;
    plan.family = family_kind(p);
    // Short queries with GQA: the group's query heads fill one tile's rows so each K/V tile is
    // read once per kv head instead of once per query head.
    const int64_t group = p.heads_q / p.heads_kv;
    plan.pack_group = group > 1 && group <= 65536 && p.seqlen_q <= kShortQueryRows ? int(group) : 1;
    const int64_t packed_rows = p.seqlen_q * plan.pack_group;
    const int64_t grid_heads = plan.pack_group > 1 ? p.heads_kv : p.heads_q;
    plan.tile = packed_rows <= kShortQueryRows ? Sm80Tile::Small : Sm80Tile::Full;
    const KernelInfo info = sm80_kernel_info(p.head_dim, plan.family, p.dtype, plan.tile, p.device_id);
    plan.block_m = info.block_m;
    plan.block_n = info.block_n;
    plan.num_m_blocks = int((packed_rows + info.block_m - 1) / info.block_m);
    plan.reverse_m = p.causal;
    const int64_t key_tiles = (p.seqlen_k + info.block_n - 1) / info.block_n;
    const int64_t blocks = int64_t(plan.num_m_blocks) * p.batch * grid_heads;
    if (p.num_splits == 1) {
        plan.num_splits = 1;
    } else if (p.num_splits > 1) {
        plan.num_splits = int(std::clamp<int64_t>(p.num_splits, 1, std::min<int64_t>(kMaxSplits, key_tiles)));
    } else {
        const int64_t slots = int64_t(device_attribute(p.device_id, cudaDevAttrMultiProcessorCount)) *
                              std::max(1, info.blocks_per_sm);
        plan.num_splits = choose_splits(blocks, key_tiles, slots);
    }
    // Long query tiles on Hopper go to the wgmma loop unless the caller asked for the portable
    // one; it covers what the split-free, unpacked mma.sync launch covers.
    if (plan.num_splits == 1 && plan.tile == Sm80Tile::Full && plan.pack_group == 1 && use_sm90_dense(p)) {
        plan.sm90 = true;
        plan.block_m = kSm90Block;
        plan.block_n = p.head_dim > 128 ? kSm90Block / 2 : kSm90Block;
        plan.num_m_blocks = int((p.seqlen_q + kSm90Block - 1) / kSm90Block);
    }
    if (plan.num_splits > 1) {
        const size_t rows = size_t(p.batch) * size_t(p.heads_q) * size_t(p.seqlen_q) * size_t(plan.num_splits);
        plan.workspace_bytes = rows * size_t(p.head_dim + 1) * sizeof(float);
    }
    return plan;
}

// Block lists: a query tile lies inside one query block and a key block is one or two key
// tiles; the wgmma loop takes 128 x 128 blocks, the mma.sync loop its full tile where the
// blocks allow and 64 x 64 tiles otherwise. Causal lists grow with the query block: the last
// blocks go first.
Plan block_sparse_plan(const AttentionProblem& p) {
    Plan plan;
    plan.family = FamilyKind::BlockSparse;
    const BlockSparseLists& bs = p.block_sparse;
    if (use_sm90(p) && bs.block_q == kSm90Block && bs.block_k == kSm90Block) {
        plan.sm90 = true;
        plan.block_m = plan.block_n = kSm90Block;
    } else {
        KernelInfo info = sm80_kernel_info(p.head_dim, plan.family, p.dtype, Sm80Tile::Full, p.device_id);
        plan.tile = Sm80Tile::Full;
        if (bs.block_q % info.block_m != 0 || bs.block_k % info.block_n != 0 || bs.block_k / info.block_n > 2) {
            plan.tile = Sm80Tile::Tile64;
            info = sm80_kernel_info(p.head_dim, plan.family, p.dtype, Sm80Tile::Tile64, p.device_id);
        }
        plan.block_m = info.block_m;
        plan.block_n = info.block_n;
    }
    plan.num_m_blocks = int((p.seqlen_q + plan.block_m - 1) / plan.block_m);
    plan.reverse_m = p.causal;
    return plan;
}

int32_t log2_exact(int v) {
    int32_t s = 0;
    while ((1 << s) < v) ++s;
    return s;
}

// Neighborhood: the query and key boxes that visit the fewest tiles (masked ones weighted by
// kNeighborhoodMaskCost), one grid of boxes per dilation group.
Plan neighborhood_plan(const AttentionProblem& p) {
    Plan plan;
    plan.family = family_kind(p);
    const NeighborhoodGeometry& g = p.neighborhood;
    // Every rank runs on the wgmma loop where it is built. The 3-D kernel at D128 holds 88
    // bytes of its box state on the stack (nvcc 13) and is still faster masked than the 64 x 64
    // mma.sync tiles: 105.0 against 120.7 ms on the 3-D w18x24x24 case (bench/NOTES.md).
    if (use_sm90(p)) {
        plan.sm90 = true;
        plan.block_m = plan.block_n = kSm90Block;
    } else {
        plan.tile = Sm80Tile::Tile64;
        const KernelInfo info = sm80_kernel_info(p.head_dim, plan.family, p.dtype, plan.tile, p.device_id);
        plan.block_m = info.block_m;
        plan.block_n = info.block_n;
    }
    plan.boxes = best_neighborhood_tiles(g, log2_exact(plan.block_m), log2_exact(plan.block_n), kNeighborhoodMaskCost);
    int64_t tiles = 1;
    for (int d = 0; d < 3; ++d) {
        const int64_t longest = dilation_group_length(g.grid[d], g.dilation[d], 0);
        tiles *= int64_t(g.dilation[d]) * ((longest + (int64_t(1) << plan.boxes.q_shift[d]) - 1) >> plan.boxes.q_shift[d]);
    }
    if (tiles > INT_MAX) throw Error(SA_ERROR_INTERNAL, "fast neighborhood: too many work tiles");
    plan.num_m_blocks = int(tiles);
    return plan;
}

Plan make_plan(const AttentionProblem& p) {
    switch (p.family) {
        case Family::Dense: return dense_plan(p);
        case Family::BlockSparse: return block_sparse_plan(p);
        case Family::Neighborhood: return neighborhood_plan(p);
    }
    throw Error(SA_ERROR_INTERNAL, "fast attention: unknown family");
}

FwdParams make_params(const AttentionProblem& p, const Plan& plan) {
    FwdParams params{};
    params.q = p.q;
    params.k = p.k;
    params.v = p.v;
    params.out = p.out;
    params.lse = p.lse;
    params.q_batch = p.q_strides.batch; params.q_seq = p.q_strides.seq; params.q_head = p.q_strides.head;
    params.k_batch = p.k_strides.batch; params.k_seq = p.k_strides.seq; params.k_head = p.k_strides.head;
    params.v_batch = p.v_strides.batch; params.v_seq = p.v_strides.seq; params.v_head = p.v_strides.head;
    params.o_batch = p.out_strides.batch; params.o_seq = p.out_strides.seq; params.o_head = p.out_strides.head;
    params.lse_batch = p.lse_strides.batch; params.lse_head = p.lse_strides.head; params.lse_seq = p.lse_strides.seq;
    params.batch = int32_t(p.batch);
    params.heads_q = int32_t(p.heads_q);
    params.group = int32_t(p.heads_q / p.heads_kv);
    params.seqlen_q = int32_t(p.seqlen_q);
    params.seqlen_k = int32_t(p.seqlen_k);
    params.cu_seqlens_q = p.cu_seqlens_q;
    params.cu_seqlens_k = p.cu_seqlens_k;
    params.causal = p.causal ? 1 : 0;
    params.scale = p.scale;
    params.scale_log2 = p.scale * 1.4426950408889634f;
    params.pack_group = plan.pack_group;
    params.grid_heads = int32_t(plan.pack_group > 1 ? p.heads_kv : p.heads_q);
    params.num_m_blocks = plan.num_m_blocks;
    params.reverse_m = plan.reverse_m ? 1 : 0;
    params.num_splits = plan.num_splits;

    if (p.family == Family::BlockSparse) {
        const BlockSparseLists& bs = p.block_sparse;
        BlockLists& L = params.lists;
        L.block_q = bs.block_q;
        L.block_k = bs.block_k;
        L.num_k_blocks = bs.num_k_blocks;
        L.num = bs.kv_num_blocks;
        L.idx = bs.kv_indices;
        L.capacity = bs.capacity;
        L.num_b = bs.num_strides.batch; L.num_h = bs.num_strides.head; L.num_row = bs.num_strides.row;
        L.idx_b = bs.idx_strides.batch; L.idx_h = bs.idx_strides.head; L.idx_row = bs.idx_strides.row;
        L.full_num = bs.full_num_blocks;
        L.full_idx = bs.full_indices;
        L.full_capacity = bs.full_capacity;
        L.full_num_b = bs.full_num_strides.batch; L.full_num_h = bs.full_num_strides.head;
        L.full_num_row = bs.full_num_strides.row;
        L.full_idx_b = bs.full_idx_strides.batch; L.full_idx_h = bs.full_idx_strides.head;
        L.full_idx_row = bs.full_idx_strides.row;
        L.key_perm = bs.key_perm;
        L.key_perm_b = bs.key_perm_strides.batch; L.key_perm_h = bs.key_perm_strides.head;
        L.key_perm_row = bs.key_perm_strides.row;
        L.query_perm = bs.query_perm;
        L.query_perm_b = bs.query_perm_strides.batch; L.query_perm_h = bs.query_perm_strides.head;
        L.query_perm_row = bs.query_perm_strides.row;
    }
    if (p.family == Family::Neighborhood) {
        const NeighborhoodGeometry& g = p.neighborhood;
        NeighborhoodTiles& na = params.na;
        for (int d = 0; d < 3; ++d) {
            na.grid[d] = g.grid[d];
            na.kernel[d] = g.kernel[d];
            na.dilation[d] = g.dilation[d];
            na.stride[d] = g.stride[d];
            na.causal[d] = g.causal[d];
            na.q_shift[d] = plan.boxes.q_shift[d];
            na.k_shift[d] = plan.boxes.k_shift[d];
            const int32_t longest = dilation_group_length(g.grid[d], g.dilation[d], 0);
            na.q_tiles[d] = int32_t((int64_t(longest) + (int64_t(1) << na.q_shift[d]) - 1) >> na.q_shift[d]);
        }
    }
    return params;
}

void launch(const FwdParams& params, const AttentionProblem& p, const Plan& plan) {
    auto stream = static_cast<cudaStream_t>(p.stream);
    if (plan.sm90) {
        if (p.head_dim == 256) {  // dense families only (plan.cpp's dense_plan)
            if (plan.family == FamilyKind::DenseCausal)
                return sm90_run<256, FamilyKind::DenseCausal>(params, p.dtype, p.device_id, stream);
            if (plan.family == FamilyKind::Dense) return sm90_run<256, FamilyKind::Dense>(params, p.dtype, p.device_id, stream);
            throw Error(SA_ERROR_INTERNAL, "fast attention: head_dim 256 runs the wgmma loop for dense calls only");
        }
        if (p.head_dim == 64) return sm90_run_for<64>(params, plan.family, p.dtype, p.device_id, stream);
        return sm90_run_for<128>(params, plan.family, p.dtype, p.device_id, stream);
    }
    switch (p.head_dim) {
        case 32: return sm80_run_for<32>(params, plan.family, p.dtype, plan.tile, p.device_id, stream);
        case 64: return sm80_run_for<64>(params, plan.family, p.dtype, plan.tile, p.device_id, stream);
        case 96: return sm80_run_for<96>(params, plan.family, p.dtype, plan.tile, p.device_id, stream);
        case 128: return sm80_run_for<128>(params, plan.family, p.dtype, plan.tile, p.device_id, stream);
        case 256: return sm80_run_for<256>(params, plan.family, p.dtype, plan.tile, p.device_id, stream);
        default: throw Error(SA_ERROR_INTERNAL, "fast attention: head_dim " + std::to_string(p.head_dim) + " not covered");
    }
}

// Shared-memory, dtype and head-dim conditions of a device.
bool device_covers(int32_t device, sa_dtype dtype, int32_t head_dim) {
    if (dtype != SA_DTYPE_F16 && dtype != SA_DTYPE_BF16) return false;
    if (!head_dim_covered(head_dim)) return false;
    int major = 0, optin_smem = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&optin_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    // The head-dim-256 tiles need about 200 KB of shared memory per block (sm_90 class).
    const int needed = head_dim == 256 ? 202752 : 104448;
    return major >= 8 && optin_smem >= needed;
}

}  // namespace

bool covered(sa_operation op, int32_t device, sa_dtype dtype, int32_t head_dim) {
    if (op != SA_OP_DENSE && op != SA_OP_NEIGHBORHOOD && op != SA_OP_BLOCK_SPARSE) return false;
    return device_covers(device, dtype, head_dim);
}

bool covered(const AttentionProblem& p) {
    if (p.device_type != SA_DEVICE_CUDA) return false;
    if (!device_covers(p.device_id, p.dtype, int32_t(p.head_dim))) return false;
    if (p.heads_kv <= 0 || p.heads_q % p.heads_kv != 0) return false;
    // cp.async moves 16-byte chunks; outputs are written as aligned pairs.
    if (!aligned16(p.q) || !aligned16(p.k) || !aligned16(p.v)) return false;
    if (!strides_multiple_of(p.q_strides, 8) || !strides_multiple_of(p.k_strides, 8) ||
        !strides_multiple_of(p.v_strides, 8))
        return false;
    if (reinterpret_cast<uintptr_t>(p.out) % 4 != 0 || !strides_multiple_of(p.out_strides, 2)) return false;
    if (p.seqlen_q > INT_MAX / 2 || p.seqlen_k > INT_MAX / 2) return false;
    if (p.batch * p.heads_q > INT_MAX || p.batch * p.heads_q * ((p.seqlen_q + 63) / 64) > INT_MAX) return false;
    if (p.family == Family::BlockSparse) {
        const BlockSparseLists& bs = p.block_sparse;
        const bool sizes = (bs.block_q == 64 || bs.block_q == 128) && (bs.block_k == 64 || bs.block_k == 128);
        return sizes && bs.capacity >= 0 && bs.full_capacity >= 0;
    }
    if (p.family == Family::Neighborhood) {
        // Work tiles: every dilation group's query boxes, at most twice the tokens in 64-row boxes.
        return p.batch * p.heads_q * ((2 * p.seqlen_q + 63) / 64) <= INT_MAX;
    }
    return true;
}

size_t workspace_size(const AttentionProblem& p) {
    if (p.family != Family::Dense) return 0;
    DeviceGuard guard(p.device_id);
    return make_plan(p).workspace_bytes;
}

void forward(const AttentionProblem& p) {
    DeviceGuard guard(p.device_id);
    const Plan plan = make_plan(p);
    FwdParams params = make_params(p, plan);
    if (plan.num_splits == 1) return launch(params, p, plan);

    const size_t o_bytes = size_t(plan.num_splits) * size_t(p.batch) * size_t(p.heads_q) * size_t(p.seqlen_q) *
                           size_t(p.head_dim) * sizeof(float);
    auto bind = [&](void* base) {
        params.o_partial = static_cast<float*>(base);
        params.lse_partial = reinterpret_cast<float*>(static_cast<char*>(base) + o_bytes);
    };
    if (p.workspace != nullptr && p.workspace_bytes >= plan.workspace_bytes && aligned16(p.workspace)) {
        bind(p.workspace);
        return launch(params, p, plan);
    }
    // The lease keeps the scratch of this stream locked while the kernels that use it are queued.
    const ScratchLease lease = scratch(p.device_id, p.stream, plan.workspace_bytes);
    bind(lease.data());
    launch(params, p, plan);
}

}  // namespace sa::cuda::fast
