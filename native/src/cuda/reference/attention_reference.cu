// Reference attention kernels: one warp per (query row, head, batch), an online softmax in fp32
// over the keys that the family's policy allows. Slow and obviously correct: the GPU oracle.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>
#include <type_traits>

#include "core/neighborhood_window.h"
#include "cuda/element.cuh"
#include "cuda/reference/reference.h"
#include "cuda/runtime.h"

namespace sa::cuda::reference {
namespace {

constexpr int kWarpsPerBlock = 4;
constexpr int kMaxHeadDim = 256;
constexpr int kElementsPerLane = kMaxHeadDim / 32;

// Where one query row reads and writes, resolved by the family policy.
struct RowTarget {
    int64_t q_offset;
    int64_t out_offset;
    int64_t lse_offset;
    int64_t k_base;          // batch and kv-head part of a key row's offset
    int64_t v_base;
    int64_t key_first;       // dense/varlen: row index of the sequence's first key
    int64_t key_limit;       // dense/varlen: keys [0, key_limit) of the sequence are allowed
    int64_t query_position;  // original query position (GNA, block-sparse)
    int64_t query_block;     // block-sparse: permuted query block
};

__device__ __forceinline__ int64_t row_offset(const RowStrides& s, int64_t b, int64_t row,
                                              int64_t h) {
    return b * s.batch + row * s.seq + h * s.head;
}

__device__ __forceinline__ void set_common(const AttentionProblem& p, int64_t b, int64_t h,
                                           int64_t row, RowTarget& t) {
    const int64_t kv_head = h / (p.heads_q / p.heads_kv);
    t.q_offset = row_offset(p.q_strides, b, row, h);
    t.out_offset = row_offset(p.out_strides, b, row, h);
    t.lse_offset = b * p.lse_strides.batch + h * p.lse_strides.head + row * p.lse_strides.seq;
    t.k_base = b * p.k_strides.batch + kv_head * p.k_strides.head;
    t.v_base = b * p.v_strides.batch + kv_head * p.v_strides.head;
}

// Dense and varlen: keys [0, limit) of the row's sequence; causal is bottom-right aligned.
struct DensePolicy {
    __device__ static bool resolve(const AttentionProblem& p, int64_t b, int64_t h, int64_t i,
                                   RowTarget& t) {
        int64_t row = i, len_q = p.seqlen_q, len_k = p.seqlen_k, key_first = 0;
        if (p.cu_seqlens_q != nullptr) {
            const int64_t q_start = p.cu_seqlens_q[b];
            len_q = p.cu_seqlens_q[b + 1] - q_start;
            key_first = p.cu_seqlens_k[b];
            len_k = p.cu_seqlens_k[b + 1] - key_first;
            if (len_k < 0) len_k = 0;
            if (i >= len_q) return false;  // past this sequence's end: not a row of the output
            row = q_start + i;
        }
        set_common(p, b, h, row, t);
        t.key_first = key_first;
        int64_t limit = len_k;
        if (p.causal) {
            const int64_t last = i + (len_k - len_q);
            if (last + 1 < limit) limit = last + 1;
        }
        t.key_limit = limit < 0 ? 0 : limit;
        return true;
    }

    template <typename Visit>
    __device__ static void for_each_key(const AttentionProblem&, const RowTarget& t,
                                        Visit&& visit) {
        for (int64_t j = 0; j < t.key_limit; ++j) visit(t.key_first + j);
    }
};

// GNA: the AND over dims of the shared window rule, tokens a row-major grid (last dim fastest).
struct NeighborhoodPolicy {
    __device__ static bool resolve(const AttentionProblem& p, int64_t b, int64_t h, int64_t i,
                                   RowTarget& t) {
        set_common(p, b, h, i, t);
        t.query_position = i;
        return true;
    }

