// PBS planner on the GPU, step by step as docs/semantics.md states it: key importance from the
// last query block, a stable descending sort of keys within each full segment, block means,
// a block-score softmax over earlier segments, the shortest prefix reaching tau, plus the sink
// block and the own-segment blocks (all of a full segment; up to the diagonal in the tail). fp32 throughout; sums run in index order like the CPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <climits>
#include <string>

#include "cuda/element.cuh"
#include "cuda/runtime.h"

namespace sa::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxHeadDim = 512;
constexpr int kMaxSegment = 4096;

// Everything the planner kernels share, passed by value.
struct PlanParams {
    const void* q;
    const void* k;
    RowStrides q_strides, k_strides;
    int64_t batch, seqlen, heads_q, heads_kv, head_dim;
    int32_t block, segment;
    int64_t num_blocks;    // nQ == nK
    int64_t full_keys;     // keys inside full segments
    int64_t last_first;    // first query row of the last query block
    int64_t last_rows;     // rows of the last query block
    float tau, scale;
    int32_t* key_perm;
    int32_t* kv_num_blocks;
    int32_t* kv_indices;
    // scratch
    float* row_max;        // [B, H, last_rows]
    float* row_sum;
    float* importance;     // [B, H, full_keys]
    float* mean_q;         // [B, H, nB, D]
    float* mean_k;
    int32_t* sink_block;   // [B, H]
};

template <typename T>
__device__ __forceinline__ const T* q_row(const PlanParams& p, int64_t b, int64_t h, int64_t s) {
    return static_cast<const T*>(p.q) + b * p.q_strides.batch + s * p.q_strides.seq +
           h * p.q_strides.head;
}

template <typename T>
__device__ __forceinline__ const T* k_row(const PlanParams& p, int64_t b, int64_t h, int64_t s) {
    const int64_t kv_head = h / (p.heads_q / p.heads_kv);
    return static_cast<const T*>(p.k) + b * p.k_strides.batch + s * p.k_strides.seq +
           kv_head * p.k_strides.head;
}

template <typename T>
__device__ __forceinline__ float dot_row(const float* q, const T* k, int64_t dim) {
    float sum = 0.f;
    for (int64_t d = 0; d < dim; ++d) sum += q[d] * to_float(k[d]);
    return sum;
}

__device__ float block_max(float x, float* shared) {
    for (int offset = 16; offset > 0; offset >>= 1)
        x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
    const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    __syncthreads();
    if (lane == 0) shared[warp] = x;
    __syncthreads();
    float result = -INFINITY;
    for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) result = fmaxf(result, shared[w]);
    return result;
}

// Row max and row sum of the importance softmax, one block per (last-block row, head, batch).
template <typename T>
__global__ void __launch_bounds__(kThreads) row_stats_kernel(const PlanParams p) {
    __shared__ float q[kMaxHeadDim];
    __shared__ float partial[kThreads / 32];
    __shared__ float thread_sums[kThreads];
    const int64_t r = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const T* query = q_row<T>(p, b, h, p.last_first + r);
    for (int64_t d = threadIdx.x; d < p.head_dim; d += blockDim.x) q[d] = to_float(query[d]);
    __syncthreads();
    float local_max = -INFINITY;
    for (int64_t t = threadIdx.x; t < p.full_keys; t += blockDim.x)
        local_max = fmaxf(local_max, dot_row(q, k_row<T>(p, b, h, t), p.head_dim) * p.scale);
    const float row_max = block_max(local_max, partial);
    float local_sum = 0.f;
    for (int64_t t = threadIdx.x; t < p.full_keys; t += blockDim.x)
        local_sum += expf(dot_row(q, k_row<T>(p, b, h, t), p.head_dim) * p.scale - row_max);
    thread_sums[threadIdx.x] = local_sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        float sum = 0.f;
        for (int w = 0; w < static_cast<int>(blockDim.x); ++w) sum += thread_sums[w];
        const int64_t at = (b * p.heads_q + h) * p.last_rows + r;
        p.row_max[at] = row_max;
        p.row_sum[at] = sum;
    }
}

