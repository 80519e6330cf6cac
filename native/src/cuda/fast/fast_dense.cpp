// Host side of the fast dense forward: coverage, split-KV planning, workspace, dispatch by
// head dim.
#include "cuda/fast/fast_dense.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <utility>

#include "cuda/common/check.h"
#include "cuda/fast/dense_launch.h"

namespace sa::cuda::fast {
namespace {

constexpr int kMaxSplits = 128;
constexpr int kShortQueryRows = 64;  // at or under this the 64-row tile variant runs

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }
bool strides_multiple_of(const RowStrides& s, int64_t m) {
    return s.batch % m == 0 && s.seq % m == 0 && s.head % m == 0;
}

// Restores the caller's current device on scope exit.
class DeviceGuard {
public:
    explicit DeviceGuard(int device) {
        check_cuda(cudaGetDevice(&previous_), "cudaGetDevice");
        if (previous_ != device) check_cuda(cudaSetDevice(device), "cudaSetDevice");
    }
    ~DeviceGuard() {
        int now = previous_;
        if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
    }
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    int previous_ = 0;
};

// A device attribute, read once per (device, attribute).
int device_attribute(int device, cudaDeviceAttr attr, const char* what) {
    static std::mutex mutex;
    static std::map<std::pair<int, int>, int> cache;
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find({device, int(attr)});
    if (it != cache.end()) return it->second;
    int value = 0;
    check_cuda(cudaDeviceGetAttribute(&value, attr, device), what);
    cache[{device, int(attr)}] = value;
    return value;
}

int multiprocessor_count(int device) {
    return device_attribute(device, cudaDevAttrMultiProcessorCount, "cudaDeviceGetAttribute(multiProcessorCount)");
}

DenseKernelInfo kernel_info(int64_t head_dim, sa_dtype dtype, bool small_m, bool causal,
                            int device) {
    switch (head_dim) {
        case 32: return dense_kernel_info<32>(dtype, small_m, causal, device);
        case 64: return dense_kernel_info<64>(dtype, small_m, causal, device);
        case 96: return dense_kernel_info<96>(dtype, small_m, causal, device);
        case 128: return dense_kernel_info<128>(dtype, small_m, causal, device);
        case 256: return dense_kernel_info<256>(dtype, small_m, causal, device);
        default: throw Error(SA_ERROR_INTERNAL, "fast dense: head_dim " + std::to_string(head_dim) + " not covered");
    }
}

// Compute capability 9.0 (H100, H200) and a build that holds the sm_90a kernels.
bool sm90_device(int device) {
    return dense_sm90_compiled() &&
           device_attribute(device, cudaDevAttrComputeCapabilityMajor, "cudaDeviceGetAttribute(major)") == 9 &&
           device_attribute(device, cudaDevAttrComputeCapabilityMinor, "cudaDeviceGetAttribute(minor)") == 0;
}

struct DensePlan {
    bool sm90;  // the Hopper wgmma kernel (no split, no packing)
    bool small_m;
    bool causal;
    int pack_group;  // query heads sharing a kv head packed into the tile rows (1: not packed)
    int block_m;
    int num_m_blocks;
    int num_splits;
    size_t workspace_bytes;
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

DensePlan make_plan(const AttentionProblem& p) {
    DensePlan plan{};
    // Short queries with GQA: the group's query heads fill one tile's rows so each K/V tile is
    // read once per kv head instead of once per query head.
    const int64_t group = p.heads_q / p.heads_kv;
    plan.pack_group = group > 1 && group <= 65536 && p.seqlen_q <= kShortQueryRows ? int(group) : 1;
    const int64_t packed_rows = p.seqlen_q * plan.pack_group;
    const int64_t grid_heads = plan.pack_group > 1 ? p.heads_kv : p.heads_q;
    plan.small_m = packed_rows <= kShortQueryRows;
    plan.causal = p.causal;
    const DenseKernelInfo info = kernel_info(p.head_dim, p.dtype, plan.small_m, p.causal, p.device_id);
    plan.block_m = info.block_m;
    plan.num_m_blocks = int((packed_rows + info.block_m - 1) / info.block_m);
    const int64_t key_tiles = (p.seqlen_k + info.block_n - 1) / info.block_n;
    const int64_t blocks = int64_t(plan.num_m_blocks) * p.batch * grid_heads;
    if (p.num_splits == 1) {
        plan.num_splits = 1;
    } else if (p.num_splits > 1) {
        plan.num_splits = int(std::clamp<int64_t>(p.num_splits, 1, std::min<int64_t>(kMaxSplits, key_tiles)));
    } else {
        const int64_t slots = int64_t(multiprocessor_count(p.device_id)) * std::max(1, info.blocks_per_sm);
        plan.num_splits = choose_splits(blocks, key_tiles, slots);
    }
    // Long query tiles on Hopper go to the wgmma kernel unless the caller asked for the
    // portable one; it covers what the split-free, unpacked mma.sync launch covers.
    if (plan.num_splits == 1 && !plan.small_m && plan.pack_group == 1 &&
        p.kernel_choice == SA_KERNEL_AUTO && dense_sm90_head_dim(p.head_dim) && sm90_device(p.device_id)) {
        plan.sm90 = true;
        plan.block_m = kSm90BlockM;
        plan.num_m_blocks = int((p.seqlen_q + kSm90BlockM - 1) / kSm90BlockM);
    }
    if (plan.num_splits > 1) {
        const size_t rows = size_t(p.batch) * size_t(p.heads_q) * size_t(p.seqlen_q) * size_t(plan.num_splits);
        plan.workspace_bytes = rows * size_t(p.head_dim + 1) * sizeof(float);
    }
    return plan;
}

// Split-KV scratch per (device, stream): reused while large enough, regrown otherwise; the
// mutex is held through the launches so a regrow never frees a buffer still being launched.
struct WorkspaceCache {
    std::mutex mutex;
    std::map<std::pair<int, void*>, std::pair<void*, size_t>> buffers;
};
WorkspaceCache& workspace_cache() {
    static WorkspaceCache* cache = new WorkspaceCache();  // outlives static destructors
    return *cache;
}
void* cached_workspace(int device, void* stream, size_t bytes) {
    auto& entry = workspace_cache().buffers[{device, stream}];
    if (entry.second >= bytes) return entry.first;
    if (entry.first != nullptr) {
        check_cuda(cudaFree(entry.first), "cudaFree(split-KV workspace)");
        entry = {nullptr, 0};
    }
    void* ptr = nullptr;
    check_cuda(cudaMalloc(&ptr, bytes), "cudaMalloc(split-KV workspace)");
    entry = {ptr, bytes};
    return ptr;
}

void run(const DenseParams& params, const AttentionProblem& p, const DensePlan& plan) {
    auto stream = static_cast<cudaStream_t>(p.stream);
    if (plan.sm90) return dense_sm90_run(params, p.dtype, p.head_dim, plan.causal, p.device_id, stream);
    switch (p.head_dim) {
        case 32: return dense_run<32>(params, p.dtype, plan.small_m, plan.causal, stream);
        case 64: return dense_run<64>(params, p.dtype, plan.small_m, plan.causal, stream);
        case 96: return dense_run<96>(params, p.dtype, plan.small_m, plan.causal, stream);
        case 128: return dense_run<128>(params, p.dtype, plan.small_m, plan.causal, stream);
        case 256: return dense_run<256>(params, p.dtype, plan.small_m, plan.causal, stream);
        default: throw Error(SA_ERROR_INTERNAL, "fast dense: head_dim " + std::to_string(p.head_dim) + " not covered");
    }
}

}  // namespace

int prepare_kernel(const void* kernel, size_t smem_bytes, int threads, int device) {
    static std::mutex mutex;
    static std::map<std::pair<const void*, int>, int> occupancy;
    std::lock_guard<std::mutex> lock(mutex);
    auto it = occupancy.find({kernel, device});
    if (it != occupancy.end()) return it->second;
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem_bytes)),
               "cudaFuncSetAttribute(fast dense shared memory)");
    int blocks = 0;
    check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, smem_bytes),
               "cudaOccupancyMaxActiveBlocksPerMultiprocessor(fast dense)");
    occupancy[{kernel, device}] = blocks;
    return blocks;
}