    template <typename Visit>
    __device__ static void for_each_key(const AttentionProblem& p, const RowTarget& t,
                                        Visit&& visit) {
        const NeighborhoodGeometry& g = p.neighborhood;
        int32_t coord[3], group[3], first[3], last[3];
        int64_t rest = t.query_position;
        for (int d = 2; d >= 0; --d) {
            coord[d] = static_cast<int32_t>(rest % g.grid[d]);
            rest /= g.grid[d];
        }
        for (int d = 0; d < 3; ++d) {
            group[d] = coord[d] % g.dilation[d];
            const int32_t group_length =
                dilation_group_length(g.grid[d], g.dilation[d], group[d]);
            const KeyRange r = neighborhood_window(coord[d] / g.dilation[d], group_length,
                                                   g.kernel[d], g.stride[d], g.causal[d] != 0);
            first[d] = r.start;
            last[d] = r.end;
        }
        for (int32_t u0 = first[0]; u0 < last[0]; ++u0) {
            const int64_t x0 = group[0] + static_cast<int64_t>(u0) * g.dilation[0];
            for (int32_t u1 = first[1]; u1 < last[1]; ++u1) {
                const int64_t x1 = group[1] + static_cast<int64_t>(u1) * g.dilation[1];
                for (int32_t u2 = first[2]; u2 < last[2]; ++u2) {
                    const int64_t x2 = group[2] + static_cast<int64_t>(u2) * g.dilation[2];
                    visit((x0 * g.grid[1] + x1) * g.grid[2] + x2);
                }
            }
        }
    }
};

// Block-sparse: the warp's row is a permuted query position; it walks the listed key blocks of
// its query block, gathers keys through key_perm and masks causally on original positions.
struct BlockSparsePolicy {
    __device__ static bool resolve(const AttentionProblem& p, int64_t b, int64_t h, int64_t i,
                                   RowTarget& t) {
        const BlockSparseLists& bs = p.block_sparse;
        int64_t original = i;
        if (bs.query_perm != nullptr) {
            original = bs.query_perm[b * bs.query_perm_strides.batch +
                                     h * bs.query_perm_strides.head +
                                     i * bs.query_perm_strides.row];
            if (original < 0 || original >= p.seqlen_q) return false;  // not validated on device
        }
        set_common(p, b, h, original, t);
        t.query_position = original;
        t.query_block = i / bs.block_q;
        return true;
    }

    template <typename Visit>
    __device__ static void walk_list(const AttentionProblem& p, int64_t b, int64_t h,
                                     const RowTarget& t, const int32_t* counts,
                                     const IndexStrides& count_strides, const int32_t* indices,
                                     const IndexStrides& index_strides, int32_t capacity,
                                     Visit&& visit) {
        const BlockSparseLists& bs = p.block_sparse;
        int64_t count = counts[b * count_strides.batch + h * count_strides.head +
                               t.query_block * count_strides.row];
        if (count > capacity) count = capacity;  // never read past the list row
        const int32_t* list = indices + b * index_strides.batch + h * index_strides.head +
                              t.query_block * index_strides.row;
        const int64_t causal_last = t.query_position + (p.seqlen_k - p.seqlen_q);
        for (int64_t c = 0; c < count; ++c) {
            const int64_t block = list[c];
            if (block < 0 || block >= bs.num_k_blocks) continue;
            const int64_t begin = block * bs.block_k;
            const int64_t end = begin + bs.block_k < p.seqlen_k ? begin + bs.block_k : p.seqlen_k;
            for (int64_t position = begin; position < end; ++position) {
                int64_t key = position;
                if (bs.key_perm != nullptr) {
                    key = bs.key_perm[b * bs.key_perm_strides.batch +
                                      h * bs.key_perm_strides.head +
                                      position * bs.key_perm_strides.row];
                    if (key < 0 || key >= p.seqlen_k) continue;
                }
                if (p.causal && key > causal_last) continue;
                visit(key);
            }
        }
    }