// Importance of each full-segment key: the mean over last-block rows of its probability.
template <typename T>
__global__ void __launch_bounds__(kThreads) importance_kernel(const PlanParams p) {
    __shared__ float q[kMaxHeadDim];
    const int64_t h = blockIdx.y, b = blockIdx.z;
    const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const bool active = t < p.full_keys;
    const T* key = active ? k_row<T>(p, b, h, t) : nullptr;
    float sum = 0.f;
    for (int64_t r = 0; r < p.last_rows; ++r) {
        __syncthreads();
        const T* query = q_row<T>(p, b, h, p.last_first + r);
        for (int64_t d = threadIdx.x; d < p.head_dim; d += blockDim.x) q[d] = to_float(query[d]);
        __syncthreads();
        if (active) {
            const int64_t at = (b * p.heads_q + h) * p.last_rows + r;
            sum += expf(dot_row(q, key, p.head_dim) * p.scale - p.row_max[at]) / p.row_sum[at];
        }
    }
    if (active)
        p.importance[(b * p.heads_q + h) * p.full_keys + t] =
            sum / static_cast<float>(p.last_rows);
}

// Does (score a, index ia) come before (score b, index ib)? Descending score, then lower index.
__device__ __forceinline__ bool precedes(float a, int32_t ia, float b, int32_t ib) {
    return a > b || (a == b && ia < ib);
}

// In-place bitonic sort of `size` (a power of two) pairs in shared memory, in `precedes` order.
__device__ void bitonic_sort(float* score, int32_t* index, int32_t size) {
    for (int32_t width = 2; width <= size; width <<= 1) {
        for (int32_t stride = width >> 1; stride > 0; stride >>= 1) {
            __syncthreads();
            for (int32_t e = threadIdx.x; e < size; e += blockDim.x) {
                const int32_t partner = e ^ stride;
                if (partner <= e) continue;
                const bool ascending_run = (e & width) == 0;
                const bool swap = ascending_run
                                      ? precedes(score[partner], index[partner], score[e], index[e])
                                      : precedes(score[e], index[e], score[partner], index[partner]);
                if (swap) {
                    const float s = score[e];
                    score[e] = score[partner];
                    score[partner] = s;
                    const int32_t i = index[e];
                    index[e] = index[partner];
                    index[partner] = i;
                }
            }
        }
    }
    __syncthreads();
}

__host__ __device__ inline int32_t next_power_of_two(int64_t n) {
    int32_t size = 1;
    while (size < n) size <<= 1;
    return size;
}

// Sorts the keys of one full segment by importance; one block per (segment, head, batch).
__global__ void __launch_bounds__(kThreads) segment_sort_kernel(const PlanParams p) {
    extern __shared__ unsigned char shared_bytes[];
    const int32_t size = next_power_of_two(p.segment);
    float* score = reinterpret_cast<float*>(shared_bytes);
    int32_t* index = reinterpret_cast<int32_t*>(score + size);
    const int64_t segment = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int64_t first = segment * p.segment;
    const float* importance = p.importance + (b * p.heads_q + h) * p.full_keys + first;
    for (int32_t e = threadIdx.x; e < size; e += blockDim.x) {
        const bool real = e < p.segment;
        score[e] = real ? importance[e] : -INFINITY;
        index[e] = real ? static_cast<int32_t>(first + e) : INT_MAX;
    }
    bitonic_sort(score, index, size);
    int32_t* perm = p.key_perm + (b * p.heads_q + h) * p.seqlen + first;
    for (int32_t e = threadIdx.x; e < p.segment; e += blockDim.x) {
        perm[e] = index[e];
        if (index[e] == 0) p.sink_block[b * p.heads_q + h] = e / p.block;  // original token 0
    }
}

// Keys past the last full segment keep their order.
__global__ void tail_identity_kernel(const PlanParams p) {
    const int64_t tail = p.seqlen - p.full_keys;
    const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e >= p.batch * p.heads_q * tail) return;
    const int64_t bh = e / tail, t = p.full_keys + e % tail;
    p.key_perm[bh * p.seqlen + t] = static_cast<int32_t>(t);
}

