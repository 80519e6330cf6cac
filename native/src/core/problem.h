// The validated, normalized description of one attention call. Built by core validation from
// the ABI tensors, consumed by every backend (CPU loops and CUDA kernel params are near twins).
#pragma once
#include <cstdint>
#include "sparseattn/sparseattn.h"

namespace sa {

enum class Family : int32_t { Dense = 0, Neighborhood = 1, BlockSparse = 2 };

// Strides in elements for a [B, S, H, D] view (D contiguous).
struct RowStrides {
    int64_t batch;
    int64_t seq;
    int64_t head;
};

// Strides in elements for a [B, H, S] fp32 LSE view.
struct LseStrides {
    int64_t batch;
    int64_t head;
    int64_t seq;
};

// Strides in elements for int32 [B, H, X...] index tensors (0 broadcasts).
struct IndexStrides {
    int64_t batch;
    int64_t head;
    int64_t row;  // query-block (lists) or position (permutations)
};

struct NeighborhoodGeometry {
    int32_t rank;      // 1..3
    int32_t grid[3];   // unused dims are 1
    int32_t kernel[3];
    int32_t dilation[3];
    int32_t stride[3];
    int32_t causal[3];
};

struct BlockSparseLists {
    int32_t block_q;
    int32_t block_k;
    int32_t num_q_blocks;
    int32_t num_k_blocks;
    const int32_t* kv_num_blocks;   // [B, H, nQ]
    const int32_t* kv_indices;      // [B, H, nQ, C]
    int32_t capacity;               // C: entries per list row (counts are clamped to it)
    int32_t full_capacity;          // C of the full lists
    IndexStrides num_strides;
    IndexStrides idx_strides;       // row = query block; entries contiguous
    const int32_t* full_num_blocks; // optional (nullptr)
    const int32_t* full_indices;
    IndexStrides full_num_strides;
    IndexStrides full_idx_strides;
    const int32_t* key_perm;        // optional [B, H, S_k]
    IndexStrides key_perm_strides;
    const int32_t* query_perm;      // optional [B, H, S_q]
    IndexStrides query_perm_strides;
};

struct AttentionProblem {
    Family family;
    sa_dtype dtype;          // of q/k/v/out
    sa_device_type device_type;
    int32_t device_id;

    const void* q;
    const void* k;
    const void* v;
    void* out;
    float* lse;              // nullptr when not requested

    int64_t batch;           // number of sequences (varlen: len(cu_seqlens) - 1)
    int64_t seqlen_q;        // varlen: max_seqlen_q
    int64_t seqlen_k;        // varlen: max_seqlen_k
    int64_t heads_q;
    int64_t heads_kv;
    int64_t head_dim;

    RowStrides q_strides;    // varlen: batch stride 0, rows addressed through cu_seqlens
    RowStrides k_strides;
    RowStrides v_strides;
    RowStrides out_strides;
    LseStrides lse_strides;  // varlen: batch stride 0, seq addresses the packed row

    float scale;             // already resolved (never 0)
    bool causal;             // dense / block-sparse
    bool causal_top_left;    // with causal: j <= i instead of the bottom-right j <= i + S_k - S_q

    const int32_t* cu_seqlens_q;  // varlen only, else nullptr
    const int32_t* cu_seqlens_k;

    NeighborhoodGeometry neighborhood;
    BlockSparseLists block_sparse;

    // Options carried to the backend.
    void* stream;
    int32_t kernel_choice;   // sa_kernel_choice
    int32_t num_splits;
    void* workspace;
    size_t workspace_bytes;
    int32_t num_threads;
};

// LSE merge of two partial results, [B, S, H, D] outputs and [B, H, S] fp32 LSEs.
struct MergeProblem {
    sa_device_type device_type;
    int32_t device_id;
    int64_t batch, seqlen, heads, head_dim;
    const void* o1; sa_dtype o1_dtype; RowStrides o1_strides;
    const void* o2; sa_dtype o2_dtype; RowStrides o2_strides;
    void* out;      sa_dtype out_dtype; RowStrides out_strides;
    const float* lse1; LseStrides lse1_strides;
    const float* lse2; LseStrides lse2_strides;
    float* lse_out;    LseStrides lse_out_strides;  // nullptr when absent
    void* stream;
};

// Dense boolean block mask <-> CSR-style block lists, all contiguous after validation.
struct MaskConversion {
    sa_device_type device_type;
    int32_t device_id;
    int64_t batch, heads, num_q_blocks, num_k_blocks;
    const uint8_t* mask_in;   // to_lists: input [B, H, nQ, nK]
    uint8_t* mask_out;        // to_mask: output [B, H, nQ, nK]
    const int32_t* num_in;    // to_mask: input [B, H, nQ]
    const int32_t* idx_in;    // to_mask: input [B, H, nQ, C]
    int64_t idx_in_capacity;  // C
    int32_t* num_out;         // to_lists: output [B, H, nQ]
    int32_t* idx_out;         // to_lists: output [B, H, nQ, nK]
    void* stream;
};

// PBS planner inputs and outputs (outputs contiguous after validation).
struct PbsProblem {
    sa_dtype dtype;
    sa_device_type device_type;
    int32_t device_id;
    const void* q; RowStrides q_strides;
    const void* k; RowStrides k_strides;
    int64_t batch, seqlen, heads_q, heads_kv, head_dim;
    int32_t block, segment;
    float tau, scale;          // scale resolved
    bool permute_keys;         // false: identity permutation
    int32_t* key_perm;         // [B, Hq, S]
    int32_t* kv_num_blocks;    // [B, Hq, nQ]
    int32_t* kv_indices;       // [B, Hq, nQ, nK]
    int64_t num_blocks;        // nQ == nK
    void* stream;
};

}  // namespace sa