    template <typename Visit>
    __device__ static void for_each_key(const AttentionProblem& p, const RowTarget& t,
                                        Visit&& visit, int64_t b, int64_t h) {
        const BlockSparseLists& bs = p.block_sparse;
        walk_list(p, b, h, t, bs.kv_num_blocks, bs.num_strides, bs.kv_indices, bs.idx_strides,
                  bs.capacity, visit);
        if (bs.full_num_blocks != nullptr && bs.full_indices != nullptr)
            walk_list(p, b, h, t, bs.full_num_blocks, bs.full_num_strides, bs.full_indices,
                      bs.full_idx_strides, bs.full_capacity, visit);
    }
};

template <typename Policy, typename Visit>
__device__ __forceinline__ void visit_keys(const AttentionProblem& p, const RowTarget& t,
                                           int64_t b, int64_t h, Visit&& visit) {
    if constexpr (std::is_same_v<Policy, BlockSparsePolicy>)
        Policy::for_each_key(p, t, visit, b, h);
    else
        Policy::for_each_key(p, t, visit);
}

template <typename T, typename Policy>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    attention_rows_kernel(const AttentionProblem p) {
    const int lane = static_cast<int>(threadIdx.x & 31);
    const int64_t warp = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
    if (warp >= p.batch * p.heads_q * p.seqlen_q) return;
    const int64_t i = warp % p.seqlen_q;
    const int64_t h = (warp / p.seqlen_q) % p.heads_q;
    const int64_t b = warp / (p.seqlen_q * p.heads_q);

    RowTarget t;
    if (!Policy::resolve(p, b, h, i, t)) return;

    const int64_t dim = p.head_dim;
    const T* q = static_cast<const T*>(p.q) + t.q_offset;
    const T* k = static_cast<const T*>(p.k);
    const T* v = static_cast<const T*>(p.v);
    float q_reg[kElementsPerLane], acc[kElementsPerLane];
#pragma unroll
    for (int e = 0; e < kElementsPerLane; ++e) {
        const int64_t d = e * 32 + lane;
        q_reg[e] = d < dim ? to_float(q[d]) : 0.f;
        acc[e] = 0.f;
    }
    float running_max = -INFINITY, running_sum = 0.f;

    visit_keys<Policy>(p, t, b, h, [&](int64_t key_row) {
        const T* k_row = k + t.k_base + key_row * p.k_strides.seq;
        const T* v_row = v + t.v_base + key_row * p.v_strides.seq;
        float partial = 0.f;
#pragma unroll
        for (int e = 0; e < kElementsPerLane; ++e) {
            const int64_t d = e * 32 + lane;
            if (d < dim) partial += q_reg[e] * to_float(k_row[d]);
        }
        const float score = warp_sum(partial) * p.scale;
        const float new_max = fmaxf(running_max, score);
        const float correction = expf(running_max - new_max);
        const float weight = expf(score - new_max);
        running_sum = running_sum * correction + weight;
        running_max = new_max;
#pragma unroll
        for (int e = 0; e < kElementsPerLane; ++e) {
            const int64_t d = e * 32 + lane;
            if (d < dim) acc[e] = acc[e] * correction + weight * to_float(v_row[d]);
        }
    });

    // No allowed key: output 0 and LSE -inf.
    const bool any = running_sum > 0.f;
    const float inverse = any ? 1.f / running_sum : 0.f;
    T* out = static_cast<T*>(p.out) + t.out_offset;
#pragma unroll
    for (int e = 0; e < kElementsPerLane; ++e) {
        const int64_t d = e * 32 + lane;
        if (d < dim) out[d] = from_float<T>(any ? acc[e] * inverse : 0.f);
    }
    if (p.lse != nullptr && lane == 0)
        p.lse[t.lse_offset] = any ? running_max + logf(running_sum) : -INFINITY;
}

template <typename Policy>
void launch(const AttentionProblem& p, const char* name) {
    if (p.head_dim < 1 || p.head_dim > kMaxHeadDim)
        throw_invalid(std::string(name) + ": head_dim " + std::to_string(p.head_dim) +
                      " is not supported by the CUDA reference kernels (at most 256)");
    const int64_t rows = p.batch * p.heads_q * p.seqlen_q;
    if (rows == 0) return;
    const int64_t blocks = ceil_div(rows, kWarpsPerBlock);
    if (blocks > 0x7fffffff)
        throw_invalid(std::string(name) + ": B*H*S_q = " + std::to_string(rows) +
                      " query rows exceed one launch");
    DeviceGuard guard(p.device_id);
    const auto stream = static_cast<cudaStream_t>(p.stream);
    const dim3 grid(static_cast<unsigned>(blocks)), block(kWarpsPerBlock * 32);
    switch (p.dtype) {
        case SA_DTYPE_F16:
            attention_rows_kernel<__half, Policy><<<grid, block, 0, stream>>>(p);
            break;
        case SA_DTYPE_BF16:
            attention_rows_kernel<__nv_bfloat16, Policy><<<grid, block, 0, stream>>>(p);
            break;
        default:
            throw_invalid(std::string(name) + ": dtype " + std::to_string(p.dtype) +
                          " is not supported on CUDA (fp16 or bf16)");
    }
    check_kernel_launch(name);
}

}  // namespace

void dense_forward(const AttentionProblem& p) {
    launch<DensePolicy>(p, "reference dense attention kernel");
}

void neighborhood_forward(const AttentionProblem& p) {
    launch<NeighborhoodPolicy>(p, "reference neighborhood attention kernel");
}

void block_sparse_forward(const AttentionProblem& p) {
    launch<BlockSparsePolicy>(p, "reference block-sparse attention kernel");
}

}  // namespace sa::cuda::reference