// Mean of the valid query rows of block j and of the permuted keys of block j.
template <typename T>
__global__ void __launch_bounds__(kThreads) block_means_kernel(const PlanParams p) {
    const int64_t j = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int64_t first = j * p.block;
    const int64_t rows = p.seqlen - first < p.block ? p.seqlen - first : p.block;
    const int32_t* perm = p.key_perm + (b * p.heads_q + h) * p.seqlen;
    const int64_t at = ((b * p.heads_q + h) * p.num_blocks + j) * p.head_dim;
    for (int64_t d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
        float sum_q = 0.f, sum_k = 0.f;
        for (int64_t r = 0; r < rows; ++r) {
            sum_q += to_float(q_row<T>(p, b, h, first + r)[d]);
            sum_k += to_float(k_row<T>(p, b, h, perm[first + r])[d]);
        }
        p.mean_q[at + d] = sum_q / static_cast<float>(rows);
        p.mean_k[at + d] = sum_k / static_cast<float>(rows);
    }
}

// Shared bytes of the selection kernel for `candidates` earlier-segment blocks.
size_t select_smem_bytes(int64_t candidates, int64_t num_blocks) {
    const size_t size = static_cast<size_t>(next_power_of_two(candidates));
    return size * (sizeof(float) + sizeof(int32_t)) + static_cast<size_t>(num_blocks) +
           2 * sizeof(float) * (kThreads / 32);
}

// Block selection for one (query block, head, batch).
__global__ void __launch_bounds__(kThreads) select_blocks_kernel(const PlanParams p) {
    extern __shared__ unsigned char shared_bytes[];
    const int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int64_t blocks_per_segment = p.segment / p.block;
    const int64_t own_segment = (i * p.block) / p.segment;
    const int64_t candidates = own_segment * blocks_per_segment;
    const int32_t size = next_power_of_two(candidates);
    float* score = reinterpret_cast<float*>(shared_bytes);
    int32_t* index = reinterpret_cast<int32_t*>(score + size);
    float* partial = reinterpret_cast<float*>(index + size);
    unsigned char* keep = reinterpret_cast<unsigned char*>(partial + kThreads / 32);
    __shared__ float normalizer;
    __shared__ int32_t list_count;

    for (int64_t j = threadIdx.x; j < p.num_blocks; j += blockDim.x) keep[j] = 0;
    const int64_t bh = b * p.heads_q + h;
    const float* mean_q = p.mean_q + (bh * p.num_blocks + i) * p.head_dim;
    for (int32_t e = threadIdx.x; e < size; e += blockDim.x) {
        if (e < candidates) {
            const float* mean_k = p.mean_k + (bh * p.num_blocks + e) * p.head_dim;
            float dot = 0.f;
            for (int64_t d = 0; d < p.head_dim; ++d) dot += mean_q[d] * mean_k[d];
            score[e] = dot * p.scale;
            index[e] = e;
        } else {
            score[e] = -INFINITY;
            index[e] = INT_MAX;
        }
    }
    float local_max = -INFINITY;
    for (int32_t e = threadIdx.x; e < candidates; e += blockDim.x)
        local_max = fmaxf(local_max, score[e]);
    const float top = block_max(local_max, partial);
    if (threadIdx.x == 0) {
        float sum = 0.f;
        for (int32_t e = 0; e < candidates; ++e) sum += expf(score[e] - top);
        normalizer = sum;
    }
    __syncthreads();
    for (int32_t e = threadIdx.x; e < candidates; e += blockDim.x)
        score[e] = expf(score[e] - top) / normalizer;
    bitonic_sort(score, index, size);

    if (threadIdx.x == 0) {
        // The shortest prefix reaching tau; tau >= 1 keeps every candidate.
        float cumulative = 0.f;
        for (int32_t e = 0; e < candidates; ++e) {
            keep[index[e]] = 1;
            cumulative += score[e];
            if (p.tau < 1.f && cumulative >= p.tau) break;
        }
        keep[p.sink_block[bh]] = 1;
        // A full segment is permuted, so any of its blocks may hold keys the query sees;
        // in the unpermuted tail, blocks past the diagonal hold only later keys.
        const bool own_is_full = (own_segment + 1) * p.segment <= p.seqlen;
        const int64_t own_last = own_is_full ? (own_segment + 1) * blocks_per_segment - 1 : i;
        for (int64_t j = own_segment * blocks_per_segment; j <= own_last; ++j) keep[j] = 1;
        int32_t* list = p.kv_indices + (bh * p.num_blocks + i) * p.num_blocks;
        int32_t count = 0;
        for (int64_t j = 0; j < p.num_blocks; ++j)
            if (keep[j]) list[count++] = static_cast<int32_t>(j);
        list_count = count;
        p.kv_num_blocks[bh * p.num_blocks + i] = count;
    }
    __syncthreads();
    int32_t* list = p.kv_indices + (bh * p.num_blocks + i) * p.num_blocks;
    for (int64_t j = list_count + threadIdx.x; j < p.num_blocks; j += blockDim.x) list[j] = -1;
}