bool dense_covered(int32_t device, sa_dtype dtype, int32_t head_dim) {
    if (dtype != SA_DTYPE_F16 && dtype != SA_DTYPE_BF16) return false;
    if (head_dim != 32 && head_dim != 64 && head_dim != 96 && head_dim != 128 && head_dim != 256)
        return false;
    int major = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    int optin_smem = 0;
    if (cudaDeviceGetAttribute(&optin_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    // The head-dim-256 tiles need about 200 KB of shared memory per block (sm_90 class).
    const int needed = head_dim == 256 ? 202752 : 104448;
    return major >= 8 && optin_smem >= needed;
}

bool dense_covered(const AttentionProblem& p) {
    if (p.family != Family::Dense || p.device_type != SA_DEVICE_CUDA) return false;
    if (!dense_covered(p.device_id, p.dtype, int32_t(p.head_dim))) return false;
    if (p.heads_kv <= 0 || p.heads_q % p.heads_kv != 0) return false;
    // cp.async moves 16-byte chunks; outputs are written as aligned pairs.
    if (!aligned16(p.q) || !aligned16(p.k) || !aligned16(p.v)) return false;
    if (!strides_multiple_of(p.q_strides, 8) || !strides_multiple_of(p.k_strides, 8) ||
        !strides_multiple_of(p.v_strides, 8))
        return false;
    if (reinterpret_cast<uintptr_t>(p.out) % 4 != 0 || !strides_multiple_of(p.out_strides, 2)) return false;
    if (p.seqlen_q > INT_MAX / 2 || p.seqlen_k > INT_MAX / 2) return false;
    if (p.batch * p.heads_q > INT_MAX || p.batch * p.heads_q * ((p.seqlen_q + 63) / 64) > INT_MAX)
        return false;
    return true;
}

size_t dense_workspace_size(const AttentionProblem& p) {
    DeviceGuard guard(p.device_id);
    return make_plan(p).workspace_bytes;
}

void dense_forward(const AttentionProblem& p) {
    DeviceGuard guard(p.device_id);
    const DensePlan plan = make_plan(p);

    DenseParams params{};
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
    params.scale = p.scale;
    params.scale_log2 = p.scale * 1.4426950408889634f;
    params.pack_group = plan.pack_group;
    params.grid_heads = int32_t(plan.pack_group > 1 ? p.heads_kv : p.heads_q);
    params.num_m_blocks = plan.num_m_blocks;
    params.num_splits = plan.num_splits;

    if (plan.num_splits == 1) {
        run(params, p, plan);
        return;
    }
    const size_t o_bytes = size_t(plan.num_splits) * size_t(p.batch) * size_t(p.heads_q) *
                           size_t(p.seqlen_q) * size_t(p.head_dim) * sizeof(float);
    auto bind = [&](void* base) {
        params.o_partial = static_cast<float*>(base);
        params.lse_partial = reinterpret_cast<float*>(static_cast<char*>(base) + o_bytes);
    };
    if (p.workspace != nullptr && p.workspace_bytes >= plan.workspace_bytes && aligned16(p.workspace)) {
        bind(p.workspace);
        run(params, p, plan);
        return;
    }
    auto& cache = workspace_cache();
    std::lock_guard<std::mutex> lock(cache.mutex);
    bind(cached_workspace(p.device_id, p.stream, plan.workspace_bytes));
    run(params, p, plan);
}

}  // namespace sa::cuda::fast