// One segment or less: identity permutation and every causal block, as dense causal attention.
__global__ void identity_plan_kernel(const PlanParams p) {
    const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t rows = p.batch * p.heads_q * p.num_blocks;
    if (e < p.batch * p.heads_q * p.seqlen) p.key_perm[e] = static_cast<int32_t>(e % p.seqlen);
    if (e < rows * p.num_blocks) {
        const int64_t row = e / p.num_blocks, j = e % p.num_blocks, i = row % p.num_blocks;
        p.kv_indices[e] = j <= i ? static_cast<int32_t>(j) : -1;
        if (j == 0) p.kv_num_blocks[row] = static_cast<int32_t>(i + 1);
    }
}

size_t align_up(size_t bytes) { return (bytes + 255) / 256 * 256; }

template <typename T>
void plan_typed(PlanParams params, const PbsProblem& problem) {
    const auto stream = static_cast<cudaStream_t>(problem.stream);
    const int64_t bh = problem.batch * problem.heads_q;
    if (params.seqlen <= params.segment) {
        const int64_t work = bh * (params.seqlen > params.num_blocks * params.num_blocks
                                       ? params.seqlen
                                       : params.num_blocks * params.num_blocks);
        identity_plan_kernel<<<static_cast<unsigned>(ceil_div(work, kThreads)), kThreads, 0,
                               stream>>>(params);
        check_kernel_launch("PBS identity plan kernel");
        return;
    }

    const size_t rows_bytes = align_up(sizeof(float) * bh * params.last_rows);
    const size_t importance_bytes = align_up(sizeof(float) * bh * params.full_keys);
    const size_t means_bytes = align_up(sizeof(float) * bh * params.num_blocks * params.head_dim);
    const size_t sink_bytes = align_up(sizeof(int32_t) * bh);
    ScratchLease lease = scratch(problem.device_id, problem.stream,
                                 2 * rows_bytes + importance_bytes + 2 * means_bytes + sink_bytes);
    auto* base = static_cast<unsigned char*>(lease.data());
    params.row_max = reinterpret_cast<float*>(base);
    params.row_sum = reinterpret_cast<float*>(base + rows_bytes);
    params.importance = reinterpret_cast<float*>(base + 2 * rows_bytes);
    params.mean_q = reinterpret_cast<float*>(base + 2 * rows_bytes + importance_bytes);
    params.mean_k = reinterpret_cast<float*>(base + 2 * rows_bytes + importance_bytes + means_bytes);
    params.sink_block =
        reinterpret_cast<int32_t*>(base + 2 * rows_bytes + importance_bytes + 2 * means_bytes);

    const auto heads = static_cast<unsigned>(problem.heads_q);
    const auto batch = static_cast<unsigned>(problem.batch);
    row_stats_kernel<T><<<dim3(static_cast<unsigned>(params.last_rows), heads, batch), kThreads, 0,
                          stream>>>(params);
    check_kernel_launch("PBS row statistics kernel");
    importance_kernel<T><<<dim3(static_cast<unsigned>(ceil_div(params.full_keys, kThreads)),
                                heads, batch),
                           kThreads, 0, stream>>>(params);
    check_kernel_launch("PBS key importance kernel");
    const size_t sort_bytes =
        static_cast<size_t>(next_power_of_two(params.segment)) * (sizeof(float) + sizeof(int32_t));
    segment_sort_kernel<<<dim3(static_cast<unsigned>(params.full_keys / params.segment), heads,
                               batch),
                          kThreads, sort_bytes, stream>>>(params);
    check_kernel_launch("PBS segment sort kernel");
    const int64_t tail = params.seqlen - params.full_keys;
    if (tail > 0) {
        tail_identity_kernel<<<static_cast<unsigned>(ceil_div(bh * tail, kThreads)), kThreads, 0,
                               stream>>>(params);
        check_kernel_launch("PBS tail identity kernel");
    }
    block_means_kernel<T><<<dim3(static_cast<unsigned>(params.num_blocks), heads, batch), kThreads,
                            0, stream>>>(params);
    check_kernel_launch("PBS block means kernel");
    const int64_t most_candidates = params.full_keys / params.block;
    const size_t select_bytes = select_smem_bytes(most_candidates, params.num_blocks);
    if (select_bytes > 48 * 1024) {
        const size_t limit = enable_large_smem(reinterpret_cast<const void*>(&select_blocks_kernel),
                                               problem.device_id);
        if (select_bytes > limit)
            throw_invalid("pbs_plan: seqlen " + std::to_string(params.seqlen) + " with block " +
                          std::to_string(params.block) + " gives " +
                          std::to_string(params.num_blocks) +
                          " blocks, more than the CUDA planner handles on this device");
    }
    select_blocks_kernel<<<dim3(static_cast<unsigned>(params.num_blocks), heads, batch), kThreads,
                           select_bytes, stream>>>(params);
    check_kernel_launch("PBS block selection kernel");
}

}  // namespace

void pbs_plan(const PbsProblem& problem) {
    if (problem.segment > kMaxSegment)
        throw_invalid("segment: " + std::to_string(problem.segment) +
                      " is larger than the CUDA planner supports (at most " +
                      std::to_string(kMaxSegment) + ")");
    if (problem.head_dim > kMaxHeadDim)
        throw_invalid("head_dim: " + std::to_string(problem.head_dim) +
                      " is larger than the CUDA planner supports (at most 512)");
    if (problem.batch > 65535 || problem.heads_q > 65535)
        throw_invalid("pbs_plan: batch " + std::to_string(problem.batch) + " or heads " +
                      std::to_string(problem.heads_q) + " exceed 65535");
    if (problem.batch * problem.heads_q * problem.seqlen == 0) return;

    PlanParams params{};
    params.q = problem.q;
    params.k = problem.k;
    params.q_strides = problem.q_strides;
    params.k_strides = problem.k_strides;
    params.batch = problem.batch;
    params.seqlen = problem.seqlen;
    params.heads_q = problem.heads_q;
    params.heads_kv = problem.heads_kv;
    params.head_dim = problem.head_dim;
    params.block = problem.block;
    params.segment = problem.segment;
    params.num_blocks = problem.num_blocks;
    params.full_keys = problem.seqlen / problem.segment * problem.segment;
    params.last_first = (problem.num_blocks - 1) * problem.block;
    params.last_rows = problem.seqlen - params.last_first;
    params.tau = problem.tau;
    params.scale = problem.scale;
    params.key_perm = problem.key_perm;
    params.kv_num_blocks = problem.kv_num_blocks;
    params.kv_indices = problem.kv_indices;

    DeviceGuard guard(problem.device_id);
    switch (problem.dtype) {
        case SA_DTYPE_F16: plan_typed<__half>(params, problem); break;
        case SA_DTYPE_BF16: plan_typed<__nv_bfloat16>(params, problem); break;
        default:
            throw_invalid("q: dtype " + std::to_string(problem.dtype) +
                          " is not supported by the CUDA planner (fp16 or bf16)");
    }
}

}  // namespace sa::cuda
